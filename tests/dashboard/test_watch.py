"""The dashboard's view of the job book: a real job's journal, tailed as the hub writes it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mcpi.core.chunk import compute_chunk
from mcpi.core.exact import output_estimate
from mcpi.core.job import Job
from mcpi.core.plan import Plan
from mcpi.core.tally import add_sums
from mcpi.dashboard.watch import Watcher
from mcpi.hub.binding import bind
from mcpi.hub.records import DONE, JobBook, JobRecord
from mcpi.models.builtin import pi

pytest.importorskip("starlette")


def hub_env(cache: Path) -> dict[str, str]:
    return {"MCPI_CACHE_DIR": str(cache), "XDG_CONFIG_HOME": str(cache / "no-config"), "PATH": ""}


def test_a_running_job_is_watched_from_its_journal_and_ends_at_the_cli_s_answer(
    tmp_path: Path,
) -> None:
    # A real job on the local pool, through the CLI, as a user runs it; the dashboard's
    # watcher looks at the job book meanwhile, as the dashboard does once a second.
    cache = tmp_path / "cache"
    job = subprocess.Popen(
        [sys.executable, "-m", "mcpi", "estimate", "-n", "6e9", "--seed", "11", "--local",
         "--processes", "1", "--chunk-size", "1e8", "--json"],
        env=hub_env(cache) | {"PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    watcher = Watcher(JobBook(cache / "jobs"))
    seen = []
    while job.poll() is None:
        snapshot = watcher.snapshot()
        seen += [j for j in snapshot["jobs"] if j["status"] == "running"]
        time.sleep(0.05)
    out, _ = job.communicate(timeout=60)
    assert job.returncode == 0
    answer = json.loads(out)

    running = [j for j in seen if j["estimate"] is not None]
    assert len({j["samples"] for j in running}) >= 3  # the estimate advanced, chunk by chunk
    last = running[-1]
    assert last["kind"] == "π" and last["seed"] == 11 and last["total"] == 6 * 10**9
    assert [h["host"] for h in last["hosts"]] and not last["hosts"][0]["gone"]
    assert last["exact"] == pytest.approx(3.141592653589793)
    # The band narrows as samples come: its width falls like 1/sqrt(n).
    series = last["series"]
    widths = [high - low for _, _, _, low, high in series]
    assert widths[-1] < widths[0] and series[-1][1] > series[0][1]
    # What the hub says is out (from the job's second second on): 60 chunks, those
    # counted rising, at most 2 out (the pool keeps two per process), one running on its
    # one process.
    chunks = [j["chunks"] for j in seen if "chunks" in j]
    assert {c["chunks"] for c in chunks} == {60} and chunks[-1]["counted"] > chunks[0]["counted"]
    assert all(c["out"] <= 2 and c["running"] <= 1 for c in chunks)
    assert any(c["running"] == 1 for c in chunks)
    assert "ran locally (--local)" in last["notes"] and last["live_age"] < 5
    # The host's rate over time: its samples a second at each look, from the second on.
    rates = last["rates"]
    (host,) = rates["hosts"]
    assert len(rates["t"]) == len(rates["hosts"][host]) >= 2
    assert all(r is not None and r >= 0 for r in rates["hosts"][host])
    assert max(rates["hosts"][host]) > 0

    final = watcher.snapshot()["jobs"][0]
    assert final["status"] == DONE and final["result"]["outputs"]["pi"]["mean"] == answer["pi"]
    # The series the page drew ends at the CLI's own answer, bit for bit.
    assert final["series"][-1][1] == 6 * 10**9 and final["series"][-1][2] == answer["pi"]
    assert list(final["series"][-1][3:]) == answer["ci95"]
    # Its last word: every chunk counted, none out, and the report's notes.
    assert final["chunks"] == dict(stage=0, chunks=60, counted=60, out=0, running=0, backups=0)
    assert final["notes"] == answer["notes"]


def test_the_running_estimate_is_the_exact_sums_estimate_and_a_torn_line_waits(
    tmp_path: Path,
) -> None:
    book = JobBook(tmp_path / "jobs")
    bound = bind("pi")
    record = JobRecord(
        id="00000000000000aa", seed=5, mode="local", where="local", model=bound.record(),
        request={"samples": 4000, "sampler": {"kind": "mc"}}, view="estimate",
    )  # fmt: skip
    book.save(record)
    job = Job(record.id, 5, Plan(4000, 1000), pi.call({}))
    results = [compute_chunk(pi, job, c) for c in job.plan.chunks()]
    journal = book.journal(record.id)
    assert journal is not None
    watcher = Watcher(book)
    assert watcher.snapshot()["jobs"][0]["estimate"] is None  # nothing counted yet

    journal.append(record.id, results[0])
    journal.append(record.id, results[1])
    with journal.path.open("a") as stream:  # the hub is writing the next line
        stream.write('{"job": "00000000000000aa", "result": {"chu')
    view = watcher.snapshot()["jobs"][0]
    sums = add_sums(results[0].sums, results[1].sums)
    expected = output_estimate("pi", 2000, sums[0], sums[1], binary=4.0)
    assert view["samples"] == 2000 and view["status"] == "running"
    assert view["estimate"] == (expected.mean, expected.ci_low, expected.ci_high)
    assert view["params"] == {} and view["output"] == "pi"


def test_a_model_that_cannot_be_found_shows_progress_without_a_band(tmp_path: Path) -> None:
    book = JobBook(tmp_path / "jobs")
    model = bind("pi").record() | {"source": "no-such-model-anywhere"}
    record = JobRecord(
        id="00000000000000bb", seed=5, mode="local", where="local", model=model,
        request={"samples": 2000, "sampler": {"kind": "mc"}}, view="run",
    )  # fmt: skip
    book.save(record)
    job = Job(record.id, 5, Plan(2000, 1000), pi.call({}))
    journal = book.journal(record.id)
    assert journal is not None
    journal.append(record.id, compute_chunk(pi, job, job.plan.chunk(0)))
    view = Watcher(book).snapshot()["jobs"][0]
    # Without its declaration, pi's binary output would get a normal interval: none.
    assert view["samples"] == 1000 and view["estimate"] is None
