"""Fixtures: real RabbitMQ and Redis servers (session-scoped) and real Celery workers.

The servers speak TLS only, with certificates of a CA made for the session, as a
deployed cluster does: every integration test runs over TLS.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from mcpi.testing.servers import RabbitMQ, Redis, Worker
from mcpi.testing.tls import TestCA


@pytest.fixture(scope="session")
def cluster_ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    """The session's cluster CA: it signs the private servers' certificates."""
    return TestCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="session")
def rabbitmq(tmp_path_factory: pytest.TempPathFactory, cluster_ca: TestCA) -> Iterator[RabbitMQ]:
    server = RabbitMQ(tmp_path_factory.mktemp("rabbitmq"), ca=cluster_ca).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory, cluster_ca: TestCA) -> Iterator[Redis]:
    server = Redis(tmp_path_factory.mktemp("redis"), ca=cluster_ca).start()
    yield server
    server.stop()


@pytest.fixture
def cluster_env(
    rabbitmq: RabbitMQ, redis_server: Redis, tmp_path: Path
) -> Iterator[dict[str, str]]:
    """The environment of a hub pointed at the private broker and backend."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCPI_")}
    env.update(
        MCPI_BROKER_URL=rabbitmq.url,
        MCPI_RESULT_BACKEND=redis_server.url,
        **rabbitmq.client_env(),
        XDG_CONFIG_HOME=str(tmp_path / "no-config"),
        XDG_CACHE_HOME=str(tmp_path / "cache"),
    )
    yield env
    rabbitmq.purge("mcpi")  # leave no task behind for the next test's workers
    redis_server.flush()


@pytest.fixture
def start_worker(rabbitmq: RabbitMQ, redis_server: Redis, tmp_path: Path) -> Iterator:  # type: ignore[type-arg]
    """Start real ``celery worker`` processes; all are stopped after the test."""
    workers: list[Worker] = []

    def start(
        name: str = "w1",
        concurrency: int = 2,
        polite: bool = False,
        app: str = "mcpi.worker",
        **extra_env: str,
    ) -> Worker:
        worker = Worker(
            name,
            rabbitmq.url,
            redis_server.url,
            tmp_path / f"{name}.log",
            concurrency=concurrency,
            extra_env={**rabbitmq.client_env(), **extra_env},
            polite=polite,
            app=app,
        )
        workers.append(worker)
        return worker.start()

    yield start
    for worker in workers:
        worker.kill()
