"""The JSON messages that cross the broker and the result backend, and their codecs.

Only JSON travels (the Celery app refuses anything else), so every task argument and
result is a plain dict or list built and checked here:

* a job: ``{"id", "seed", "darts", "chunk_size", "first"}``;
* a chunk: ``[index, start, stop]``, checked against the job's plan;
* a chunk result: ``{"chunk": {"index", "start", "stop", "hits"},
  "telemetry": {"host", "pid", "seconds", "version"}}``;
* a wave's totals (a chord callback's result): ``{"first", "stop", "hits", "darts",
  "duplicates"}``.

:func:`count_chunk_message` and :func:`tally_wave_message` are the bodies of the two
Celery tasks, here so that they are tested, like everything else in the core, without
Celery.
"""

from __future__ import annotations

from typing import Any

from mcpi.core.chunk import ChunkResult, Telemetry, count_chunk
from mcpi.core.job import Job
from mcpi.core.plan import Chunk, Plan
from mcpi.core.tally import WaveTally


class MalformedMessage(ValueError):
    """A task argument or result that does not have the documented JSON shape."""


def require_field(message: Any, name: str, kind: type) -> Any:
    """``message[name]`` if ``message`` is a dict holding a ``kind`` there (bools excluded)."""
    if not isinstance(message, dict) or name not in message:
        raise MalformedMessage(f"missing field {name!r}")
    value = message[name]
    if isinstance(value, bool) or not isinstance(value, kind):
        raise MalformedMessage(f"field {name!r} must be {kind.__name__}")
    return value


def encode_job(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "seed": job.seed,
        "darts": job.plan.darts,
        "chunk_size": job.plan.chunk_size,
        "first": job.plan.first,
    }


def decode_job(message: Any) -> Job:
    try:
        return Job(
            id=require_field(message, "id", str),
            seed=require_field(message, "seed", int),
            plan=Plan(
                require_field(message, "darts", int),
                require_field(message, "chunk_size", int),
                # Absent from the messages of hubs older than staged jobs.
                require_field(message, "first", int) if "first" in message else 0,
            ),
        )
    except ValueError as exc:
        raise MalformedMessage(f"invalid job: {exc}") from None


def encode_chunk(chunk: Chunk) -> list[int]:
    return [chunk.index, chunk.start, chunk.stop]


def encode_result(result: ChunkResult) -> dict[str, Any]:
    return {
        "chunk": {
            "index": result.chunk.index,
            "start": result.chunk.start,
            "stop": result.chunk.stop,
            "hits": result.hits,
        },
        "telemetry": {
            "host": result.telemetry.host,
            "pid": result.telemetry.pid,
            "seconds": result.telemetry.seconds,
            "version": result.telemetry.version,
        },
    }


def decode_result(message: Any) -> ChunkResult:
    count = require_field(message, "chunk", dict)
    telemetry = require_field(message, "telemetry", dict)
    seconds = telemetry.get("seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise MalformedMessage("field 'seconds' must be a number")
    return ChunkResult(
        chunk=Chunk(
            require_field(count, "index", int),
            require_field(count, "start", int),
            require_field(count, "stop", int),
        ),
        hits=require_field(count, "hits", int),
        telemetry=Telemetry(
            host=require_field(telemetry, "host", str),
            pid=require_field(telemetry, "pid", int),
            seconds=float(seconds),
            version=require_field(telemetry, "version", str),
        ),
    )


def count_chunk_message(job_message: Any, chunk_message: Any) -> dict[str, Any]:
    """Count the chunk ``[index, start, stop]`` of ``job_message``, checked against its plan."""
    job = decode_job(job_message)
    if not (isinstance(chunk_message, list) and len(chunk_message) == 3):
        raise MalformedMessage("a chunk is [index, start, stop]")
    chunk = Chunk(*chunk_message)
    if chunk != job.plan.chunk(chunk.index):
        raise MalformedMessage(f"chunk {chunk_message} is not in the job's plan")
    return encode_result(count_chunk(job.seed, chunk))


def tally_wave_message(results: Any, job_message: Any, first: int, stop: int) -> dict[str, Any]:
    """Totals of chunks [first, stop) of the job from a chord's list of result messages."""
    job = decode_job(job_message)
    if not isinstance(results, list):
        raise MalformedMessage("a chord delivers a list of results")
    tally = WaveTally(job.plan, range(first, stop))
    for message in results:
        tally.add(decode_result(message))
    return tally.summary()
