"""Private RabbitMQ, Redis and Celery worker processes on loopback: for tests and benchmarks.

Each server runs from the Debian package's binaries on a free loopback port with its
data in a temporary directory, configured like the deployment configures it (a
dedicated vhost and user with a password for RabbitMQ; ACLs with the default user off
and an ``mcpi`` user confined to ``mcpi:*`` keys for Redis; given a CA, TLS only, with
a certificate of that CA for 127.0.0.1, and client certificates required if ``mutual``).
Nothing is mocked.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from mcpi.testing.tls import DAYS, Issued, TestCA

RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
REDIS_SERVER = "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(
    predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.1
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


def port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


def require_binary(path: str, package: str) -> None:
    if not os.access(path, os.X_OK):
        raise RuntimeError(
            f"{path} not found: install the Debian package {package} (scripts/test does)"
        )


@dataclass
class RabbitMQ:
    """A RabbitMQ node of its own: port, Erlang distribution port and epmd port all private.

    With ``ca``, its one listener is TLS (1.2 and 1.3), with a certificate of ``ca`` for
    127.0.0.1; with ``mutual`` too, clients must present a certificate of ``ca``.
    """

    root: Path
    ca: TestCA | None = None
    mutual: bool = False
    user: str = "mcpi"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    vhost: str = "mcpi"
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        require_binary(RABBITMQ_SERVER, "rabbitmq-server")
        self.dist_port = free_port()
        self.epmd_port = free_port()
        self.node = f"mcpitest{self.port}@localhost"
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "enabled_plugins").write_text("[].\n")
        if self.ca is None:
            listeners = f"listeners.tcp.1 = 127.0.0.1:{self.port}\n"
        else:
            server = self.ca.issue(f"rabbitmq-{self.port}")
            listeners = (
                "listeners.tcp = none\n"
                f"listeners.ssl.1 = 127.0.0.1:{self.port}\n"
                f"ssl_options.cacertfile = {self.ca.cert}\n"
                f"ssl_options.certfile = {server.cert}\n"
                f"ssl_options.keyfile = {server.key}\n"
                "ssl_options.verify = verify_peer\n"
                f"ssl_options.fail_if_no_peer_cert = {str(self.mutual).lower()}\n"
                "ssl_options.versions.1 = tlsv1.3\n"
                "ssl_options.versions.2 = tlsv1.2\n"
            )
        (self.root / "rabbitmq.conf").write_text(
            listeners + f"default_user = {self.user}\n"
            f"default_pass = {self.password}\n"
            f"default_vhost = {self.vhost}\n"
            "loopback_users = none\n"
            "heartbeat = 10\n"
        )
        self.client_cert = self.ca.issue(f"client-{self.port}") if self.ca and self.mutual else None

    @property
    def url(self) -> str:
        scheme = "amqps" if self.ca else "amqp"
        return f"{scheme}://{self.user}:{self.password}@127.0.0.1:{self.port}/{self.vhost}"

    def client_env(self) -> dict[str, str]:
        """What a hub or a worker needs besides the URL: the CA, a client certificate."""
        return tls_env(self.ca, self.client_cert)

    def ssl_options(self) -> dict[str, Any] | bool:
        """py-amqp's ``ssl`` argument for this node (False for plain TCP)."""
        if self.ca is None:
            return False
        options: dict[str, Any] = {
            "ca_certs": str(self.ca.cert),
            "server_hostname": "127.0.0.1",
        }
        if self.client_cert is not None:
            options.update(certfile=str(self.client_cert.cert), keyfile=str(self.client_cert.key))
        return options

    def connection(self, connect_timeout: float | None = None) -> Any:
        """A py-amqp connection to this node's vhost (not connected yet)."""
        import amqp

        return amqp.Connection(
            f"127.0.0.1:{self.port}",
            userid=self.user,
            password=self.password,
            virtual_host=self.vhost,
            connect_timeout=connect_timeout,
            ssl=self.ssl_options(),
        )

    def pika_parameters(self) -> Any:
        """pika's connection parameters for this node (for tests that publish raw messages)."""
        import ssl

        import pika

        options = None
        if self.ca is not None:
            context = ssl.create_default_context(cafile=str(self.ca.cert))
            if self.client_cert is not None:
                context.load_cert_chain(str(self.client_cert.cert), str(self.client_cert.key))
            options = pika.SSLOptions(context, server_hostname="127.0.0.1")
        return pika.ConnectionParameters(
            host="127.0.0.1",
            port=self.port,
            virtual_host=self.vhost,
            credentials=pika.PlainCredentials(self.user, self.password),
            ssl_options=options,
        )

    def env(self) -> dict[str, str]:
        listener = (
            {"RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1", "RABBITMQ_NODE_PORT": str(self.port)}
            if self.ca is None
            else {}  # the plain listener would come back with these
        )
        return {
            "PATH": "/usr/bin:/bin:/usr/sbin:/sbin",
            "HOME": str(self.root),  # the Erlang cookie lives here
            "LANG": "C.UTF-8",
            "RABBITMQ_NODENAME": self.node,
            **listener,
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_PORT": str(self.epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_MNESIA_BASE": str(self.root / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.root / "log"),
            "RABBITMQ_CONFIG_FILE": str(self.root / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.root / "enabled_plugins"),
        }

    def start(self, timeout: float = 60) -> RabbitMQ:
        log = (self.root / "server.out").open("ab")
        self.process = subprocess.Popen(
            [RABBITMQ_SERVER],
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(self._accepts_login, timeout, f"RabbitMQ on port {self.port}", interval=0.3)
        return self

    def _accepts_login(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"RabbitMQ exited: see {self.root / 'server.out'}")
        if not port_open(self.port):
            return False
        connection = self.connection(connect_timeout=2)
        try:
            connection.connect()
        except Exception:  # noqa: BLE001 - still booting
            return False
        finally:
            with contextlib.suppress(Exception):
                connection.collect()
        return True

    def purge(self, queue: str) -> None:
        """Drop every message waiting in ``queue`` (if it was ever declared)."""
        import amqp

        connection = self.connection()
        connection.connect()
        try:
            with contextlib.suppress(amqp.exceptions.NotFound):  # never declared
                connection.channel().queue_purge(queue)
        finally:
            connection.collect()

    def stop(self) -> None:
        """Stop the node and its private epmd (both are gone afterwards)."""
        stop_group(self.process, timeout=30)
        self.process = None
        self._kill_epmd()

    def kill(self) -> None:
        """SIGKILL the whole node, as a crash or power loss would."""
        kill_group(self.process)
        self.process = None

    def _kill_epmd(self) -> None:
        # epmd daemonises out of the node's process group; find it by its private port.
        for pid in _pids_with_env("ERL_EPMD_PORT", str(self.epmd_port)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@dataclass
class Redis:
    """A Redis server with the deployment's ACL: ``default`` off, ``mcpi`` on ``mcpi:*``.

    With ``ca``, TLS only (plain ``port 0``), with a certificate of ``ca`` for 127.0.0.1;
    with ``mutual`` too, clients must present a certificate of ``ca``.
    """

    root: Path
    ca: TestCA | None = None
    mutual: bool = False
    #: Lifetime of its certificate (a short one to see `status` warn).
    certificate_days: int = DAYS
    user: str = "mcpi"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        require_binary(REDIS_SERVER, "redis-server")
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "users.acl").write_text(
            "user default off\n"
            f"user {self.user} on >{self.password} ~mcpi:* &mcpi:* +@all -@dangerous\n"
        )
        self.server_cert = (
            self.ca.issue(f"redis-{self.port}", days=self.certificate_days) if self.ca else None
        )
        self.client_cert = self.ca.issue(f"client-{self.port}") if self.ca and self.mutual else None

    @property
    def url(self) -> str:
        scheme = "rediss" if self.ca else "redis"
        return f"{scheme}://{self.user}:{self.password}@127.0.0.1:{self.port}/0"

    def client_env(self) -> dict[str, str]:
        """What a hub or a worker needs besides the URL: the CA, a client certificate."""
        return tls_env(self.ca, self.client_cert)

    def client(self) -> Any:
        """A redis-py client of this server (TLS verified as the hub verifies it)."""
        import redis

        options: dict[str, Any] = {}
        if self.ca is not None:
            options = {"ssl_cert_reqs": "required", "ssl_ca_certs": str(self.ca.cert)}
            if self.client_cert is not None:
                options.update(
                    ssl_certfile=str(self.client_cert.cert), ssl_keyfile=str(self.client_cert.key)
                )
        return redis.Redis.from_url(self.url, **options)

    def _listener_args(self) -> list[str]:
        if self.ca is None or self.server_cert is None:
            return ["--port", str(self.port)]
        return [
            *("--port", "0", "--tls-port", str(self.port)),
            *("--tls-cert-file", str(self.server_cert.cert)),
            *("--tls-key-file", str(self.server_cert.key)),
            *("--tls-ca-cert-file", str(self.ca.cert)),
            *("--tls-auth-clients", "yes" if self.mutual else "no"),
            *("--tls-protocols", "TLSv1.2 TLSv1.3"),
        ]

    def start(self, timeout: float = 20) -> Redis:
        log = (self.root / "server.out").open("ab")
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                *self._listener_args(),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.root),
                "--aclfile",
                str(self.root / "users.acl"),
                "--save",
                "",
                "--appendonly",
                "no",
                "--maxmemory-policy",
                "noeviction",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(lambda: port_open(self.port), timeout, f"Redis on port {self.port}")
        return self

    def stop(self) -> None:
        stop_group(self.process, timeout=10)
        self.process = None

    def flush(self) -> None:
        """Drop mcpi's keys between tests (FLUSHALL is refused to the mcpi user)."""
        client = self.client()
        try:
            keys = list(client.scan_iter("mcpi:*", count=1000))
            for i in range(0, len(keys), 500):
                client.delete(*keys[i : i + 500])
        finally:
            client.close()


@dataclass
class Worker:
    """A real ``celery worker`` process serving mcpi tasks."""

    name: str
    broker_url: str
    result_backend: str
    log_path: Path
    concurrency: int = 2
    extra_env: Mapping[str, str] = field(default_factory=dict)
    #: As deployed workers are by default (``mcpi_worker_polite``): SCHED_IDLE, nice 19.
    polite: bool = False
    #: The Celery app module (``celery -A``): a test's variant of the worker, else the real one.
    app: str = "mcpi.worker"
    #: Celery's execution pool: ``prefork`` as deployed, ``threads`` for emulated hosts.
    pool: str = "prefork"
    #: The node's host part (``name@host``): this machine's name unless emulating others.
    host: str = "%h"
    process: subprocess.Popen[bytes] | None = None
    #: Where this start's log begins (a worker started again appends to its log).
    _log_from: int = field(default=0, init=False, repr=False)

    def start(self, timeout: float = 30) -> Worker:
        self.launch()
        self.wait_ready(timeout)
        return self

    def launch(self) -> None:
        """Start the worker without waiting for it (many are started at once so)."""
        env = dict(os.environ)
        env.pop("MCPI_CONFIG", None)
        env.update(
            MCPI_BROKER_URL=self.broker_url,
            MCPI_RESULT_BACKEND=self.result_backend,
            # No config file of the test runner's user leaks into the worker.
            XDG_CONFIG_HOME=str(self.log_path.parent / "no-config"),
            PYTHONUNBUFFERED="1",
        )
        env.update(self.extra_env)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        # A worker started again logs after its predecessor: only this one's "ready" counts.
        self._log_from = log.tell()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                self.app,
                "worker",
                "--hostname",
                f"{self.name}@{self.host}",
                "--pool",
                self.pool,
                "--concurrency",
                str(self.concurrency),
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_politely if self.polite else None,
        )

    def wait_ready(self, timeout: float = 30) -> None:
        wait_for(self._ready, timeout, f"worker {self.name} to be ready")

    def _ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"worker {self.name} exited: see {self.log_path}")
        with self.log_path.open("rb") as log:
            log.seek(self._log_from)
            return b" ready." in log.read()

    def pool_pids(self) -> list[int]:
        """Pids of the prefork pool's child processes."""
        assert self.process is not None
        return _children(self.process.pid)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 30) -> None:
        """Warm shutdown: SIGTERM lets the worker finish the chunks it holds."""
        stop_group(self.process, timeout)
        self.process = None

    def kill(self) -> None:
        """SIGKILL the worker and its pool at once, as a crash would."""
        kill_group(self.process)
        self.process = None


def _politely() -> None:
    """Run (in the child, before exec) as the worker unit does when polite."""
    os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    os.nice(19)


class Sandbox:
    """A whole private cluster on this machine: RabbitMQ, Redis and ``workers`` workers.

    ``with Sandbox(root, workers=1, concurrency=4) as box:`` starts everything and stops
    it all on exit, however the block ends; ``box.env()`` is a hub's environment. Over
    TLS with a CA of its own unless ``tls`` is False, as the deployment is.
    """

    def __init__(
        self,
        root: Path,
        workers: int = 1,
        concurrency: int | None = None,
        tls: bool = True,
        polite: bool = False,
    ) -> None:
        self.root = root
        self.polite = polite
        self.worker_count = workers
        self.concurrency = concurrency or os.cpu_count() or 1
        self.ca = TestCA(root / "ca") if tls else None
        self.rabbitmq = RabbitMQ(root / "rabbitmq", ca=self.ca)
        self.redis = Redis(root / "redis", ca=self.ca)
        self.workers: list[Worker] = []

    def __enter__(self) -> Self:
        try:
            self.rabbitmq.start()
            self.redis.start()
            for n in range(1, self.worker_count + 1):
                worker = Worker(
                    f"w{n}",
                    self.rabbitmq.url,
                    self.redis.url,
                    self.root / f"w{n}.log",
                    concurrency=self.concurrency,
                    extra_env=self.rabbitmq.client_env(),
                    polite=self.polite,
                )
                self.workers.append(worker)
                worker.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def env(self) -> dict[str, str]:
        """Settings for a hub on this cluster, as environment variables."""
        return {
            "MCPI_BROKER_URL": self.rabbitmq.url,
            "MCPI_RESULT_BACKEND": self.redis.url,
            **self.rabbitmq.client_env(),
        }

    def purge(self) -> None:
        """Drop every message waiting in the mcpi queue (work of an abandoned job)."""
        self.rabbitmq.purge("mcpi")

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.redis.stop()
        self.rabbitmq.stop()


def tls_env(ca: TestCA | None, client: Issued | None) -> dict[str, str]:
    """The TLS settings of a hub or worker for servers of ``ca``, as environment variables."""
    env = {"MCPI_TLS_CA": str(ca.cert)} if ca else {}
    if client is not None:
        env.update(MCPI_TLS_CERT=str(client.cert), MCPI_TLS_KEY=str(client.key))
    return env


def stop_group(process: subprocess.Popen[bytes] | None, timeout: float) -> None:
    """SIGTERM a server's process group; SIGKILL it if it is still there after ``timeout``."""
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        kill_group(process)


def kill_group(process: subprocess.Popen[bytes] | None) -> None:
    """SIGKILL a server's whole process group (every server runs in a session of its own)."""
    if process is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return [int(p) for p in path.read_text().split()]
    except FileNotFoundError:
        return []


def _pids_with_env(name: str, value: str) -> Iterator[int]:
    needle = f"{name}={value}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            yield int(entry.name)
