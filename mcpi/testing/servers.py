"""Private RabbitMQ, Redis and Celery worker processes on loopback: for tests and benchmarks.

Each server runs from the Debian package's binaries on a free loopback port with its
data in a temporary directory, configured like the deployment configures it (a
dedicated vhost and user with a password for RabbitMQ; ACLs with the default user off
and an ``mcpi`` user confined to ``mcpi:*`` keys for Redis). Nothing is mocked.
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
    """A RabbitMQ node of its own: port, Erlang distribution port and epmd port all private."""

    root: Path
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
        (self.root / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.port}\n"
            f"default_user = {self.user}\n"
            f"default_pass = {self.password}\n"
            f"default_vhost = {self.vhost}\n"
            "loopback_users = none\n"
            "heartbeat = 10\n"
        )

    @property
    def url(self) -> str:
        return f"amqp://{self.user}:{self.password}@127.0.0.1:{self.port}/{self.vhost}"

    def env(self) -> dict[str, str]:
        return {
            "PATH": "/usr/bin:/bin:/usr/sbin:/sbin",
            "HOME": str(self.root),  # the Erlang cookie lives here
            "LANG": "C.UTF-8",
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
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
        import amqp

        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"RabbitMQ exited: see {self.root / 'server.out'}")
        if not port_open(self.port):
            return False
        connection = amqp.Connection(
            f"127.0.0.1:{self.port}",
            userid=self.user,
            password=self.password,
            virtual_host=self.vhost,
            connect_timeout=2,
        )
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

        connection = amqp.Connection(
            f"127.0.0.1:{self.port}",
            userid=self.user,
            password=self.password,
            virtual_host=self.vhost,
        )
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
    """A Redis server with the deployment's ACL: ``default`` off, ``mcpi`` on ``mcpi:*``."""

    root: Path
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

    @property
    def url(self) -> str:
        return f"redis://{self.user}:{self.password}@127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 20) -> Redis:
        log = (self.root / "server.out").open("ab")
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
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
        import redis

        client = redis.Redis.from_url(self.url)
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
    process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> Worker:
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
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "mcpi.worker",
                "worker",
                "--hostname",
                f"{self.name}@%h",
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
        )
        wait_for(self._ready, timeout, f"worker {self.name} to be ready")
        return self

    def _ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"worker {self.name} exited: see {self.log_path}")
        return b" ready." in self.log_path.read_bytes()

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


class Sandbox:
    """A whole private cluster on this machine: RabbitMQ, Redis and ``workers`` workers.

    ``with Sandbox(root, workers=1, concurrency=4) as box:`` starts everything and stops
    it all on exit, however the block ends; ``box.env()`` is a hub's environment.
    """

    def __init__(self, root: Path, workers: int = 1, concurrency: int | None = None) -> None:
        self.root = root
        self.worker_count = workers
        self.concurrency = concurrency or os.cpu_count() or 1
        self.rabbitmq = RabbitMQ(root / "rabbitmq")
        self.redis = Redis(root / "redis")
        self.workers: list[Worker] = []

    def __enter__(self) -> Sandbox:
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
        return {"MCPI_BROKER_URL": self.rabbitmq.url, "MCPI_RESULT_BACKEND": self.redis.url}

    def purge(self) -> None:
        """Drop every message waiting in the mcpi queue (work of an abandoned job)."""
        self.rabbitmq.purge("mcpi")

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.redis.stop()
        self.rabbitmq.stop()


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
