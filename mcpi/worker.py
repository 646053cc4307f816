"""``celery -A mcpi.worker worker -Q mcpi``: the name deployed units and Vagrant boxes use.

The entry module itself is :mod:`mcpi.cluster.worker`; importing this one is the
worker's start-up (settings from the environment, the app, the remote commands).
"""

from __future__ import annotations

from mcpi.cluster.worker import app

__all__ = ["app"]
