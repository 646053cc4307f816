"""Job records: what the hub keeps of every job, so that ``jobs`` lists them and
``estimate --resume ID`` (``run --resume ID``) can finish one a crashed or interrupted hub
left behind.

A record is one JSON file, ``<cache_dir>/jobs/<id>.json``, replaced atomically at each
step (job started, stage planned, stage counted, job ended). It holds what defines the
job's result (its model call, seed, and stages: first sample, samples, chunk size), how
it was asked for and is reported (``view``), and where it ran; the chunk results
themselves go to the hub's journal next to the record, as they are counted (and a
cluster's also stay in its result backend, for ``result_expires``). A hub that dies
leaves its record "running": that is what ``--resume`` picks up.

The format is versioned: ``"format": 2`` and the mcpi version that wrote it. mcpi 0.1.0
wrote records without a format (π jobs with darts and hits and no model, model jobs
with decimal sums): :func:`upgrade` reads them as format 2, the π jobs as jobs of the
``pi`` model, so that they list, resume and report as they did.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import math
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcpi import __version__
from mcpi.core.chunk import ChunkResult
from mcpi.core.kernel import dart_sums
from mcpi.core.messages import (
    MalformedMessage,
    decode_exact,
    decode_result,
    encode_exact,
    encode_result,
)
from mcpi.core.tally import add_sums
from mcpi.hub.request import VIEWS
from mcpi.models.builtin import pi
from mcpi.settings import Settings

#: The format this release writes.
FORMAT = 2

#: Records kept: the oldest beyond this are deleted when a new job starts.
KEEP_RECORDS = 200

RUNNING, DONE, FAILED = "running", "done", "failed"

_JOB_ID = re.compile(r"[0-9a-f]{16}")


class RecordError(ValueError):
    """A job record that is missing or unreadable."""


@dataclass
class Stage:
    """Samples [first, first + samples) of the job, in chunks of chunk_size."""

    first: int
    samples: int
    chunk_size: int
    #: The stage's exact sums (each output's Σx, Σx²) once it is counted, else None.
    sums: tuple[int, ...] | None = None

    @property
    def counted(self) -> bool:
        return self.sums is not None

    def to_json(self) -> dict[str, Any]:
        sums = None if self.sums is None else [encode_exact(s) for s in self.sums]
        return {
            "first": self.first,
            "samples": self.samples,
            "chunk_size": self.chunk_size,
            "sums": sums,
        }

    @classmethod
    def from_json(cls, data: Any) -> Stage:
        sums = data["sums"]
        return cls(
            first=_whole(data["first"], 0),
            samples=_whole(data["samples"], 1),
            chunk_size=_whole(data["chunk_size"], 1),
            sums=None if sums is None else tuple(decode_exact(s) for s in sums),
        )


@dataclass
class JobRecord:
    id: str
    seed: int
    mode: str  # "local" or "cluster"
    where: str  # the cluster's broker (host:port/vhost) or "local"
    #: The job's model: its call (name, params, block, version, digest, outputs) and
    #: ``source``, where the hub found it (an installed name, or a local file).
    model: dict[str, Any]
    #: What was asked: {"samples": N} or {"precision": H, "max_samples": M, "output": O},
    #: and "chunk_size" if the user gave it.
    request: dict[str, Any]
    #: How the job was asked for and is reported: "estimate" (π) or "run".
    view: str = "run"
    created: str = field(default_factory=lambda: now())
    updated: str = field(default_factory=lambda: now())
    status: str = RUNNING
    stages: list[Stage] = field(default_factory=list)
    error: str | None = None
    #: Once done: {"samples": N, "outputs": {name: {"mean", "std_error", "ci95"}}}.
    result: dict[str, Any] | None = None
    format: int = FORMAT
    #: The mcpi release that wrote the record.
    mcpi: str = __version__

    @property
    def counted(self) -> tuple[tuple[int, ...], int]:
        """(exact sums, samples) of the stages counted so far."""
        sums: tuple[int, ...] = ()
        samples = 0
        for stage in self.stages:
            if stage.sums is not None:
                sums = add_sums(sums, stage.sums)
                samples += stage.samples
        return sums, samples

    @property
    def kind(self) -> str:
        """What the job computes: "π" (``estimate``'s jobs), the model's name, or for a
        ``sensitivity`` job "Sobol' indices of MODEL"."""
        if self.view == "sensitivity":
            return f"Sobol' indices of {self.model.get('name')}"
        return "π" if self.view == "estimate" else str(self.model.get("name"))

    def to_json(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "mcpi": self.mcpi,
            "id": self.id,
            "seed": self.seed,
            "mode": self.mode,
            "where": self.where,
            "view": self.view,
            "model": self.model,
            "request": self.request,
            "created": self.created,
            "updated": self.updated,
            "status": self.status,
            "stages": [stage.to_json() for stage in self.stages],
            "error": self.error,
            "result": self.result,
        }

    @classmethod
    def from_json(cls, data: Any) -> JobRecord:
        """A record of this format, or of mcpi 0.1.0's (upgraded); RecordError if neither."""
        try:
            if not isinstance(data, dict):
                raise TypeError("a record is an object")
            if "format" not in data:
                data = upgrade(data)
            if data["format"] != FORMAT:
                raise RecordError(
                    f"job record format {data['format']!r} is not {FORMAT}: written by "
                    f"mcpi {data.get('mcpi')}, which this mcpi {__version__} cannot read"
                )
            fields = {name: data[name] for name in _FIELDS if name in data}
            fields["stages"] = [Stage.from_json(s) for s in data["stages"]]
            record = cls(**fields)
        except (AttributeError, KeyError, TypeError, ValueError, MalformedMessage) as exc:
            if isinstance(exc, RecordError):
                raise
            raise RecordError(f"malformed job record: {exc}") from None
        if not (isinstance(record.model, dict) and isinstance(record.request, dict)):
            raise RecordError("malformed job record: its model and request are objects")
        if record.view not in VIEWS:
            raise RecordError(f"malformed job record: no view {record.view!r}")
        return record


_FIELDS = (
    "format", "mcpi", "id", "seed", "mode", "where", "view", "model", "request", "created",
    "updated", "status", "error", "result",
)  # fmt: skip


def _whole(value: Any, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(f"{value!r} is not a whole number of at least {least}")
    return value


def _pi_model() -> dict[str, Any]:
    """The model mcpi 0.1.0's π jobs ran, though they named none: the dart kernel is the
    built-in ``pi`` model's, its answers pinned by the tests."""
    return pi.call({}).to_json() | {"source": pi.name}


def upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """A record of mcpi 0.1.0 (no format) as format 2.

    Its π jobs named no model and counted darts and hits: they become jobs of the
    ``pi`` model, reported by ``estimate``, whose exact sums are the hits' (4·1{hit}).
    """
    request = dict(data["request"])
    model = data.get("model")
    pi_job = model is None
    if pi_job:
        model = _pi_model()
        if "darts" in request:
            request["samples"] = request.pop("darts")
        if "max_darts" in request:
            request["max_samples"] = request.pop("max_darts")
            request["output"] = "pi"
    stages = []
    for stage in data["stages"]:
        hits, sums = stage.get("hits"), stage.get("sums")
        if hits is not None:
            sums = dart_sums(hits)
        stages.append(
            {
                "first": stage["first"],
                "samples": stage["darts"],
                "chunk_size": stage["chunk_size"],
                "sums": None if sums is None else [encode_exact(int(s)) for s in sums],
            }
        )
    result = data.get("result")
    if pi_job and result is not None:
        darts, hits = result["darts"], result["hits"]
        p = hits / darts
        result = {
            "samples": darts,
            "outputs": {
                "pi": {
                    "mean": result["pi"],
                    "std_error": 4 * math.sqrt(p * (1 - p) / darts),
                    "ci95": [result["ci_low"], result["ci_high"]],
                }
            },
        }
    return data | {
        "format": FORMAT,
        "mcpi": "0.1.0",
        "view": "estimate" if pi_job else "run",
        "model": model,
        "request": request,
        "stages": stages,
        "result": result,
    }


class JobBook:
    """The job records in ``directory`` (None: keep nothing)."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory

    @classmethod
    def of(cls, settings: Settings) -> JobBook:
        """The records of a hub with ``settings``: under its cache directory, if it has one."""
        return cls(settings.cache_dir / "jobs" if settings.cache_dir else None)

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

    def live(self, job_id: str) -> Path | None:
        """Where the hub keeps what is out of job ``job_id`` now (:mod:`mcpi.hub.live`)."""
        if self.directory is None:
            return None
        return self.directory / f"{record_id(job_id)}.live"

    def save(self, record: JobRecord) -> None:
        """Write ``record`` atomically (best effort: a full disk must not fail the job)."""
        if self.directory is None:
            return
        record.updated = now()
        write_json_atomically(self.path(record.id), record.to_json(), indent=1)

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
        """Delete all but the ``keep`` newest records (and their journals and live states)."""
        paths = sorted(self._paths(), key=_mtime, reverse=True)
        for path in paths[keep:]:
            with contextlib.suppress(OSError):
                path.unlink()
                path.with_suffix(".chunks").unlink(missing_ok=True)
                path.with_suffix(".live").unlink(missing_ok=True)

    def _paths(self) -> Iterator[Path]:
        if self.directory is None or not self.directory.is_dir():
            return iter(())
        return (p for p in self.directory.glob("*.json") if _JOB_ID.fullmatch(p.stem))


def write_json_atomically(
    path: Path, data: Any, indent: int | None = None, sort_keys: bool = False
) -> None:
    """Replace ``path`` with ``data`` as JSON, whole (a reader sees the old file or the
    new one), in a private directory made if need be; best effort: a full or read-only
    disk must not fail the job, so an ``OSError`` is swallowed."""
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(descriptor, "w") as stream:
                json.dump(data, stream, indent=indent, sort_keys=sort_keys)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


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
