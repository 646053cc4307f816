"""Aggregation by chunk id: duplicates once, gaps named, nonsense refused."""

from __future__ import annotations

import pytest

from mcpi.job import Job, MalformedMessage
from mcpi.plan import Plan
from mcpi.tally import ChunkResult, JobTally, MissingChunks, TallyError, Telemetry, WaveTally
from mcpi.tasks import count_chunk_message, tally_wave_message

PLAN = Plan(1000, 100)
JOB = Job("j", 5, PLAN)


def result(index: int, hits: int | None = None, host: str = "h1") -> ChunkResult:
    chunk = PLAN.chunk(index)
    return ChunkResult(chunk, 50 if hits is None else hits, Telemetry(host, 1, 0.5, "0.1.0"))


def test_a_duplicate_counts_once() -> None:
    tally = WaveTally(PLAN, range(10))
    assert tally.add(result(3))
    assert not tally.add(result(3))
    assert (tally.hits, tally.darts, tally.duplicates) == (50, 100, 1)


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
        tally.summary()
    assert info.value.missing == [3, 9]
    assert "3, 9" in str(info.value)


def test_chunks_outside_the_wave_or_plan_are_refused() -> None:
    tally = WaveTally(PLAN, range(0, 5))
    with pytest.raises(TallyError, match="does not belong"):
        tally.add(result(7))
    forged = ChunkResult(PLAN.chunk(2).__class__(2, 200, 250), 10, Telemetry("h", 1, 0.1, "x"))
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
    assert job.complete and job.hits == 500 and job.chunks == 10
    assert job.hosts["h0"].chunks == 8 and job.hosts["h1"].darts == 200


def test_chord_callback_absorbs_duplicates_and_refuses_gaps() -> None:
    messages = [count_chunk_message(JOB.to_message(), [i, *divmod_bounds(i)]) for i in range(10)]
    totals = tally_wave_message(messages + messages[:3], JOB.to_message(), 0, 10)
    assert totals["duplicates"] == 3
    assert totals["hits"] == sum(m["chunk"]["hits"] for m in messages)
    with pytest.raises(MissingChunks):
        tally_wave_message(messages[:9] + messages[:1], JOB.to_message(), 0, 10)


def divmod_bounds(index: int) -> list[int]:
    chunk = PLAN.chunk(index)
    return [chunk.start, chunk.stop]


@pytest.mark.parametrize(
    "message",
    [
        None,
        {},
        {"chunk": {}},
        {
            "chunk": {"index": 0, "start": 0, "stop": 100, "hits": "5"},
            "telemetry": {"host": "h", "pid": 1, "seconds": 0.1, "version": "x"},
        },
    ],
)
def test_malformed_results_are_refused(message: object) -> None:
    with pytest.raises(MalformedMessage):
        ChunkResult.from_message(message)


def test_result_messages_round_trip() -> None:
    r = result(4)
    assert ChunkResult.from_message(r.to_message()) == r


@pytest.mark.parametrize(
    ("job", "chunk"),
    [
        ({"id": "j"}, [0, 0, 100]),
        (JOB.to_message(), [0, 0, 99]),
        (JOB.to_message(), "0-100"),
        ({**JOB.to_message(), "seed": -1}, [0, 0, 100]),
    ],
)
def test_chunk_task_refuses_messages_off_the_plan(job: object, chunk: object) -> None:
    with pytest.raises(MalformedMessage):
        count_chunk_message(job, chunk)


def test_results_of_an_earlier_run_count_but_are_not_this_runs_host_work() -> None:
    wave = WaveTally(PLAN, range(10))
    for i in range(4):
        assert wave.add(result(i, host="old"), earlier=True)
    for i in range(4, 10):
        wave.add(result(i, host="new"))
    assert not wave.add(result(2, host="new"))  # counted before: still counted once
    job = JobTally(PLAN)
    job.fold(wave)
    assert (job.hits, job.darts, job.earlier_darts) == (500, 1000, 400)
    assert list(job.hosts) == ["new"] and job.hosts["new"].darts == 600
