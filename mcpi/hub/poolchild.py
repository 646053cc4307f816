"""The local pool's processes: what they run, loaded once in the pool's fork server.

:mod:`mcpi.hub.local` starts its processes from a fork server that imports this module
first, so each child starts with the chunk code and the installed models' registry
(scanning the entry points costs ~10 ms) already in memory, rather than paying for
them on its first chunk.
"""

from __future__ import annotations

import os
import signal
import threading
import time

from mcpi import models
from mcpi.core.chunk import ChunkResult, compute_chunk
from mcpi.core.design import runnable
from mcpi.core.job import Job
from mcpi.core.model import Model, ModelCall
from mcpi.core.plan import Chunk

#: How often a pool process checks that its hub is still alive.
HUB_WATCH_SECONDS = 1.0

models.installed()  # the registry, scanned once in the fork server for every child


def find_model(source: str, call: ModelCall) -> Model:
    """The model ``source`` names, checked to be the code ``call`` was made from."""
    return runnable(models.find(source), call)


def compute_chunk_of(source: str, job: Job, chunk: Chunk) -> ChunkResult:
    """A pool process's body for a chunk of ``job`` (its model is loaded once per process)."""
    return compute_chunk(find_model(source, job.model), job, chunk)


def start(hub: int) -> None:
    """Each pool process's start: Ctrl-C is the hub's, and the hub's end is its own."""
    # Ctrl-C is the hub's to handle: pool processes ignore it and are terminated.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A hub killed outright must take its pool along, not leave processes that count
    # for nobody. Their parent is the fork server, which outlives the hub while they
    # run, so each watches the hub itself.
    threading.Thread(target=_exit_with, args=(hub,), daemon=True).start()


def _exit_with(hub: int) -> None:
    while True:
        time.sleep(HUB_WATCH_SECONDS)
        try:
            os.kill(hub, 0)
        except ProcessLookupError:
            os._exit(1)
        except PermissionError:  # the pid was reused by someone else's process
            os._exit(1)
