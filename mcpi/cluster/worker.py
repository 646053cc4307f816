"""Entry module of a worker process (``celery -A mcpi.worker``, which re-exports it).

Importing this module *is* the worker's start-up, so it resolves the settings here, from
the environment (the systemd unit's EnvironmentFile sets ``MCPI_BROKER_URL`` and
``MCPI_RESULT_BACKEND``) and the config file. A worker with no broker configured stops
with a one-line reason instead of a traceback.
"""

from __future__ import annotations

import sys

import mcpi.cluster.worker_control  # noqa: F401  (registers the mcpi_info remote command)
from mcpi.cluster.app import create_app
from mcpi.settings import ConfigError, load_settings

try:
    _settings = load_settings()
except ConfigError as exc:
    sys.exit(f"mcpi worker: {exc}")
if not _settings.cluster_configured:
    sys.exit("mcpi worker: no broker configured (set MCPI_BROKER_URL and MCPI_RESULT_BACKEND)")

app = create_app(_settings, role="worker")
