"""What a running job's hub says is out (mcpi.hub.live), for the dashboard to read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mcpi.core.tally import Busy
from mcpi.errors import JobFailed
from mcpi.hub.live import LiveState, read_live
from mcpi.hub.records import JobBook
from mcpi.hub.request import JobRequest
from mcpi.settings import Settings
from mcpi.testing.inprocess import Faults, InProcess
from tests.hub.support import run

#: Chunks that take a while: a job of over a second, which leaves its state.
SLOW = Faults(delay={i: 0.15 for i in range(10)})


def test_a_job_leaves_its_last_state_and_the_report_s_notes(settings: Settings) -> None:
    request = JobRequest("pi", samples=10**6, seed=3, sampler="mc", chunk_size=10**5)
    report = run(request, settings, InProcess({"a": 2}, faults=SLOW))
    book = JobBook.of(settings)
    path = book.live(report.job_id)
    assert path is not None
    live = read_live(path)
    assert live is not None and live["ended"] and live["notes"] == report.notes
    assert (live["chunks"], live["counted"], live["out"], live["running"]) == (10, 10, 0, 0)
    assert book.load(report.job_id).result["notes"] == report.notes  # type: ignore[index]
    # Pruned with its record.
    book.prune(keep=0)
    assert not path.exists()


def test_a_job_of_less_than_a_second_writes_no_state_but_keeps_its_notes(
    settings: Settings,
) -> None:
    request = JobRequest("pi", samples=10**6, seed=3, sampler="mc", chunk_size=10**5)
    report = run(request, settings, InProcess({"a": 2}))
    book = JobBook.of(settings)
    path = book.live(report.job_id)
    assert path is not None and not path.exists()
    assert book.load(report.job_id).result["notes"] == report.notes  # type: ignore[index]


def test_a_failed_job_s_state_ends_too(settings: Settings) -> None:
    request = JobRequest("pi", samples=10**6, seed=3, sampler="mc", chunk_size=10**5)
    faults = Faults(fail={8: "boom"}, delay=SLOW.delay)
    with pytest.raises(JobFailed):
        run(request, settings, InProcess(faults=faults))
    (record,) = JobBook.of(settings).recent()
    path = JobBook.of(settings).live(record.id)
    assert path is not None
    live = read_live(path)
    assert live is not None and live["ended"] and live["counted"] == 8


def test_the_state_is_written_at_each_edge_and_at_most_once_an_interval(tmp_path: Path) -> None:
    path = tmp_path / "job.live"
    live = LiveState(path, interval=3600)
    live.began -= 3600  # a job an hour old: past its first, silent, interval
    live.stage(0, 8, ["a note"])
    assert json.loads(path.read_text())["chunks"] == 8
    live.busy(Busy(4, 2, 1))
    live.counted()
    assert json.loads(path.read_text())["out"] == 0  # within the interval: not written
    live.stage_ended()
    written = json.loads(path.read_text())
    assert (written["counted"], written["backups"], written["out"]) == (1, 1, 0)
    live.stage(1, 4, ["a note"])
    live.busy(Busy(2, 2, 2))
    live.ended(["done"])
    written = json.loads(path.read_text())
    # A stage's backups add to the earlier stages'.
    assert (written["stage"], written["backups"], written["notes"]) == (1, 3, ["done"])
    assert read_live(tmp_path / "none.live") is None
