"""Exit statuses, and the errors that map to them. Each message fits on one line."""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    """``mcpi-hub``'s exit codes. Every error is one line on stderr, ``mcpi-hub: error:
    …``, never a traceback."""

    #: Success.
    OK = 0
    #: An unexpected internal error (a bug: please report it; ``MCPI_DEBUG=1`` shows the
    #: traceback).
    ERROR = 1
    #: Bad command-line input.
    USAGE = 2
    #: A malformed config file or environment variable (the message names it).
    CONFIG = 3
    #: The broker or the result backend cannot be reached, or refused the credentials.
    UNREACHABLE = 4
    #: The job failed: a chunk failed for good (e.g. it killed its worker on every
    #: retry), or results did not add up.
    JOB_FAILED = 5
    #: The job's deadline passed, or the cluster's workers vanished mid-job.
    TIMEOUT = 6
    #: No worker answered before the job started (or, for ``status``, at all).
    NO_WORKERS = 7
    #: ``status --strict``: a worker runs another mcpi version than the hub.
    VERSION_SKEW = 8
    #: ``hosts``: the action failed on at least one host (each host's result is printed).
    HOSTS_FAILED = 9
    #: ``estimate --precision`` / ``run --precision``: the bound (``--max-darts``,
    #: ``--max-samples``) came before the precision.
    PRECISION_NOT_REACHED = 10
    #: ``run``: a worker lacks the model, or has other code for it than the hub (the
    #: message names the workers).
    MODEL_MISSING = 11
    #: Interrupted (Ctrl-C).
    INTERRUPTED = 130


class McpiError(Exception):
    """An error the CLI reports in one line, with its exit status."""

    status = ExitStatus.ERROR


class UsageError(McpiError):
    status = ExitStatus.USAGE


class Unreachable(McpiError):
    status = ExitStatus.UNREACHABLE


class Refused(Unreachable):
    """A broker or backend that answered and refused (credentials, vhost): waiting for
    it will not help, so the hub does not."""


class TlsRefused(Unreachable):
    """A broker or backend that TLS could not trust: another CA's certificate, one for
    another address, or no TLS at all where TLS is configured. Not an outage: the
    workers stop on it instead of waiting for it to pass."""


class NoHandshake(TlsRefused):
    """A broker or backend that took the connection and closed it without a TLS
    handshake: a plain-TCP port, or one that wants a client certificate -- or a server
    stopping or starting just then, so the hub tries again for a few seconds."""


class JobFailed(McpiError):
    status = ExitStatus.JOB_FAILED


class JobTimeout(McpiError):
    status = ExitStatus.TIMEOUT


class NoWorkers(McpiError):
    status = ExitStatus.NO_WORKERS


class ModelMissing(McpiError):
    status = ExitStatus.MODEL_MISSING
