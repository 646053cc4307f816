"""Settings, resolved in one place: command-line flag > environment > config file > default.

:func:`load_settings` is called once at start-up (by the CLI, or by the worker's entry
module) and returns a frozen :class:`Settings`; nothing reads configuration at import.

The config file is TOML. Its default path is ``$XDG_CONFIG_HOME/mcpi/hub.toml``
(``~/.config/mcpi/hub.toml``): the deployment playbook writes it on the control node,
with mode 0600, so that ``mcpi-hub estimate`` finds the cluster with no flags.
``MCPI_CONFIG`` or ``--config`` name another file. Example::

    broker_url = "amqps://mcpi:PASSWORD@192.0.2.10:5671/mcpi"
    result_backend = "rediss://mcpi:PASSWORD@192.0.2.10:6380/0"
    tls_ca = "/home/me/mcpi/credentials/mylab/ca.pem"
    timeout = "2h"

``amqps://`` and ``rediss://`` URLs connect with TLS and verify the server's certificate,
including its address, against ``tls_ca`` (the cluster's own CA; the system's trusted
CAs if none is given); ``tls_cert`` and ``tls_key`` present a client certificate where
the cluster asks for one (mutual TLS).

With neither a broker nor a result backend configured, jobs run on the local pool.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

BROKER_SCHEMES = ("amqp", "amqps", "pyamqp")
BACKEND_SCHEMES = ("redis", "rediss")


class ConfigError(ValueError):
    """A setting with an invalid value; the message names the setting and its source."""


@dataclass(frozen=True)
class Settings:
    """Everything the hub and the workers read from their environment."""

    #: AMQP URL of the broker; None means no cluster is configured.
    broker_url: str | None = None
    #: Redis URL of the result backend (required with a broker).
    result_backend: str | None = None
    #: Overall deadline of a job in seconds; None waits as long as work progresses.
    timeout: float | None = None
    #: How long to try reaching the broker, the backend or the workers before giving up.
    connect_timeout: float = 5.0
    #: How long a hub starting a job waits for a broker, a backend or workers that are
    #: down or restarting (retrying, with a message) before it gives up; 0 fails at once.
    service_wait: float = 30.0
    #: How long the hub waits for at least one worker to answer, once results stall,
    #: before it declares the cluster's workers gone.
    worker_grace: float = 30.0
    #: How often a chunk whose worker died under it is sent again before the job fails.
    chunk_retries: int = 3
    #: Seconds chunk results stay in the backend (also bounds orphaned results).
    result_expires: int = 7 * 24 * 3600
    #: Chunks per chord: the hub submits a job as successive chords (waves) of at most
    #: this many chunks, so its memory and the backend's stay bounded whatever N is.
    wave_chunks: int = 5000
    #: Backup copies of overdue chunks once the queue has drained (mcpi.core.stragglers).
    #: Off only to measure what they bring: a copy is free of risk (counted once).
    backups: bool = True
    #: Where the hub keeps what it learns between runs (workers' measured rates);
    #: None keeps nothing. Default ``$XDG_CACHE_HOME/mcpi`` (``~/.cache/mcpi``).
    cache_dir: Path | None = None
    #: The Ansible inventory of the cluster (a file or directory), for ``mcpi-hub hosts``;
    #: the playbook writes it into the hub's config file.
    inventory: Path | None = None
    #: The CA certificate (PEM) that signs the broker's and the backend's certificates:
    #: with ``amqps://`` and ``rediss://`` URLs, the server must present a certificate it
    #: signed, for the address dialled. None trusts the system's CAs instead.
    tls_ca: Path | None = None
    #: A client certificate and its key (PEM), for a cluster that requires them.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    #: The config file that was read, if any.
    config_file: Path | None = None

    @property
    def broker_tls(self) -> bool:
        return _scheme(self.broker_url) == "amqps"

    @property
    def backend_tls(self) -> bool:
        return _scheme(self.result_backend) == "rediss"

    @property
    def cluster_configured(self) -> bool:
        return self.broker_url is not None


def default_config_path(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(base) / "mcpi" / "hub.toml"


def default_cache_dir(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".cache")
    return Path(base) / "mcpi"


def load_settings(
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Resolve every setting: ``flags`` (non-None values) > ``env`` > config file > default.

    ``flags`` may carry ``config`` (a path) besides the settings' own names.
    """
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    env = os.environ if env is None else env

    explicit = flags.get("config") or env.get("MCPI_CONFIG")
    path = Path(explicit) if explicit else default_config_path(env)
    from_file: dict[str, Any] = {}
    if explicit or path.is_file():
        from_file = _read_config_file(path)

    values: dict[str, Any] = {}
    for f in fields(Settings):
        if f.name == "config_file":
            continue
        parse = PARSERS[f.name]
        env_name = "MCPI_" + f.name.upper()
        if f.name in flags:
            values[f.name] = parse(flags[f.name], f"--{f.name.replace('_', '-')}")
        elif env.get(env_name):
            values[f.name] = parse(env[env_name], env_name)
        elif f.name in from_file:
            values[f.name] = parse(from_file[f.name], f"{f.name} in {path}")
    values.setdefault("cache_dir", default_cache_dir(env))
    settings = Settings(**values, config_file=path if from_file or explicit else None)
    _check_pairing(settings)
    _check_tls(settings)
    return settings


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as stream:
            data = tomllib.load(stream)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    # After TOMLDecodeError, which is a ValueError too: a NUL in the path, which no
    # file can have in its name.
    except ValueError:
        raise ConfigError(f"config file {str(path)!r} is not a valid path") from None
    unknown = sorted(set(data) - set(PARSERS))
    if unknown:
        raise ConfigError(
            f"config file {path}: unknown setting {unknown[0]!r} "
            f"(known: {', '.join(sorted(PARSERS))})"
        )
    return data


def _check_pairing(settings: Settings) -> None:
    if settings.broker_url and not settings.result_backend:
        raise ConfigError("result_backend (MCPI_RESULT_BACKEND) is required when broker_url is set")
    if settings.result_backend and not settings.broker_url:
        raise ConfigError("broker_url (MCPI_BROKER_URL) is required when result_backend is set")


def _check_tls(settings: Settings) -> None:
    # A CA or a client certificate only makes sense for TLS URLs: given with a plain URL,
    # it means the URL lost its TLS (an old config, a typo), and plain it must not be.
    tls_files = [n for n in ("tls_ca", "tls_cert", "tls_key") if getattr(settings, n)]
    plain = [
        name
        for name, url, tls in (
            ("broker_url", settings.broker_url, settings.broker_tls),
            ("result_backend", settings.result_backend, settings.backend_tls),
        )
        if url and not tls
    ]
    if tls_files and plain:
        raise ConfigError(
            f"{tls_files[0]} (MCPI_{tls_files[0].upper()}) is set, but {plain[0]} "
            f"(MCPI_{plain[0].upper()}) is not a TLS URL (amqps://, rediss://): set both "
            "URLs to TLS, or remove the TLS settings for a plain-TCP cluster"
        )
    if bool(settings.tls_cert) != bool(settings.tls_key):
        raise ConfigError(
            "tls_cert (MCPI_TLS_CERT) and tls_key (MCPI_TLS_KEY) go together: set both, or neither"
        )


def _scheme(url: str | None) -> str:
    return urlsplit(url or "").scheme


def _url(schemes: tuple[str, ...]) -> Callable[[Any, str], str]:
    def parse(value: Any, source: str) -> str:
        if not isinstance(value, str):
            raise ConfigError(f"{source}: expected a URL string")
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises ValueError on a malformed port
        except ValueError as exc:
            raise ConfigError(f"{source}: malformed URL ({exc})") from None
        if parts.scheme not in schemes or not parts.hostname:
            raise ConfigError(
                f"{source}: expected a URL like {schemes[0]}://user:password@host:port/..., "
                f"got {redact_url(value)!r}"
            )
        return value

    return parse


_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(s|m|h|d)?\s*$")
_UNIT_SECONDS = {None: 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any, source: str) -> float:
    """Seconds from ``90``, ``"90"``, ``"1.5m"``, ``"2h"``, ``"1d"``."""
    if isinstance(value, bool):
        raise ConfigError(f"{source}: expected a duration such as 90, 5m or 2h")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ConfigError(f"{source}: {value!r} is not a duration (examples: 90, 5m, 2h)")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if not math.isfinite(seconds) or seconds <= 0:
        raise ConfigError(f"{source}: a duration must be positive and finite, not {value!r}")
    return seconds


def _wait(value: Any, source: str) -> float:
    """A duration, or 0 for none at all."""
    if not isinstance(value, bool) and str(value).strip() in ("0", "0s", "0.0"):
        return 0.0
    return parse_duration(value, source)


def _count(low: int, high: int) -> Callable[[Any, str], int]:
    def parse(value: Any, source: str) -> int:
        try:
            number = int(str(value).strip()) if not isinstance(value, bool) else None
        except ValueError:
            number = None
        if number is None or not low <= number <= high:
            raise ConfigError(
                f"{source}: expected a whole number from {low} to {high}, not {value!r}"
            )
        return number

    return parse


def _switch(value: Any, source: str) -> bool:
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{source}: expected true or false, not {value!r}")


def _path(value: Any, source: str) -> Path:
    if isinstance(value, Path):  # a flag's value, parsed once already
        value = str(value)
    if not isinstance(value, str) or not value.strip() or "\0" in value:
        raise ConfigError(f"{source}: expected a path, not {value!r}")
    try:
        return Path(value).expanduser()
    except RuntimeError:  # ~name of no user on this machine
        raise ConfigError(f"{source}: {value!r} names no home directory here") from None


def _file(value: Any, source: str) -> Path:
    path = _path(value, source)
    if not path.is_file():
        raise ConfigError(f"{source}: {str(path)!r} is not a readable file")
    return path


#: Each setting's parser: (value, where it came from) -> checked value, or ConfigError.
PARSERS: dict[str, Callable[[Any, str], Any]] = {
    "broker_url": _url(BROKER_SCHEMES),
    "result_backend": _url(BACKEND_SCHEMES),
    "timeout": parse_duration,
    "connect_timeout": parse_duration,
    "service_wait": lambda value, source: _wait(value, source),
    "worker_grace": parse_duration,
    "chunk_retries": _count(0, 100),
    "result_expires": lambda value, source: int(parse_duration(value, source)),
    "wave_chunks": _count(1, 100_000),
    "backups": _switch,
    "cache_dir": _path,
    "inventory": _path,
    "tls_ca": _file,
    "tls_cert": _file,
    "tls_key": _file,
}


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***``, for messages and reports."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "<malformed URL>"
    if not password:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))
