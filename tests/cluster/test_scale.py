"""An emulated cluster of many hosts on this machine (:mod:`mcpi.testing.scale`): the
short tier of the scale benchmark (``benchmarks/scale.py`` sweeps 16 to 1,600 slots)."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from mcpi.testing.scale import EmulatedCluster

pytestmark = pytest.mark.integration


def test_an_emulated_cluster_of_six_hosts_counts_every_sample_once(tmp_path: Path) -> None:
    with EmulatedCluster(tmp_path) as cluster:
        cluster.grow(hosts=6, slots=8)
        assert cluster.slots == 48
        broker, redis = cluster.connections()
        # Connections grow with hosts, not slots (threads share their node's).
        assert broker <= 4 * 6 and redis <= 4 * 6, (broker, redis)
        env = cluster.hub_env(tmp_path / "cache")
        # 48 slots x 1.5 s of naps of 1 ms: a cold job (calibrated), then a warm one.
        # The hub as a user runs it: a process with the nap model on its path.
        args = [sys.executable, "-m", "mcpi", "run", "nap", "-n", "72000", "--seed", "3"]
        cold, warm = (
            json.loads(
                subprocess.run(
                    [*args, "--json"], env=env, capture_output=True, text=True, check=True
                ).stdout
            )
            for _ in range(2)
        )
    assert cold["chunking"]["rates"] == ["calibrated"] and warm["chunking"]["rates"] == ["learnt"]
    for report in (cold, warm):
        assert report["samples"] == 72000 and report["duplicates"] == 0
        assert 0 < report["largest_message_bytes"] < 2**20
        # Each emulated host is a host of its own to the hub: slots, chunks, rates.
        hosts = {h["host"]: h for h in report["hosts"]}
        assert set(hosts) == {f"emu-{i}" for i in range(6)}, hosts
        assert sum(h["samples"] for h in hosts.values()) == 72000
    # The same seed, the same answer, however the two jobs were chunked.
    assert cold["outputs"]["x"]["mean"] == warm["outputs"]["x"]["mean"]


def test_a_cold_calibration_sends_a_bounded_number_of_rate_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Calibration must not cost more with more hosts: at most RATE_CHUNKS chunks measure
    rates, and a host none of them reached is given the typical rate, as "assumed"."""
    from mcpi.cluster import calibration
    from mcpi.cluster.client import ClusterClient
    from mcpi.models.builtin import pi
    from mcpi.settings import load_settings

    monkeypatch.setattr(calibration, "RATE_CHUNKS", 3)
    with EmulatedCluster(tmp_path) as cluster:
        cluster.grow(hosts=6, slots=2)
        client = ClusterClient(load_settings(env=cluster.hub_env(tmp_path / "cache")))
        slots = {f"emu-{i}": 2 for i in range(6)}
        capacity = calibration.calibrate(client, slots, pi.call({}))
        client.close()
    assert capacity.slots == 12
    calibrated = [h.rate for h in capacity.hosts if h.source == "calibrated"]
    assumed = [h.rate for h in capacity.hosts if h.source == "assumed"]
    assert 1 <= len(calibrated) <= 3 and len(calibrated) + len(assumed) == 6
    assert set(assumed) == {statistics.median(calibrated)}
