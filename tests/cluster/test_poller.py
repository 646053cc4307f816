"""The hub's polls of a real Redis backend (mcpi.cluster.poller)."""

from __future__ import annotations

from typing import Any

import pytest

from mcpi.cluster.arrivals import Arrivals, Listeners
from mcpi.cluster.client import ClusterClient
from mcpi.cluster.poller import Poller
from mcpi.settings import load_settings

pytestmark = pytest.mark.integration


def test_a_running_copy_s_state_is_decoded_once_however_often_it_is_polled(
    cluster_env: dict[str, str],
) -> None:
    client = ClusterClient(load_settings(env=cluster_env))
    backend = client.results
    seen: list[tuple[str, Any]] = []
    poller = Poller(backend, Arrivals(Listeners(backend)), lambda t, s, _: seen.append((t, s)))
    decoded = 0
    decode = backend.decode_result

    def poll(ids: dict[str, int]) -> list[Any]:
        """One poll, counting the stored states it decodes."""

        def counting(value: bytes) -> Any:
            nonlocal decoded
            decoded += 1
            return decode(value)

        backend.decode_result = counting
        try:
            return poller.poll(ids)
        finally:
            backend.decode_result = decode

    ids = {"poll-a": 0, "poll-b": 1, "poll-c": 2}
    try:
        for task_id in ("poll-a", "poll-b"):
            backend.store_result(task_id, {"pid": 1, "hostname": "w1@h1"}, "STARTED")
        for _ in range(5):
            assert poll(ids) == []
        assert decoded == 2  # each running copy once, not once a poll
        assert seen == [("poll-a", {"pid": 1, "hostname": "w1@h1"}), ("poll-b", seen[1][1])]

        # A copy that starts again elsewhere (its first worker lost) is a new state.
        backend.store_result("poll-b", {"pid": 2, "hostname": "w2@h2"}, "STARTED")
        backend.store_result("poll-a", {"darts": 1}, "SUCCESS")
        ready = poll(ids)
        assert [(t, i, m["status"]) for t, i, m in ready] == [("poll-a", 0, "SUCCESS")]
        assert seen[-1] == ("poll-b", {"pid": 2, "hostname": "w2@h2"})
        assert decoded == 4
    finally:
        client.close()
