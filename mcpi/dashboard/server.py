"""Serving the dashboard: a token, an address that is this machine's, and how to reach it.

By default the page is served on 127.0.0.1 only, and reached from a laptop through SSH
(the line to type is printed: ``ssh -N -L``). Another address is refused unless the
page is served over TLS (a certificate and key of the user's) or the user says, with
``--insecure-plain-http``, that they accept a page and its token readable on the network.
"""

from __future__ import annotations

import ipaddress
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mcpi.errors import UsageError

#: The port the dashboard takes unless told otherwise: a fixed one, so that the SSH
#: line a user saved keeps working; taken already, the dashboard refuses to start
#: rather than move.
DEFAULT_PORT = 8717
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Address:
    """Where the dashboard listens, and over what."""

    bind: str
    port: int
    tls: tuple[Path, Path] | None = None

    @property
    def local(self) -> bool:
        try:
            return ipaddress.ip_address(self.bind).is_loopback
        except ValueError:
            return self.bind == "localhost"

    def hosts(self) -> list[str]:
        """The names a browser may use for this dashboard in its Host header."""
        names = ["127.0.0.1", "localhost", "[::1]", "::1"]
        if not self.local:
            names += [self.bind, socket.gethostname(), socket.getfqdn()]
        return sorted(set(names))

    def url(self, token: str) -> str:
        scheme = "https" if self.tls else "http"
        host = LOOPBACK if self.local else self.bind
        return f"{scheme}://{host}:{self.port}/?token={token}"


def address(
    bind: str, port: int, cert: Path | None, key: Path | None, insecure_plain_http: bool
) -> Address:
    """The dashboard's address, refused in one line where it would be unsafe or wrong."""
    if (cert is None) != (key is None):
        raise UsageError("--tls-cert and --tls-key go together")
    tls = (cert, key) if cert is not None and key is not None else None
    where = Address(bind, port, tls)
    if not where.local and tls is None and not insecure_plain_http:
        raise UsageError(
            f"--bind {bind} would serve the page and its token in plain HTTP to the network: "
            "give --tls-cert and --tls-key, or reach 127.0.0.1 through `ssh -L` (see the "
            "docs), or say --insecure-plain-http"
        )
    return where


def new_token() -> str:
    return secrets.token_urlsafe(32)


def tunnel_line(where: Address) -> str:
    """What to type on a laptop to reach a dashboard served on this machine's loopback."""
    user_host = f"{_user()}@{socket.getfqdn()}"
    return f"ssh -N -L {where.port}:127.0.0.1:{where.port} {user_host}"


def serve(where: Address, app: object, say: Callable[[str], None], token: str) -> None:
    """Serve ``app`` at ``where`` until interrupted (uvicorn), after saying how to open it."""
    import uvicorn

    config = uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=where.bind,
        port=where.port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        # An open page's stream never ends by itself: Ctrl-C must not wait for it.
        timeout_graceful_shutdown=2,
        ssl_certfile=str(where.tls[0]) if where.tls else None,
        ssl_keyfile=str(where.tls[1]) if where.tls else None,
    )
    server = uvicorn.Server(config)
    _check_port(where)
    say(f"mcpi dashboard: {where.url(token)}")
    if where.local:
        say(f"from another machine: {tunnel_line(where)}  (then open the URL above)")
    say("read-only; Ctrl-C stops it")
    server.run()


def _check_port(where: Address) -> None:
    """A port taken is refused in one line, not a traceback from deep in uvicorn."""
    family = socket.AF_INET6 if ":" in where.bind else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((where.bind, where.port))
        except OSError as exc:
            raise UsageError(
                f"cannot listen on {where.bind}:{where.port}: {exc.strerror} (another "
                "dashboard? choose --port)"
            ) from None


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "you"
