"""Celery tasks: decorators only, over the pure core's message bodies.

``mcpi.count_chunk`` computes one chunk of a model's samples (π's darts are the model
``pi``'s; the model is looked up by name among those installed on the worker,
:mod:`mcpi.models`) and returns its result message;
``mcpi.tally_wave`` is a chord's callback: it receives every result message the chord
collected for one wave and returns the wave's totals, each chunk counted once. Both
bodies are :mod:`mcpi.core.messages`', so they are tested without Celery.
"""

from __future__ import annotations

from typing import Any

from celery import Celery, Task

from mcpi import models
from mcpi.core.messages import count_chunk_message, tally_wave_message
from mcpi.settings import Settings

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
        # The node's host part (``name@host``): the host the hub counts this worker's
        # slots under, so its rates are learnt there (an emulated host is not this
        # machine's name).
        host = (self.request.hostname or "").partition("@")[2] or None
        return count_chunk_message(job, chunk, models.resolve, host)

    @app.task(name=TALLY_WAVE, shared=False)
    def tally_wave_task(results: Any, job: Any, first: int, stop: int) -> dict[str, Any]:
        return tally_wave_message(results, job, first, stop)
