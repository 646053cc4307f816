"""The JSON messages that cross the broker and the result backend, and their codecs.

Only JSON travels (the Celery app refuses anything else), so every task argument and
result is a plain dict or list built and checked here:

* a job: ``{"id", "seed", "darts", "chunk_size", "first"}``, and for a model job
  ``"model": {"name", "params", "block", "version", "digest"}`` (a model is *named*,
  never sent: workers run only the models installed on them);
* a chunk: ``[index, start, stop]``, checked against the job's plan;
* a chunk result: ``{"chunk": {"index", "start", "stop", "hits"},
  "telemetry": {"host", "pid", "seconds", "version"}}``, where a model chunk carries
  ``"sums"`` (its exact sums as decimal strings: they exceed any JSON number's range)
  instead of ``"hits"``;
* a wave's totals (a chord callback's result): ``{"first", "stop", "hits" or "sums",
  "darts", "duplicates"}``.

:func:`count_chunk_message` and :func:`tally_wave_message` are the bodies of the two
Celery tasks, here so that they are tested, like everything else in the core, without
Celery. The first takes the worker's model registry as a function, so the core names
no registry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mcpi.core.chunk import ChunkResult, Telemetry, compute_model_chunk, count_chunk
from mcpi.core.job import Job
from mcpi.core.model import Model, ModelCall, ModelError
from mcpi.core.plan import Chunk, Plan
from mcpi.core.tally import WaveTally

#: Finds a model by name: the worker's registry of installed models.
Resolver = Callable[[str], Model]


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
    message = {
        "id": job.id,
        "seed": job.seed,
        "darts": job.plan.darts,
        "chunk_size": job.plan.chunk_size,
        "first": job.plan.first,
    }
    if job.model is not None:
        message["model"] = job.model.to_json()
    return message


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
            model=ModelCall.from_json(message["model"]) if "model" in message else None,
        )
    except ValueError as exc:
        raise MalformedMessage(f"invalid job: {exc}") from None


def encode_chunk(chunk: Chunk) -> list[int]:
    return [chunk.index, chunk.start, chunk.stop]


def encode_sums(sums: tuple[int, ...]) -> dict[str, Any]:
    """``{"hits": h}`` for a π count, ``{"sums": ["…", …]}`` for a model's exact sums."""
    if len(sums) == 1:
        return {"hits": sums[0]}
    return {"sums": [str(s) for s in sums]}


def decode_sums(message: Any) -> tuple[int, ...]:
    if isinstance(message, dict) and "sums" in message:
        sums = message["sums"]
        if not (isinstance(sums, list) and sums and len(sums) % 2 == 0):
            raise MalformedMessage("field 'sums' must be a list of Σx, Σx² pairs")
        try:
            # Each exact sum has at most ~700 digits; refuse anything longer up front.
            if not all(isinstance(s, str) and len(s) <= 1000 for s in sums):
                raise ValueError
            return tuple(int(s) for s in sums)
        except ValueError:
            raise MalformedMessage("field 'sums' must hold integers as strings") from None
    return (require_field(message, "hits", int),)


def encode_result(result: ChunkResult) -> dict[str, Any]:
    return {
        "chunk": {
            "index": result.chunk.index,
            "start": result.chunk.start,
            "stop": result.chunk.stop,
        }
        | encode_sums(result.sums),
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
        sums=decode_sums(count),
        telemetry=Telemetry(
            host=require_field(telemetry, "host", str),
            pid=require_field(telemetry, "pid", int),
            seconds=float(seconds),
            version=require_field(telemetry, "version", str),
        ),
    )


def count_chunk_message(
    job_message: Any, chunk_message: Any, resolve: Resolver | None = None
) -> dict[str, Any]:
    """Compute the chunk ``[index, start, stop]`` of ``job_message``, checked against its plan.

    A model job's model is looked up with ``resolve`` (the worker's installed models)
    and must be the code the hub named (version and digest); nothing else is run.
    """
    job = decode_job(job_message)
    if not (
        isinstance(chunk_message, list)
        and len(chunk_message) == 3
        and all(isinstance(v, int) and not isinstance(v, bool) for v in chunk_message)
    ):
        raise MalformedMessage("a chunk is [index, start, stop]")
    chunk = Chunk(*chunk_message)
    try:
        planned = job.plan.chunk(chunk.index)
    except IndexError:
        planned = None
    if chunk != planned:
        raise MalformedMessage(f"chunk {chunk_message} is not in the job's plan")
    if job.model is None:
        return encode_result(count_chunk(job.seed, chunk))
    if resolve is None:
        raise ModelError("this worker runs no models")
    model = resolve(job.model.name)
    job.model.check(model)
    return encode_result(compute_model_chunk(model, job.model, job.seed, chunk))


def tally_wave_message(results: Any, job_message: Any, first: int, stop: int) -> dict[str, Any]:
    """Totals of chunks [first, stop) of the job from a chord's list of result messages."""
    job = decode_job(job_message)
    if not isinstance(results, list):
        raise MalformedMessage("a chord delivers a list of results")
    tally = WaveTally(job.plan, range(first, stop), job.width)
    for message in results:
        tally.add(decode_result(message))
    return tally.summary()
