"""A TCP relay on 127.0.0.1 whose links a test can cut: a network partition, on loopback.

``tc netem`` is not in this machine's kernel, and a worker's traffic to the broker and
Redis on one machine never crosses an interface a firewall rule could drop without a
network namespace per worker. A relay between one worker and a service does the same
to that worker alone: it forwards bytes both ways, unchanged (TLS passes through: the
service's certificate names 127.0.0.1, where the relay listens), until told to

* :meth:`stall` -- forward nothing, and take no new connection (the kernel's backlog
  completes their handshakes, as a peer behind a dead link would seem to): a partition,
  a black hole in both directions, as a switch or a cable gone; TCP's own timers and
  the protocols' heartbeats see it, or do not, as they would;
* :meth:`resume` -- forward again: what was sent meanwhile arrives late, in order;
* :meth:`reset` -- drop every link at once with a TCP reset, as a firewall or NAT that
  loses its state does; new connections are taken as before;
* :meth:`hang_up` -- take each new connection and close it at once, before a byte, as
  a service stopping or starting does, until :meth:`resume`.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import struct
import threading
from typing import Self

#: Bytes read from one side at a time.
BUFFER = 64 * 1024
#: Seconds a write to one side may block the relay (a peer that stopped reading).
SEND_TIMEOUT = 5.0


class TcpProxy:
    """Relays connections to 127.0.0.1:``port`` here to ``target`` (host, port)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self._listener.setblocking(False)
        self.port: int = self._listener.getsockname()[1]
        self._selector = selectors.DefaultSelector()
        self._links: dict[socket.socket, socket.socket] = {}
        self._lock = threading.Lock()
        self._stalled = threading.Event()
        self._hanging_up = threading.Event()
        self._stop = threading.Event()
        # A reset asked from another thread is done by the relay's own (the selector is
        # its alone): asked, then done.
        self._reset_asked = threading.Event()
        self._reset_done = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"proxy-{self.port}")

    def start(self) -> Self:
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._selector.register(self._listener, selectors.EVENT_READ)
        self._thread.start()
        return self

    def url(self, url: str) -> str:
        """``url`` (of the target) with this relay's port instead."""
        host, port = self.target
        return url.replace(f"{host}:{port}", f"127.0.0.1:{self.port}", 1)

    @property
    def links(self) -> int:
        """Connections relayed now."""
        with self._lock:
            return len(self._links) // 2

    def stall(self) -> None:
        self._stalled.set()
        self._wake()

    def hang_up(self) -> None:
        self._hanging_up.set()

    def resume(self) -> None:
        self._stalled.clear()
        self._hanging_up.clear()
        self._wake()

    def reset(self) -> None:
        if not self._thread.is_alive():
            self._abort_all()
            return
        self._reset_done.clear()
        self._reset_asked.set()
        self._wake()
        self._reset_done.wait(10)

    def close(self) -> None:
        self._stop.set()
        self._wake()
        if self._thread.is_alive():
            self._thread.join(10)
        self._abort_all()
        for sock in (self._listener, self._wake_r, self._wake_w):
            sock.close()
        self._selector.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the relay's thread -------------------------------------------------------------

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._reset_asked.is_set():
                self._reset_asked.clear()
                self._abort_all()
                self._reset_done.set()
            stalled = self._stalled.is_set()
            for key, _ in self._selector.select(timeout=0.5):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if sock is self._wake_r:
                    with contextlib.suppress(OSError):
                        sock.recv(BUFFER)
                elif stalled:
                    continue  # a partition: nothing taken, nothing forwarded
                elif sock is self._listener:
                    self._accept()
                else:
                    self._forward(sock)
            if stalled:  # what is ready stays ready: look again a little later
                self._stop.wait(0.05)

    def _accept(self) -> None:
        with contextlib.suppress(BlockingIOError):
            client, _ = self._listener.accept()
            if self._hanging_up.is_set():
                client.close()
                return
            try:
                upstream = socket.create_connection(self.target, timeout=SEND_TIMEOUT)
            except OSError:
                self._abort(client)
                return
            for sock in (client, upstream):
                sock.settimeout(SEND_TIMEOUT)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._links[client], self._links[upstream] = upstream, client
            self._selector.register(client, selectors.EVENT_READ)
            self._selector.register(upstream, selectors.EVENT_READ)

    def _forward(self, sock: socket.socket) -> None:
        with self._lock:
            other = self._links.get(sock)
        if other is None:  # reset meanwhile
            self._forget(sock)
            return
        try:
            data = sock.recv(BUFFER)
            if data:
                other.sendall(data)
                return
        except OSError:
            pass
        # One side closed (or failed): the link ends, both ways.
        with self._lock:
            self._links.pop(sock, None)
            self._links.pop(other, None)
        self._forget(sock)
        self._forget(other)

    def _abort_all(self) -> None:
        with self._lock:
            sockets = list(self._links)
            self._links.clear()
        for sock in sockets:
            self._abort(sock)

    def _forget(self, sock: socket.socket) -> None:
        with contextlib.suppress(KeyError, ValueError, OSError):
            self._selector.unregister(sock)
        sock.close()

    def _abort(self, sock: socket.socket) -> None:
        """Close with a reset (SO_LINGER 0), not a FIN: the peer sees the link torn."""
        with contextlib.suppress(KeyError, ValueError, OSError):
            self._selector.unregister(sock)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
