"""Job records: what the hub keeps of every job, so that ``jobs`` lists them and
``estimate --resume ID`` can finish one a crashed or interrupted hub left behind.

A record is one JSON file, ``<cache_dir>/jobs/<id>.json``, replaced atomically at each
step (job started, stage planned, stage counted, job ended). It holds what defines the
job's count (seed, stages: first dart, darts, chunk size) and where it ran; the chunk
results themselves go to the hub's journal next to the record, as they are counted
(and a cluster's also stay in its result backend, for ``result_expires``). A hub that
dies leaves its record "running": that is what ``--resume`` picks up.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mcpi.core.chunk import ChunkResult
from mcpi.core.messages import MalformedMessage, decode_result, encode_result
from mcpi.core.tally import add_sums

#: Records kept: the oldest beyond this are deleted when a new job starts.
KEEP_RECORDS = 200

RUNNING, DONE, FAILED = "running", "done", "failed"

_JOB_ID = re.compile(r"[0-9a-f]{16}")


class RecordError(ValueError):
    """A job record that is missing or unreadable."""


@dataclass
class Stage:
    """Darts (or a model's samples) [first, first + darts), in chunks of chunk_size."""

    first: int
    darts: int
    chunk_size: int
    hits: int | None = None  # a π stage's count; None until the stage is counted
    sums: list[int] | None = None  # a model stage's exact sums, once counted

    @property
    def counted(self) -> bool:
        return self.hits is not None or self.sums is not None

    @property
    def totals(self) -> tuple[int, ...]:
        """The stage's exact sums: ``(hits,)`` for π (empty until counted)."""
        if self.sums is not None:
            return tuple(self.sums)
        return () if self.hits is None else (self.hits,)

    def count(self, sums: tuple[int, ...], model: bool) -> None:
        """Record the stage's counted sums."""
        if model:
            self.sums = list(sums)
        else:
            self.hits = sums[0]


@dataclass
class JobRecord:
    id: str
    seed: int
    mode: str  # "local" or "cluster"
    where: str  # the cluster's broker (host:port/vhost) or "local"
    #: What was asked: {"darts": N} or {"precision": H, "max_darts": M} (and, of a
    #: model job, the output a precision targets).
    request: dict[str, Any]
    created: str = field(default_factory=lambda: now())
    updated: str = field(default_factory=lambda: now())
    status: str = RUNNING
    stages: list[Stage] = field(default_factory=list)
    error: str | None = None
    #: The final count: {"darts", "hits", "pi", "ci_low", "ci_high"} once done (a
    #: model job's: {"samples", "outputs": {name: {"mean", "std_error", "ci95"}}}).
    result: dict[str, Any] | None = None
    #: A model job's model: its call (name, params, block, version, digest, outputs)
    #: and ``source``, where the hub found it (an installed name, or a local file).
    model: dict[str, Any] | None = None

    @property
    def counted(self) -> tuple[tuple[int, ...], int]:
        """(exact sums, darts) of the stages counted so far."""
        sums: tuple[int, ...] = ()
        darts = 0
        for stage in self.stages:
            if stage.counted:
                sums = add_sums(sums, stage.totals)
                darts += stage.darts
        return sums, darts

    @property
    def kind(self) -> str:
        """What the job computes: "π" or the model's name."""
        return "π" if self.model is None else str(self.model.get("name"))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> JobRecord:
        try:
            stages = [Stage(**s) for s in data.pop("stages")]
            return cls(stages=stages, **data)
        except (AttributeError, KeyError, TypeError) as exc:
            raise RecordError(f"malformed job record: {exc}") from None


class JobBook:
    """The job records in ``directory`` (None: keep nothing)."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory

    def path(self, job_id: str) -> Path:
        if self.directory is None:
            raise RecordError("no cache directory is configured (MCPI_CACHE_DIR): no job records")
        if not _JOB_ID.fullmatch(job_id):
            raise RecordError(f"{job_id!r} is not a job id (16 hex digits, see `mcpi-hub jobs`)")
        return self.directory / f"{job_id}.json"

    def journal(self, job_id: str) -> ChunkJournal | None:
        """Where the hub journals the chunk results of job ``job_id`` (None: nowhere).

        One journal per record, for all of its stages (``job_id`` may be a stage's).
        """
        if self.directory is None:
            return None
        return ChunkJournal(self.directory / f"{record_id(job_id)}.chunks")

    def save(self, record: JobRecord) -> None:
        """Write ``record`` atomically (best effort: a full disk must not fail the job)."""
        if self.directory is None:
            return
        record.updated = now()
        with contextlib.suppress(OSError):
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            descriptor, temporary = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
            try:
                with os.fdopen(descriptor, "w") as stream:
                    json.dump(record.to_json(), stream, indent=1)
                os.replace(temporary, self.path(record.id))
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise

    def load(self, job_id: str) -> JobRecord:
        path = self.path(job_id)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise RecordError(f"no job {job_id} in {path.parent} (see `mcpi-hub jobs`)") from None
        except (OSError, ValueError) as exc:
            raise RecordError(f"cannot read the record of job {job_id}: {exc}") from None
        return JobRecord.from_json(data)

    def recent(self, limit: int | None = None) -> list[JobRecord]:
        """Readable records, newest first."""
        records = []
        for path in self._paths():
            with contextlib.suppress(OSError, ValueError, RecordError):
                records.append(JobRecord.from_json(json.loads(path.read_text())))
        records.sort(key=lambda r: r.created, reverse=True)
        return records[:limit] if limit is not None else records

    def prune(self, keep: int = KEEP_RECORDS) -> None:
        """Delete all but the ``keep`` newest records (and their journals)."""
        paths = sorted(self._paths(), key=_mtime, reverse=True)
        for path in paths[keep:]:
            with contextlib.suppress(OSError):
                path.unlink()
                path.with_suffix(".chunks").unlink(missing_ok=True)

    def _paths(self) -> Iterator[Path]:
        if self.directory is None or not self.directory.is_dir():
            return iter(())
        return (p for p in self.directory.glob("*.json") if _JOB_ID.fullmatch(p.stem))


def stage_job_id(job_id: str, stage: int) -> str:
    """The id of a job's stage in task ids and backend keys: the job's for the first.

    >>> stage_job_id("0123456789abcdef", 0), stage_job_id("0123456789abcdef", 2)
    ('0123456789abcdef', '0123456789abcdef-2')
    """
    return job_id if stage == 0 else f"{job_id}-{stage}"


def record_id(job_id: str) -> str:
    """The job a stage's id belongs to: the inverse of :func:`stage_job_id`.

    >>> record_id("0123456789abcdef-2")
    '0123456789abcdef'
    """
    return job_id.partition("-")[0]


def now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


class ChunkJournal:
    """Chunk results of one job, one JSON line each: where a resumed job starts from.

    Local pool and cluster alike: a cluster's chunk results also stay in the result
    backend for ``result_expires``, but a broker host rebuilt or replaced loses them,
    and the journal does not. Lines are appended as results are counted and flushed
    at once, so a killed hub loses at most the chunks it had not been told about.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stream: Any = None

    def read(self, job_id: str) -> list[ChunkResult]:
        """The results journaled for stage ``job_id`` (a torn last line is skipped)."""
        results = []
        with contextlib.suppress(FileNotFoundError), self.path.open() as stream:
            for line in stream:
                with contextlib.suppress(ValueError, MalformedMessage):
                    entry = json.loads(line)
                    if isinstance(entry, dict) and entry.get("job") == job_id:
                        results.append(decode_result(entry.get("result")))
        return results

    def append(self, job_id: str, result: ChunkResult) -> None:
        if self._stream is None:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._stream = self.path.open("a")
        self._stream.write(json.dumps({"job": job_id, "result": encode_result(result)}) + "\n")
        self._stream.flush()

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    def remove(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)
