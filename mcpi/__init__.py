"""mcpi: embarrassingly parallel Monte Carlo (π by darts) on an ad hoc Celery cluster.

The package is layered: a pure core (:mod:`mcpi.kernel`, :mod:`mcpi.plan`,
:mod:`mcpi.stats`, :mod:`mcpi.tally`) that imports numpy only, a thin Celery adapter
(:mod:`mcpi.app`, :mod:`mcpi.tasks`, :mod:`mcpi.worker`), a hub that orchestrates a job
(:mod:`mcpi.hub`) and a CLI that turns it into exit codes (:mod:`mcpi.cli`).
"""

from __future__ import annotations

__version__ = "0.1.0"
