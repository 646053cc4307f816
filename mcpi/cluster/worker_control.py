"""The worker side of the remote-control command ``mcpi_info``, for ``mcpi-hub status``.

Celery's split: ``app/control.py`` is the client, ``worker/control.py`` the server;
this is the server, and :mod:`mcpi.ops.status` the client. Registered (in Celery's
process-wide control panel) by importing this module, which :mod:`mcpi.cluster.worker`
does. One broadcast then tells the hub everything it shows per
worker: versions, pool size, chunks running and reserved, the host's load, and the
models installed there (what a model job's preflight checks).
"""

from __future__ import annotations

import os
import platform
import socket
from typing import Any

import celery
import numpy
from celery.worker import state as worker_state
from celery.worker.control import inspect_command

from mcpi import __version__, models
from mcpi.cluster.app import INFO_COMMAND
from mcpi.core import exact, kernel
from mcpi.core.runtime import cpu_features


@inspect_command(name=INFO_COMMAND)  # type: ignore[untyped-decorator]
def mcpi_info(state: Any, **kwargs: Any) -> dict[str, Any]:
    """This worker's versions, slots, work in hand and host load."""
    try:
        slots = int(state.consumer.pool.num_processes)
    except (AttributeError, TypeError, ValueError):
        slots = 0
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "mcpi": __version__,
        "celery": celery.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
        "slots": slots,
        "cpus": os.cpu_count() or 0,
        "load": list(os.getloadavg()),
        # Delivered to this worker and not yet acknowledged (acks are late): running,
        # or prefetched and waiting for a free slot.
        "active": len(worker_state.active_requests),
        "reserved": len(worker_state.reserved_requests),
        # The models this worker can run (installed entry points), and those whose
        # entry point failed to load, so the hub can refuse a job it could not finish.
        "models": {
            name: {"version": m.version, "digest": m.digest, "outputs": list(m.outputs)}
            for name, m in models.installed().items()
        },
        "broken_models": models.broken(),
        # What a model's per-sample values may depend on besides its code.
        "cpu": cpu_features(),
        # The dart kernel its pool processes count with (the same module, loaded the same
        # way), and why the compiled one did not load, if it did not.
        "kernel": kernel.KERNEL,
        "kernel_note": kernel.FALLBACK_REASON,
        # The pass its model chunks' exact sums take, and why not the compiled one.
        "exact": exact.EXACT_PASS,
        "exact_note": exact.FALLBACK_REASON,
    }
