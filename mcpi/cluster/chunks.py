"""Chunk tasks as the hub sees them: their ids, a group of them, their results decoded.

Every chunk task of a job has the id ``mcpi-<job>-<chunk>``, so its result is keyed by
the chunk in the backend (what resuming and dedupe rely on), and a wave's chord
callback ``mcpi-<job>-wave-<first chunk>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from celery import Celery, group, states

from mcpi.cluster.tasks import COUNT_CHUNK
from mcpi.core.chunk import ChunkResult
from mcpi.core.job import Job
from mcpi.core.messages import decode_result, encode_chunk, encode_job
from mcpi.errors import JobFailed


def chunk_task_id(job_id: str, index: int) -> str:
    return f"mcpi-{job_id}-{index}"


def wave_task_id(job_id: str, first: int) -> str:
    return f"mcpi-{job_id}-wave-{first}"


def chunk_group(app: Celery, job: Job, ids: Mapping[str, int]) -> Any:
    """A group of ``mcpi.count_chunk`` tasks: chunk ``i`` of ``job`` as task ``id``."""
    message = encode_job(job)
    return group(chunk_signature(app, job, i, task_id, message) for task_id, i in ids.items())


def chunk_signature(
    app: Celery, job: Job, index: int, task_id: str, message: dict[str, Any] | None = None
) -> Any:
    """The ``mcpi.count_chunk`` task of chunk ``index`` of ``job`` (encoded as
    ``message``), as task ``task_id``."""
    chunk = job.plan.chunk(index)
    return app.tasks[COUNT_CHUNK].signature(
        (message or encode_job(job), encode_chunk(chunk)),
        task_id=task_id,
        # What logs and `celery inspect` show for the task, given here: Celery would
        # otherwise build a bounded repr of the whole job message for every chunk.
        argsrepr=f"job {job.id} chunk {index} [{chunk.start}, {chunk.stop})",
        kwargsrepr="{}",
    )


def chunk_result(index: int, meta: dict[str, Any]) -> ChunkResult:
    """The result of chunk ``index`` from its task's stored JSON; a failed task fails the job."""
    if meta["status"] != states.SUCCESS:
        raise JobFailed(f"chunk {index} failed: {describe_failure(meta)}")
    return decode_result(meta["result"])


def describe_failure(meta: dict[str, Any]) -> str:
    """``ExcType: message`` from a failed task's JSON result."""
    result = meta.get("result")
    if isinstance(result, dict) and "exc_type" in result:
        message = result.get("exc_message")
        if isinstance(message, (list, tuple)):
            message = " ".join(str(m) for m in message)
        return f"{result['exc_type']}: {message}"
    return f"{meta.get('status')}: {result!r}"
