"""What watching costs a job: the same job with and without a dashboard page open.

    python benchmarks/dashboard.py [--quick] [--darts N] [--rounds R]

A job of N darts (1e10) on the local pool of every core, through the CLI, timed in R
rounds (3), each round once unwatched and once with ``mcpi-hub dashboard`` serving it
and a page's event stream open (a client reading every snapshot, as a browser does);
the order alternates between rounds so that drifts in the machine's speed hit both.
Reports the medians and their ratio, unwatched / watched (target ≥ 0.98: the dashboard
reads the job book and the chunk journal that the hub writes anyway; its own CPU is
what it can cost, on a control node that also computes).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from mcpi.testing.servers import free_port, stop_group, wait_for

TARGET = 0.98


def hub_env(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCPI_")}
    return env | {"MCPI_CACHE_DIR": str(cache), "XDG_CONFIG_HOME": str(cache / "no-config")}


def job(cache: Path, darts: int, seed: int) -> float:
    """Wall seconds of one whole ``estimate`` command (its answer checked to exist)."""
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "mcpi", "estimate", "-n", str(darts), "--seed", str(seed),
         "--local", "--json"],
        env=hub_env(cache), capture_output=True, text=True, timeout=3600, check=True,
    )  # fmt: skip
    wall = time.perf_counter() - began
    assert json.loads(done.stdout)["darts"] == darts
    return wall


class Watching:
    """A dashboard on this job book, with one page's event stream open."""

    def __init__(self, cache: Path) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mcpi", "dashboard", "--port", str(self.port)],
            env=hub_env(cache), stdout=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip
        assert self.process.stdout is not None
        token = re.search(r"token=(\S+)", self.process.stdout.readline())
        assert token, "the dashboard printed no URL"
        self.token = token.group(1)
        self.events = 0
        self.stop = threading.Event()
        wait_for(self._answers, 30, "the dashboard")
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)

    def _answers(self) -> bool:
        try:
            connection = self._connection()
            connection.request("GET", "/healthz")
            return connection.getresponse().status == 200
        except OSError:
            return False

    def _read(self) -> None:
        connection = self._connection()
        connection.request("GET", f"/?token={self.token}")
        cookie = (connection.getresponse().getheader("Set-Cookie") or "").split(";")[0]
        connection = self._connection()
        connection.request("GET", "/api/stream", headers={"Cookie": cookie})
        response = connection.getresponse()
        while not self.stop.is_set():
            line = response.readline()
            if not line:
                return
            if line.startswith(b"data: "):
                json.loads(line[6:])  # what a page does with each snapshot, at least
                self.events += 1

    def close(self) -> None:
        self.stop.set()
        stop_group(self.process, timeout=10)  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1e9 darts, one round")
    parser.add_argument("--darts", type=float, default=None, help="darts per job (1e10)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (3)")
    args = parser.parse_args()
    darts = int(args.darts or (1e9 if args.quick else 1e10))
    rounds = args.rounds or (1 if args.quick else 3)
    plain: list[float] = []
    watched: list[float] = []
    events = 0
    with tempfile.TemporaryDirectory(prefix="mcpi-dashboard-bench-") as tmp:
        cache = Path(tmp)
        job(cache, min(darts, 10**9), 1)  # warm: the rate book, the page cache
        for r in range(rounds):
            for watching in (False, True) if r % 2 == 0 else (True, False):
                if not watching:
                    plain.append(job(cache, darts, 100 + r))
                    continue
                page = Watching(cache)
                try:
                    time.sleep(1.5)  # the page open and streaming before the job starts
                    watched.append(job(cache, darts, 100 + r))
                    events += page.events
                finally:
                    page.close()
    alone, seen = statistics.median(plain), statistics.median(watched)
    ratio = alone / seen
    print(f"job of {darts:.0e} darts on the local pool, median of {rounds} round(s):")
    print(f"  unwatched {alone:.3f} s, with a dashboard page open {seen:.3f} s")
    print(f"  ({events} snapshots streamed to the page while its jobs ran)")
    verdict = "met" if ratio >= TARGET else "MISSED"
    print(f"target: unwatched / watched {ratio:.3f} (>= {TARGET}) {verdict}")


if __name__ == "__main__":
    main()
