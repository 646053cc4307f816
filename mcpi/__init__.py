"""mcpi: embarrassingly parallel Monte Carlo (π by darts) on an ad hoc Celery cluster.

The folders are the layers, each importing only those below it (checked in CI by
``lint-imports``): :mod:`mcpi.core` (pure, numpy only: kernel, plan, tally, messages,
statistics, stopping rule, chunk sizing) under :mod:`mcpi.cluster` (the Celery adapter
and the cluster executor), under :mod:`mcpi.hub` (a job's stages, the local pool, job
records, the rate book) and :mod:`mcpi.ops` (status, inventory, Fabric operations),
under :mod:`mcpi.cli` (``mcpi-hub``). :mod:`mcpi.settings` and :mod:`mcpi.errors` serve
every layer; :mod:`mcpi.bench` (with its :mod:`mcpi.testing` servers) sits between the
CLI and the hub.
"""

from __future__ import annotations

__version__ = "0.1.0"
