"""The dashboard's web app: one page, a JSON snapshot and one event stream, read-only.

Security by default, after Jupyter's and Ray's lessons (``../shared/DASHBOARD-DOCS.md``):

* **A token**: random, printed at start in the URL (``/?token=…``); the page trades it
  for an HttpOnly, SameSite=Strict cookie and redirects to a URL without it (a browser's
  ``EventSource`` cannot send a header, but sends the cookie). Without either, 401.
* **The Host header** must name this machine (``127.0.0.1``, ``localhost``, ``[::1]``,
  or the address bound): a page of another site that a DNS rebinding points here is
  refused (400).
* **GET only**: nothing here changes anything (405 for any other method); no CORS; a
  Content-Security-Policy of ``'self'`` (every script and style is served from here);
  ``Referrer-Policy: no-referrer``, so the token never leaves in a Referer.

One sampler builds the snapshot once a second, in a thread, whoever is watching; each
page's stream sends the newest one: the cost does not grow with the pages open.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import sys
from collections.abc import AsyncIterator, Callable
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import (
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route

#: The cookie the token is traded for.
COOKIE = "mcpi_dashboard"
#: Seconds between two snapshots.
INTERVAL = 1.0
#: What a browser waits before it reconnects a dropped stream, in milliseconds.
RETRY_MS = 2000

HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

#: Files the page is made of, served from mcpi/dashboard/static.
STATIC = {
    "dashboard.js": "text/javascript",
    "dashboard.css": "text/css",
    "uPlot.iife.min.js": "text/javascript",
    "uPlot.min.css": "text/css",
}


class Sampler:
    """The newest snapshot, built by ``build`` every ``interval`` seconds in a thread."""

    def __init__(self, build: Callable[[], dict[str, Any]], interval: float = INTERVAL) -> None:
        self.build = build
        self.interval = interval
        self.version = 0
        self.latest: bytes = b"{}"
        self._changed: asyncio.Condition | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._changed = asyncio.Condition()
        await self._take()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self._take()

    async def _take(self) -> None:
        try:
            snapshot = await asyncio.to_thread(self.build)
        except Exception as exc:  # noqa: BLE001 - the page says so, and the next look may do
            problem = f"{type(exc).__name__}: {exc}"
            print(f"mcpi dashboard: cannot read the jobs: {problem}", file=sys.stderr)
            snapshot = {"jobs": [], "cluster": None, "error": problem}
        self.latest = json.dumps(snapshot, separators=(",", ":")).encode()
        self.version += 1
        assert self._changed is not None
        async with self._changed:
            self._changed.notify_all()

    async def newer(self, than: int) -> int:
        """Wait for a snapshot newer than version ``than``; its version."""
        assert self._changed is not None
        async with self._changed:
            await self._changed.wait_for(lambda: self.version > than)
        return self.version


def create_app(
    build: Callable[[], dict[str, Any]],
    token: str,
    hosts: list[str],
    interval: float = INTERVAL,
) -> Starlette:
    """The dashboard of snapshots from ``build``, for holders of ``token``, answering
    requests addressed to ``hosts`` only."""
    sampler = Sampler(build, interval)

    def allowed(request: Request) -> bool:
        given = request.cookies.get(COOKIE, "")
        return hmac.compare_digest(given.encode(), token.encode())

    def refused() -> Response:
        return PlainTextResponse(
            "mcpi dashboard: open the URL with the token that `mcpi-hub dashboard` printed\n",
            status_code=401,
            headers=HEADERS,
        )

    async def page(request: Request) -> Response:
        given = request.query_params.get("token")
        if given is not None:
            if not hmac.compare_digest(given.encode(), token.encode()):
                return refused()
            # The token leaves the address bar (and the history): the cookie stays.
            response = RedirectResponse("./", status_code=303, headers=HEADERS)
            response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/")
            return response
        if not allowed(request):
            return refused()
        html = resources.files("mcpi.dashboard").joinpath("static/index.html").read_bytes()
        return Response(html, media_type="text/html; charset=utf-8", headers=HEADERS)

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC:  # a fixed list: no path is ever built from the request
            return PlainTextResponse("not found\n", status_code=404, headers=HEADERS)
        if not allowed(request):
            return refused()
        body = resources.files("mcpi.dashboard").joinpath(f"static/{name}").read_bytes()
        return Response(body, media_type=STATIC[name], headers=HEADERS)

    async def snapshot(request: Request) -> Response:
        if not allowed(request):
            return refused()
        return Response(sampler.latest, media_type="application/json", headers=HEADERS)

    async def stream(request: Request) -> Response:
        if not allowed(request):
            return refused()

        async def events() -> AsyncIterator[bytes]:
            # Every event is a whole snapshot: a page that reconnects needs no replay.
            yield f"retry: {RETRY_MS}\n\n".encode()
            seen = 0
            while True:
                seen = max(seen, sampler.version)
                yield b"id: %d\nevent: snapshot\ndata: %s\n\n" % (seen, sampler.latest)
                seen = await sampler.newer(seen)

        headers = {**HEADERS, "X-Accel-Buffering": "no"}
        return StreamingResponse(events(), media_type="text/event-stream", headers=headers)

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True}, headers=HEADERS)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await sampler.start()
        try:
            yield
        finally:
            await sampler.stop()

    return Starlette(
        routes=[
            Route("/", page, methods=["GET"]),
            Route("/static/{name}", static, methods=["GET"]),
            Route("/api/snapshot.json", snapshot, methods=["GET"]),
            Route("/api/stream", stream, methods=["GET"]),
            Route("/healthz", health, methods=["GET"]),
        ],
        middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=hosts)],
        lifespan=lifespan,
    )
