"""Aggregation by chunk id: duplicates once, gaps named, nonsense refused."""

from __future__ import annotations

import pytest

from mcpi.core.chunk import ChunkResult, Telemetry
from mcpi.core.kernel import dart_sums
from mcpi.core.tally import JobTally, MissingChunks, TallyError, Totals, WaveTally
from tests.helpers import PLAN, result


def test_a_duplicate_counts_once() -> None:
    tally = WaveTally(PLAN, range(10))
    assert tally.add(result(3))
    assert not tally.add(result(3))
    assert (tally.sums, tally.darts, tally.duplicates) == (dart_sums(50), 100, 1)


def test_a_contradicting_duplicate_is_an_error() -> None:
    tally = WaveTally(PLAN, range(10))
    tally.add(result(3, hits=50))
    with pytest.raises(TallyError, match="counted twice"):
        tally.add(result(3, hits=51))


def test_missing_chunks_are_named() -> None:
    tally = WaveTally(PLAN, range(10))
    for i in (0, 1, 2, 4, 5, 6, 7, 8):
        tally.add(result(i))
    with pytest.raises(MissingChunks) as info:
        tally.check_complete()
    assert info.value.missing == [3, 9]
    assert "3, 9" in str(info.value)


def test_chunks_outside_the_wave_or_plan_are_refused() -> None:
    tally = WaveTally(PLAN, range(0, 5))
    with pytest.raises(TallyError, match="does not belong"):
        tally.add(result(7))
    forged = ChunkResult(
        PLAN.chunk(2).__class__(2, 200, 250), dart_sums(10), Telemetry("h", 1, 0.1, "x")
    )
    with pytest.raises(TallyError, match="bounds"):
        tally.add(forged)
    with pytest.raises(TallyError, match="impossible"):
        tally.add(result(1, hits=101))


def test_job_tally_folds_complete_waves_only() -> None:
    job = JobTally(PLAN)
    first = WaveTally(PLAN, range(0, 5))
    for i in range(5):
        first.add(result(i, host=f"h{i % 2}"))
    job.fold(first)
    second = WaveTally(PLAN, range(5, 10))
    with pytest.raises(MissingChunks):
        job.fold(second)
    for i in range(5, 10):
        second.add(result(i, host="h0"))
    job.fold(second)
    assert job.complete and job.sums == dart_sums(500) and job.chunks == 10
    assert job.hosts["h0"].chunks == 8 and job.hosts["h1"].darts == 200


def test_results_of_an_earlier_run_count_but_are_not_this_runs_host_work() -> None:
    wave = WaveTally(PLAN, range(10))
    for i in range(4):
        assert wave.add(result(i, host="old"), earlier=True)
    for i in range(4, 10):
        wave.add(result(i, host="new"))
    assert not wave.add(result(2, host="new"))  # counted before: still counted once
    job = JobTally(PLAN)
    job.fold(wave)
    assert (job.sums, job.darts, job.earlier_darts) == (dart_sums(500), 1000, 400)
    assert list(job.hosts) == ["new"] and job.hosts["new"].darts == 600


def test_every_level_folds_with_the_same_totals() -> None:
    # A stage's tally folds into the run's totals as waves fold into the job's.
    job = JobTally(PLAN)
    wave = WaveTally(PLAN, range(10))
    for i in range(10):
        wave.add(result(i, host=f"h{i % 3}"))
    wave.add(result(0, host="h0"))
    job.fold(wave)
    run = Totals()
    run.absorb(job)
    run.absorb(job)
    assert (run.sums, run.darts, run.chunks, run.duplicates) == (dart_sums(1000), 2000, 20, 2)
    assert sum(w.chunks for w in run.hosts.values()) == 20 and run.versions == {"0.1.0"}
