"""Celery tasks: thin adapters from JSON messages to the pure core.

``mcpi.count_chunk`` counts one chunk and returns its result message;
``mcpi.tally_wave`` is a chord's callback: it receives every result message the chord
collected for one wave and returns the wave's totals, each chunk counted once.
"""

from __future__ import annotations

from typing import Any

from celery import Celery, Task

from mcpi.compute import count_chunk
from mcpi.job import Job, MalformedMessage
from mcpi.plan import Chunk
from mcpi.settings import Settings
from mcpi.tally import ChunkResult, WaveTally

COUNT_CHUNK = "mcpi.count_chunk"
TALLY_WAVE = "mcpi.tally_wave"


def register_tasks(app: Celery, settings: Settings) -> None:
    """Define the tasks on ``app`` (explicitly, no ``current_app``)."""

    # shared=False: the tasks belong to this app only, not to every app created later.
    @app.task(
        name=COUNT_CHUNK,
        shared=False,
        bind=True,
        acks_late=True,
        reject_on_worker_lost=True,
        # A pool process that dies mid-chunk (OOM, SIGKILL) sends the chunk again as a
        # retry, so max_retries bounds a chunk that kills its worker every time.
        retry_on_worker_lost=True,
        max_retries=settings.chunk_retries,
        default_retry_delay=1,
    )
    def count_chunk_task(self: Task, job: Any, chunk: Any) -> dict[str, Any]:
        return count_chunk_message(job, chunk)

    @app.task(name=TALLY_WAVE, shared=False)
    def tally_wave_task(results: Any, job: Any, first: int, stop: int) -> dict[str, Any]:
        return tally_wave_message(results, job, first, stop)


def count_chunk_message(job_message: Any, chunk_message: Any) -> dict[str, Any]:
    """Count the chunk ``[index, start, stop]`` of ``job_message``, checked against its plan."""
    job = Job.from_message(job_message)
    if not (isinstance(chunk_message, list) and len(chunk_message) == 3):
        raise MalformedMessage("a chunk is [index, start, stop]")
    chunk = Chunk(*chunk_message)
    if chunk != job.plan.chunk(chunk.index):
        raise MalformedMessage(f"chunk {chunk_message} is not in the job's plan")
    return count_chunk(job.seed, chunk).to_message()


def tally_wave_message(results: Any, job_message: Any, first: int, stop: int) -> dict[str, Any]:
    """Totals of chunks [first, stop) of the job from a chord's list of result messages."""
    job = Job.from_message(job_message)
    if not isinstance(results, list):
        raise MalformedMessage("a chord delivers a list of results")
    tally = WaveTally(job.plan, range(first, stop))
    for message in results:
        tally.add(ChunkResult.from_message(message))
    return tally.summary()
