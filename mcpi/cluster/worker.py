"""Entry module of a worker process (``celery -A mcpi.worker``, which re-exports it).

Importing this module *is* the worker's start-up, so it resolves the settings here, from
the environment (the systemd unit's EnvironmentFile sets ``MCPI_BROKER_URL`` and
``MCPI_RESULT_BACKEND``) and the config file. A worker with no broker configured stops
with a one-line reason instead of a traceback, and so does one whose broker or backend
TLS cannot trust (exit 4): a worker rides out outages, but another CA's certificate, or
a plain-TCP server where TLS is configured, does not pass with time.
"""

from __future__ import annotations

import sys

import mcpi.cluster.worker_control  # noqa: F401  (registers the mcpi_info remote command)
from mcpi.cluster.app import create_app
from mcpi.cluster.client import ClusterClient
from mcpi.errors import ExitStatus, TlsRefused, Unreachable
from mcpi.settings import ConfigError, Settings, load_settings


def _refuse_untrusted_servers(settings: Settings) -> None:
    """Stop (exit 4, one line) if TLS refuses the broker or the backend; an outage passes."""
    if not (settings.broker_tls or settings.backend_tls):
        return
    client = ClusterClient(settings)
    try:
        for check in (client.check_broker, client.check_backend):
            try:
                check()
            except TlsRefused as exc:
                print(f"mcpi worker: {exc}", file=sys.stderr)
                sys.exit(ExitStatus.UNREACHABLE)
            except Unreachable:
                pass  # down for now: the worker waits for it, as it always has
    finally:
        client.close()


try:
    _settings = load_settings()
except ConfigError as exc:
    sys.exit(f"mcpi worker: {exc}")
if not _settings.cluster_configured:
    sys.exit("mcpi worker: no broker configured (set MCPI_BROKER_URL and MCPI_RESULT_BACKEND)")

_refuse_untrusted_servers(_settings)
app = create_app(_settings, role="worker")
