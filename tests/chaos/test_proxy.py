"""The relay the soak cuts workers off with (mcpi.testing.proxy), against an echo server."""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Iterator

import pytest

from mcpi.testing.proxy import TcpProxy


class Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(4096):
            self.request.sendall(data)


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with TcpProxy(server.server_address[:2]) as relay:
            yield relay
    finally:
        server.shutdown()
        server.server_close()


def connect(proxy: TcpProxy) -> socket.socket:
    return socket.create_connection(("127.0.0.1", proxy.port), timeout=2)


def echoed(sock: socket.socket, data: bytes) -> bytes:
    sock.sendall(data)
    return sock.recv(4096)


def test_bytes_are_relayed_unchanged_both_ways(proxy: TcpProxy) -> None:
    with connect(proxy) as sock:
        assert echoed(sock, b"hello") == b"hello"
        payload = bytes(range(256)) * 64
        sock.sendall(payload)
        got = b""
        while len(got) < len(payload):
            got += sock.recv(65536)
        assert got == payload
    target = f"amqps://u:p@127.0.0.1:{proxy.target[1]}/v"
    assert proxy.url(target) == f"amqps://u:p@127.0.0.1:{proxy.port}/v"


def test_a_stall_is_a_black_hole_until_resumed_and_nothing_is_lost(proxy: TcpProxy) -> None:
    with connect(proxy) as old:
        assert echoed(old, b"before") == b"before"
        proxy.stall()
        old.sendall(b"during")
        old.settimeout(0.5)
        with pytest.raises(TimeoutError):
            old.recv(4096)
        # A new connection seems to open (the backlog), and nothing comes back.
        new = connect(proxy)
        new.settimeout(0.5)
        new.sendall(b"new")
        with pytest.raises(TimeoutError):
            new.recv(4096)
        proxy.resume()
        old.settimeout(5)
        new.settimeout(5)
        assert old.recv(4096) == b"during"  # late, in order
        assert new.recv(4096) == b"new"
        new.close()


def test_a_reset_tears_every_link_and_new_ones_work(proxy: TcpProxy) -> None:
    with connect(proxy) as old:
        assert echoed(old, b"x") == b"x"
        assert proxy.links == 1
        proxy.reset()
        with pytest.raises(ConnectionResetError):
            old.sendall(b"y")
            old.recv(4096)
    with connect(proxy) as new:
        assert echoed(new, b"z") == b"z"


def test_a_hang_up_closes_new_connections_before_a_byte_until_resumed(proxy: TcpProxy) -> None:
    with connect(proxy) as old:
        assert echoed(old, b"w") == b"w"  # linked (taken by the relay)
        proxy.hang_up()
        assert echoed(old, b"x") == b"x"  # what was linked stays linked
        with connect(proxy) as refused:
            assert refused.recv(4096) == b""  # taken, and closed at once
        proxy.resume()
    with connect(proxy) as new:
        assert echoed(new, b"z") == b"z"
