"""``mcpi-hub dashboard`` served for real on 127.0.0.1: the token, the Host check, GET only,
and the event stream read from the socket (in-process ASGI clients hang on endless
streams: httpx#2186)."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mcpi.testing.servers import free_port
from tests.dashboard.conftest import Dashboard, hub_env


def get(
    board: Dashboard, path: str, cookie: str | None = None, host: str | None = None,
    method: str = "GET",
) -> http.client.HTTPResponse:  # fmt: skip
    connection = http.client.HTTPConnection("127.0.0.1", board.port, timeout=10)
    headers = {"Host": host or f"127.0.0.1:{board.port}"}
    if cookie:
        headers["Cookie"] = cookie
    connection.request(method, path, headers=headers)
    return connection.getresponse()


def login(board: Dashboard) -> str:
    response = get(board, f"/?token={board.token}")
    assert response.status == 303 and response.getheader("Location") == "./"
    cookie = response.getheader("Set-Cookie") or ""
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    return cookie.split(";")[0]


def test_it_prints_its_url_with_a_token_and_the_ssh_line(dashboard: Dashboard) -> None:
    url, tunnel, _ = dashboard.printed
    assert url == f"mcpi dashboard: http://127.0.0.1:{dashboard.port}/?token={dashboard.token}"
    assert len(dashboard.token) >= 40
    assert tunnel.startswith(
        f"from another machine: ssh -N -L {dashboard.port}:127.0.0.1:{dashboard.port} "
    )


def test_nothing_is_served_without_the_token(dashboard: Dashboard) -> None:
    for path in ("/", "/api/snapshot.json", "/api/stream", "/static/dashboard.js"):
        assert get(dashboard, path).status == 401, path
    assert get(dashboard, "/?token=" + "x" * len(dashboard.token)).status == 401
    assert get(dashboard, "/api/snapshot.json", cookie="mcpi_dashboard=wrong").status == 401


def test_the_token_becomes_a_cookie_and_the_page_comes_with_a_strict_policy(
    dashboard: Dashboard,
) -> None:
    cookie = login(dashboard)
    page = get(dashboard, "/", cookie=cookie)
    html = page.read().decode()
    assert page.status == 200 and "<title>mcpi dashboard</title>" in html
    assert page.getheader("Content-Security-Policy", "").startswith("default-src 'self'")
    assert page.getheader("Referrer-Policy") == "no-referrer"
    # Relative links only: the page works behind a proxy's sub-path too.
    assert 'href="/' not in html and 'src="/' not in html
    snapshot = get(dashboard, "/api/snapshot.json", cookie=cookie)
    assert snapshot.status == 200 and json.loads(snapshot.read()) == {"jobs": [], "cluster": None}
    assert get(dashboard, "/static/uPlot.iife.min.js", cookie=cookie).status == 200


def test_other_hosts_methods_and_paths_are_refused(dashboard: Dashboard) -> None:
    cookie = login(dashboard)
    # A DNS rebinding: another site's name pointed at 127.0.0.1.
    assert get(dashboard, "/api/snapshot.json", cookie, host="attacker.example").status == 400
    for method in ("POST", "PUT", "DELETE"):
        assert get(dashboard, "/api/snapshot.json", cookie, method=method).status == 405
    for path in ("/static/../../setup.py", "/static/%2e%2e%2fsetup.py", "/static/app.py"):
        assert get(dashboard, path, cookie).status == 404, path


def test_the_stream_sends_a_whole_snapshot_about_once_a_second(dashboard: Dashboard) -> None:
    cookie = login(dashboard)
    response = get(dashboard, "/api/stream", cookie=cookie)
    assert response.status == 200
    assert response.getheader("Content-Type", "").startswith("text/event-stream")
    began = time.monotonic()
    events: list[dict[str, str]] = []
    event: dict[str, str] = {}
    while len(events) < 3:
        line = response.readline().decode().rstrip("\n")
        if not line:
            if event:
                events.append(event)
            event = {}
            continue
        key, _, value = line.partition(": ")
        event[key] = value
    elapsed = time.monotonic() - began
    assert events[0] == {"retry": "2000"}
    snapshots = events[1:]
    assert [e["event"] for e in snapshots] == ["snapshot", "snapshot"]
    assert int(snapshots[1]["id"]) > int(snapshots[0]["id"])
    assert json.loads(snapshots[1]["data"]) == {"jobs": [], "cluster": None}
    assert 0.5 < elapsed < 5


def test_a_network_address_without_tls_is_refused_in_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mcpi", "dashboard", "--bind", "0.0.0.0"],
        env=hub_env(tmp_path / "cache"), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "plain HTTP" in done.stderr
    assert "--insecure-plain-http" in done.stderr


def test_a_port_taken_is_refused_in_one_line_not_moved(tmp_path: Path) -> None:
    pytest.importorskip("uvicorn")
    with socket.socket() as taken:
        port = free_port()
        taken.bind(("127.0.0.1", port))
        taken.listen()
        done = subprocess.run(
            [sys.executable, "-m", "mcpi", "dashboard", "--port", str(port)],
            env=hub_env(tmp_path / "cache"), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and f"127.0.0.1:{port}" in done.stderr
