"""The JSON messages that cross the broker and the result backend, and their codecs.

Only JSON travels (the Celery app refuses anything else), so every task argument and
result is a plain dict or list built and checked here:

* a job: ``{"id", "seed", "darts", "chunk_size", "first", "model": {"name", "params",
  "block", "version", "digest", "outputs"}}`` (a model is *named*, never sent: workers
  run only the models installed on them; π is the model ``pi``; ``darts`` is the job's
  samples, named as when π was the only job), and under randomized QMC ``"sampler":
  {"kind": "rqmc", "replicates", "dims"}``, and with tallies ``"tallies": [{"kind":
  "histogram", "output", "low", "high", "bins"[, "log", "ratio"]} | {"kind":
  "exceedance", "output", "threshold"}, ...]`` (:mod:`mcpi.core.tallies`);
* a chunk: ``[index, start, stop]``, checked against the job's plan;
* a chunk result: ``{"chunk": {"index", "start", "stop", "sums"},
  "telemetry": {"host", "pid", "seconds", "version"}}``, ``"sums"`` being the chunk's
  exact sums as strings (they exceed any JSON number's range), see
  :func:`encode_exact`;
* a wave's totals (a chord callback's result): ``{"first", "stop", "sums", "darts",
  "duplicates"}``.

mcpi 0.1.0 wrote a π chunk's (and wave's) result as ``"hits"`` and sums as decimal
strings; both are still read (its hub journals, and results its workers stored).

:func:`count_chunk_message` and :func:`tally_wave_message` are the bodies of the two
Celery tasks, here so that they are tested, like everything else in the core, without
Celery. The first takes the worker's model registry as a function, so the core names
no registry.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any

from mcpi.core.chunk import ChunkResult, Telemetry, compute_chunk
from mcpi.core.design import runnable
from mcpi.core.job import Job
from mcpi.core.kernel import dart_sums
from mcpi.core.model import Model, ModelCall
from mcpi.core.plan import Chunk, Plan
from mcpi.core.sampler import MC, RQMC, sampler_from_json
from mcpi.core.tallies import Tallies
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
    message["model"] = job.model.to_json()
    if job.sampler is not MC:
        message["sampler"] = job.sampler.to_json()
    if job.tallies.items:
        message["tallies"] = job.tallies.to_json()
    return message


def decode_job(message: Any) -> Job:
    if isinstance(message, dict) and "model" not in message:
        raise MalformedMessage("a job names its model (a hub of mcpi 0.1 named none for π)")
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
            model=ModelCall.from_json(message["model"]),
            sampler=sampler_from_json(message.get("sampler")),
            tallies=Tallies.from_json(message.get("tallies")),
        )
    except ValueError as exc:
        raise MalformedMessage(f"invalid job: {exc}") from None


def encode_chunk(chunk: Chunk) -> list[int]:
    return [chunk.index, chunk.start, chunk.stop]


#: An exact sum as it travels: its odd part in hex and its power of two, since the sums
#: of doubles in units of 2**-1074 end in hundreds of zero bits (``pi``'s 4·hits·2**1074
#: is ``"<hits in hex>p1076"``); or, as mcpi 0.1.0 wrote them, in decimal.
_EXACT = re.compile(r"(-?)([0-9a-f]{1,700})p([0-9]{1,4})|-?[0-9]{1,1000}")


def encode_exact(value: int) -> str:
    """``value`` as a short string: ``[-]<odd part in hex>p<power of two>``.

    >>> encode_exact(12 << 1074), encode_exact(-5), encode_exact(0)
    ('3p1076', '-5p0', '0')
    """
    if not value:
        return "0"
    shift = (value & -value).bit_length() - 1
    odd = abs(value) >> shift
    return f"{'-' if value < 0 else ''}{odd:x}p{shift}"


def decode_exact(text: Any) -> int:
    """The inverse of :func:`encode_exact` (decimal accepted too), bounded in size.

    >>> decode_exact("3p1076") == 12 << 1074 and decode_exact("-12") == -12
    True
    """
    found = _EXACT.fullmatch(text) if isinstance(text, str) else None
    if found is None:
        raise MalformedMessage("an exact sum is a string: hex 'p' a power of two, or decimal")
    if found.group(3) is None:
        return int(text)
    value = int(found.group(2), 16) << int(found.group(3))
    return -value if found.group(1) else value


def encode_sums(sums: tuple[int, ...]) -> dict[str, Any]:
    """``{"sums": [...]}``: each output's exact Σx and Σx², as :func:`encode_exact` strings."""
    return {"sums": [encode_exact(s) for s in sums]}


def decode_sums(message: Any) -> tuple[int, ...]:
    """The exact sums of a result (or a wave's totals), mcpi 0.1.0's ``"hits"`` included.

    Each output's Σx and Σx², then any tally counts (:mod:`mcpi.core.tallies`).
    """
    if isinstance(message, dict) and "hits" in message and "sums" not in message:
        hits = require_field(message, "hits", int)
        return dart_sums(hits)  # a π result of mcpi 0.1.0, as the pi model's sums
    if not isinstance(message, dict) or "sums" not in message:
        raise MalformedMessage("missing field 'sums'")
    sums = message["sums"]
    # Its length is the job's shape to check (moments, then tally counts), not a parity:
    # the hub tests each result's sums against the job's shape before it counts them.
    if not (isinstance(sums, list) and sums):
        raise MalformedMessage("field 'sums' must be a non-empty list of exact sums")
    return tuple(decode_exact(s) for s in sums)


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


#: Bytes of a result message besides its sums (chunk bounds, telemetry, the backend's
#: wrapper: status, task id, date), and per exact sum, as a hub guesses them before it
#: has seen any (a sum's hex digits grow with its value's bits).
RESULT_BASE_BYTES = 400
RESULT_BYTES_PER_SUM = 40


def result_bytes_guess(width: int) -> int:
    """How long a stored chunk result of ``width`` sums may be, before one is seen.

    >>> result_bytes_guess(2)
    480
    """
    return RESULT_BASE_BYTES + RESULT_BYTES_PER_SUM * width


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
    job_message: Any, chunk_message: Any, resolve: Resolver, host: str | None = None
) -> dict[str, Any]:
    """Compute the chunk ``[index, start, stop]`` of ``job_message``, checked against its plan.

    The job's model is looked up with ``resolve`` (the worker's installed models) and
    must be the code the hub named (version and digest); nothing else is run. ``host``
    is the host the result's telemetry names, if not this machine's name: the host the
    hub knows the worker by (its node's ``name@host``), which is where it counts the
    worker's slots and rates.
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
    model = runnable(resolve(job.model.name), job.model)
    if isinstance(job.sampler, RQMC) and model.dimension(job.model.kwargs) != job.sampler.dims:
        raise MalformedMessage(f"model {model.name} does not take {job.sampler.dims} uniforms")
    result = compute_chunk(model, job, chunk)
    if host:
        result = dataclasses.replace(
            result, telemetry=dataclasses.replace(result.telemetry, host=host)
        )
    return encode_result(result)


def tally_wave_message(results: Any, job_message: Any, first: int, stop: int) -> dict[str, Any]:
    """Totals of chunks [first, stop) of the job from a chord's list of result messages."""
    job = decode_job(job_message)
    if not isinstance(results, list):
        raise MalformedMessage("a chord delivers a list of results")
    tally = WaveTally(job.plan, range(first, stop), job.width, job.shape)
    for message in results:
        tally.add(decode_result(message))
    tally.check_complete()
    return {
        "first": first,
        "stop": stop,
        **encode_sums(tally.sums),
        "darts": tally.darts,
        "duplicates": tally.duplicates,
    }
