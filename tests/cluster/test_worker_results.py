"""How workers store a chunk's states in the real Redis: one atomic round trip each, a
success never overwritten (:class:`mcpi.cluster.app.WorkerResults`)."""

from __future__ import annotations

import json
import time

import pytest

from mcpi.cluster.app import WorkerResults, create_app
from mcpi.settings import load_settings
from mcpi.testing.servers import Redis

pytestmark = pytest.mark.integration


def test_a_worker_stores_each_state_once_announced_and_never_over_a_success(
    cluster_env: dict[str, str], redis_server: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = create_app(load_settings(env=cluster_env), role="worker").backend
    assert isinstance(backend, WorkerResults)
    raw = redis_server.client()
    key = backend.get_key_for_task("mcpi-test-state").decode()
    listener = raw.pubsub()
    listener.subscribe(key)
    assert listener.get_message(timeout=5)["type"] == "subscribe"

    def announced() -> dict[str, object]:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            message = listener.get_message(timeout=1)
            if message and message["type"] == "message":
                return dict(json.loads(message["data"]))
        raise AssertionError("no announcement")

    def stored() -> dict[str, object]:
        return dict(json.loads(raw.get(key)))

    # Every command the worker's client sends, by name (a pipeline would be more).
    sent: list[str] = []
    client = backend.client
    send = client.execute_command
    monkeypatch.setattr(
        client, "execute_command", lambda *a, **k: sent.append(a[0]) or send(*a, **k)
    )
    monkeypatch.setattr(client, "pipeline", None)
    backend.store_result("mcpi-test-state", None, "STARTED")
    assert stored()["status"] == "STARTED" and announced()["status"] == "STARTED"
    backend.store_result("mcpi-test-state", {"darts": 7}, "SUCCESS")
    assert stored()["result"] == {"darts": 7} and announced()["status"] == "SUCCESS"
    assert 0 < raw.ttl(key) <= backend.expires
    # A late copy of the chunk starting again does not hide the success, nor announce.
    backend.store_result("mcpi-test-state", None, "STARTED")
    assert stored()["status"] == "SUCCESS" and stored()["result"] == {"darts": 7}
    assert listener.get_message(timeout=1) is None
    # One round trip a state (Celery's own store reads, then writes and announces).
    # (The script is loaded once, on its first use: Redis did not know it.)
    if sent[:2] == ["EVALSHA", "SCRIPT LOAD"]:
        sent = sent[2:]
    assert sent == ["EVALSHA"] * 3, sent
    listener.close()
