"""Chunk tasks as the hub sees them: their ids, published, their results decoded.

Every chunk task of a job has the id ``mcpi-<job>-<chunk>``, so its result is keyed by
the chunk in the backend (what resuming and dedupe rely on), and a wave's chord
callback ``mcpi-<job>-wave-<first chunk>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from celery import states
from celery.utils import uuid

from mcpi.cluster.client import ClusterClient
from mcpi.cluster.tasks import COUNT_CHUNK
from mcpi.core.chunk import ChunkResult
from mcpi.core.job import Job
from mcpi.core.messages import decode_result, encode_chunk, encode_job
from mcpi.errors import JobFailed


def chunk_task_id(job_id: str, index: int) -> str:
    return f"mcpi-{job_id}-{index}"


def wave_task_id(job_id: str, first: int, stop: int) -> str:
    """The callback of chunks [first, stop): a run of the job that cut its waves
    otherwise (they follow the results' size) has callbacks of other ids."""
    return f"mcpi-{job_id}-wave-{first}-{stop}"


def send_chunks(
    client: ClusterClient, job: Job, ids: Mapping[str, int], callback: Any = None
) -> str | None:
    """Publish chunks ``ids`` (task id -> index) of ``job`` as ``mcpi.count_chunk`` tasks,
    confirmed by the broker as one batch (:meth:`ClusterClient.publishing`).

    With ``callback`` (a task signature with its task id) the chunks are the header of a
    chord that calls it once they are all done: Celery's chord, published as
    ``chord(...).apply_async()`` would (the chord's size in the backend, then each
    header task carrying the callback, the group id and its index), but through the
    batch's channel, which Celery's canvas gives no way to choose. Returns the chord's
    group id (None without a callback).
    """
    app = client.app
    message = encode_job(job)
    group_id = None
    if callback is not None:
        group_id = uuid()
        callback.freeze(group_id=group_id)
        app.backend.set_chord_size(group_id, len(ids))

    def in_chord(position: int) -> dict[str, Any]:
        """The header task's place in the chord (nothing for a plain task)."""
        if callback is None:
            return {}
        return {"chord": callback, "group_id": group_id, "group_index": position}

    with client.publishing() as channel:
        for position, (task_id, index) in enumerate(ids.items()):
            chunk = job.plan.chunk(index)
            channel.send_task(
                COUNT_CHUNK,
                (message, encode_chunk(chunk)),
                task_id=task_id,
                # What logs and `celery inspect` show for the task, given here: Celery
                # would otherwise build a bounded repr of the whole job message.
                argsrepr=f"job {job.id} chunk {index} [{chunk.start}, {chunk.stop})",
                kwargsrepr="{}",
                **in_chord(position),
            )
    return group_id


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
