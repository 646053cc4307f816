"""Job records, the local pool's chunk journal and the trace: pure parts."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from mcpi.core.chunk import ChunkResult, Telemetry
from mcpi.core.kernel import dart_sums
from mcpi.core.plan import Chunk
from mcpi.hub.records import DONE, RUNNING, ChunkJournal, JobBook, JobRecord, RecordError, Stage
from mcpi.hub.trace import Trace
from tests.helpers import PI

JOB = "0123456789abcdef"


def record(job_id: str = JOB, **fields: object) -> JobRecord:
    return JobRecord(
        id=job_id,
        seed=7,
        mode="local",
        where="local",
        model=PI.to_json() | {"source": "pi"},
        request={"samples": 100},
        view="estimate",
        **fields,  # type: ignore[arg-type]
    )


def result(index: int, hits: int = 3) -> ChunkResult:
    return ChunkResult(
        Chunk(index, index * 10, index * 10 + 10), dart_sums(hits), Telemetry("h", 1, 0.1, "v")
    )


def test_a_record_survives_a_round_trip(tmp_path: Path) -> None:
    book = JobBook(tmp_path)
    original = record(stages=[Stage(0, 60, 10, dart_sums(47)), Stage(60, 40, 10)])
    book.save(original)
    loaded = book.load(JOB)
    assert loaded == original
    assert loaded.counted == (dart_sums(47), 60) and loaded.status == RUNNING
    assert json.loads((tmp_path / f"{JOB}.json").read_text())["format"] == 2
    assert (tmp_path / f"{JOB}.json").stat().st_mode & 0o077 == 0  # private, like the cache


def test_recent_lists_newest_first_and_prune_keeps_the_newest(tmp_path: Path) -> None:
    book = JobBook(tmp_path)
    ids = [f"{i:016x}" for i in range(5)]
    for i, job_id in enumerate(ids):
        book.save(record(job_id, created=f"2026-11-25T00:00:0{i}+00:00"))
        os.utime(tmp_path / f"{job_id}.json", (time.time() + i, time.time() + i))
    assert [r.id for r in book.recent(3)] == ids[::-1][:3]
    (tmp_path / "garbage.json").write_text("{")
    (tmp_path / f"{'f' * 16}.json").write_text("[1, 2]")  # unreadable: skipped
    assert len(book.recent()) == 5
    book.prune(keep=2)
    assert {r.id for r in book.recent()} <= set(ids[3:]) | {"f" * 16}


@pytest.mark.parametrize("job_id", ["", "../etc/passwd", "0123", "0123456789ABCDEFG", "x" * 16])
def test_only_job_ids_name_records(tmp_path: Path, job_id: str) -> None:
    with pytest.raises(RecordError, match="not a job id"):
        JobBook(tmp_path).load(job_id)


def test_missing_or_corrupt_records_are_one_line_errors(tmp_path: Path) -> None:
    book = JobBook(tmp_path)
    with pytest.raises(RecordError, match="no job"):
        book.load(JOB)
    (tmp_path / f"{JOB}.json").write_text("{not json")
    with pytest.raises(RecordError, match="cannot read"):
        book.load(JOB)
    (tmp_path / f"{JOB}.json").write_text(json.dumps({"id": JOB}))
    with pytest.raises(RecordError, match="malformed"):
        book.load(JOB)
    (tmp_path / f"{JOB}.json").write_text(json.dumps(record().to_json() | {"view": "plot"}))
    with pytest.raises(RecordError, match="no view 'plot'"):
        book.load(JOB)
    (tmp_path / f"{JOB}.json").write_text(json.dumps(record().to_json() | {"format": 3}))
    with pytest.raises(RecordError, match="format 3 is not 2"):
        book.load(JOB)


def test_no_cache_dir_keeps_nothing_and_says_so() -> None:
    book = JobBook(None)
    book.save(record())  # silently nothing
    assert book.recent() == []
    with pytest.raises(RecordError, match="no cache directory"):
        book.load(JOB)


def test_the_journal_returns_its_stage_results_and_skips_a_torn_line(tmp_path: Path) -> None:
    journal = ChunkJournal(tmp_path / "j.chunks")
    journal.append("a", result(0))
    journal.append("b", result(1))
    journal.append("a", result(2, hits=5))
    journal.close()
    with (tmp_path / "j.chunks").open("a") as stream:
        stream.write('{"job": "a", "result": {"chunk"')  # the hub died mid-line
    assert ChunkJournal(tmp_path / "j.chunks").read("a") == [result(0), result(2, hits=5)]
    journal.remove()
    assert not (tmp_path / "j.chunks").exists()
    assert ChunkJournal(tmp_path / "j.chunks").read("a") == []


def test_the_trace_stays_small_and_ends_on_the_total() -> None:
    ticks = iter(range(10**6))
    trace = Trace(max_points=100, clock=lambda: float(next(ticks)))
    trace.start(0)
    for i in range(10_001):
        trace.counted(result(i % 7, hits=i % 3))
    trace.finish()
    assert len(trace.points) <= 101
    assert trace.points[-1].darts == 10 * 10_001 == trace.darts
    darts = [p.darts for p in trace.points]
    assert darts == sorted(darts) and trace.sums == trace.points[-1].sums


def test_a_done_record_says_so(tmp_path: Path) -> None:
    book = JobBook(tmp_path)
    book.save(record(status=DONE, result={"samples": 100, "outputs": {"pi": {"mean": 3.12}}}))
    assert book.load(JOB).status == DONE
