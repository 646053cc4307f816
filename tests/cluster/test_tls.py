"""TLS to the broker and the backend: verified against the cluster's CA, never downgraded.

The session's servers (tests/conftest.py) speak TLS only, with certificates of the
session's CA for 127.0.0.1: every other integration test runs over them. Here: what the
hub and the workers see, and what they refuse.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mcpi.core.kernel import count_hits
from mcpi.errors import ExitStatus
from mcpi.testing.servers import RabbitMQ, Redis, Worker
from mcpi.testing.tls import TestCA
from tests.helpers import estimate

pytestmark = pytest.mark.integration


def hub(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mcpi", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_status_shows_both_connections_encrypted_with_tls_1_3(  # type: ignore[no-untyped-def]
    cluster_env: dict[str, str], start_worker
) -> None:
    start_worker("w1", concurrency=1)
    done = hub(cluster_env, "status", "--json")
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    for service in ("broker", "backend"):
        assert status[service]["tls"] == "TLSv1.3", status[service]
        assert status[service]["certificate_expires"] > "2026"
    assert status["warnings"] == []
    text = hub(cluster_env, "status").stdout
    assert text.count("encrypted (TLSv1.3, certificate valid until") == 2, text


def test_status_warns_of_a_certificate_ending_within_30_days(
    cluster_env: dict[str, str], cluster_ca: TestCA, tmp_path: Path
) -> None:
    ending = Redis(tmp_path / "ending-redis", ca=cluster_ca, certificate_days=12).start()
    try:
        done = hub({**cluster_env, "MCPI_RESULT_BACKEND": ending.url}, "status")
    finally:
        ending.stop()
    warnings = [line for line in done.stdout.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, done.stdout
    assert warnings[0].startswith("warning: the backend's certificate expires in 1")
    assert "run the playbook to renew it" in warnings[0]


def test_a_job_over_tls_counts_exactly(  # type: ignore[no-untyped-def]
    cluster_env: dict[str, str], start_worker
) -> None:
    assert cluster_env["MCPI_BROKER_URL"].startswith("amqps://")
    assert cluster_env["MCPI_RESULT_BACKEND"].startswith("rediss://")
    start_worker("w1", concurrency=2)
    status, report, err = estimate(cluster_env, "-n", "3e7", "--seed", "5")
    assert status == 0 and report is not None, err
    assert report["hits"] == count_hits(5, 0, 3 * 10**7)


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def test_servers_with_another_cas_certificates_are_refused(
    cluster_env: dict[str, str], tmp_path: Path
) -> None:
    other = TestCA(tmp_path / "other-ca", name="someone else's CA")
    env = {**cluster_env, "MCPI_TLS_CA": str(other.cert)}
    done = hub(env, "estimate", "-n", "1e6", "--no-progress")
    assert done.returncode == ExitStatus.UNREACHABLE
    line = one_line(done.stderr)
    port = cluster_env["MCPI_BROKER_URL"].rsplit(":", 1)[1].split("/")[0]
    assert f"the broker at 127.0.0.1:{port}: its certificate was refused" in line
    assert "PASSWORD" not in line and "@" not in line


def test_a_plain_tcp_server_where_tls_is_expected_is_refused(
    cluster_env: dict[str, str], tmp_path: Path
) -> None:
    # A plain-TCP Redis: where TLS is configured, neither the broker nor the backend
    # URL may reach it in clear.
    plain = Redis(tmp_path / "plain-redis").start()
    try:
        backend = f"rediss://mcpi:{plain.password}@127.0.0.1:{plain.port}/0"
        done = hub({**cluster_env, "MCPI_RESULT_BACKEND": backend}, "status", "--json")
        status = json.loads(done.stdout)
        assert not status["backend"]["reachable"]
        assert "no TLS handshake" in status["backend"]["error"], status["backend"]
        done = hub({**cluster_env, "MCPI_RESULT_BACKEND": backend}, "estimate", "-n", "1e6")
        assert done.returncode == ExitStatus.UNREACHABLE
        assert f"the result backend at 127.0.0.1:{plain.port}: no TLS handshake" in one_line(
            done.stderr
        )
        broker = f"amqps://mcpi:x@127.0.0.1:{plain.port}/mcpi"
        done = hub({**cluster_env, "MCPI_BROKER_URL": broker}, "estimate", "-n", "1e6")
        assert done.returncode == ExitStatus.UNREACHABLE
        assert f"the broker at 127.0.0.1:{plain.port}: no TLS handshake" in one_line(done.stderr)
    finally:
        plain.stop()


def test_tls_settings_with_a_plain_url_are_a_configuration_error(
    cluster_env: dict[str, str],
) -> None:
    plain = cluster_env["MCPI_BROKER_URL"].replace("amqps://", "amqp://")
    done = hub({**cluster_env, "MCPI_BROKER_URL": plain}, "estimate", "-n", "1e6")
    assert done.returncode == ExitStatus.CONFIG
    assert (
        "tls_ca (MCPI_TLS_CA) is set, but broker_url (MCPI_BROKER_URL) is not a TLS URL"
        in one_line(done.stderr)
    )


def test_a_worker_given_another_ca_stops_with_one_line(
    rabbitmq: RabbitMQ, redis_server: Redis, tmp_path: Path
) -> None:
    other = TestCA(tmp_path / "other-ca", name="someone else's CA")
    worker = Worker(
        "untrusting",
        rabbitmq.url,
        redis_server.url,
        tmp_path / "untrusting.log",
        extra_env={"MCPI_TLS_CA": str(other.cert)},
    )
    try:
        with pytest.raises(RuntimeError, match="exited"):
            worker.start(timeout=60)
        assert worker.process is not None
        assert worker.process.wait(10) == ExitStatus.UNREACHABLE
    finally:
        worker.kill()  # gone already, unless it failed to stop: then it must not linger
    log = worker.log().strip().splitlines()
    assert log[-1].startswith("mcpi worker: the broker at 127.0.0.1:")
    assert "its certificate was refused" in log[-1]


@pytest.fixture
def mutual(tmp_path: Path, cluster_ca: TestCA):  # type: ignore[no-untyped-def]
    """A broker and a backend that require client certificates of the cluster's CA."""
    broker = RabbitMQ(tmp_path / "mutual-rabbitmq", ca=cluster_ca, mutual=True)
    backend = Redis(tmp_path / "mutual-redis", ca=cluster_ca, mutual=True)
    broker.start()
    try:
        backend.start()
        try:
            yield broker, backend
        finally:
            backend.stop()
    finally:
        broker.stop()


def test_mutual_tls_serves_clients_with_certificates_and_refuses_others(  # type: ignore[no-untyped-def]
    mutual, tmp_path: Path
) -> None:
    broker, backend = mutual
    with_certificate = broker.client_env()
    assert "MCPI_TLS_CERT" in with_certificate
    worker = Worker(
        "w1",
        broker.url,
        backend.url,
        tmp_path / "w1.log",
        extra_env=with_certificate,
    ).start()
    try:
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
            "XDG_CONFIG_HOME": str(tmp_path / "no-config"),
            "XDG_CACHE_HOME": str(tmp_path / "cache"),
            "MCPI_BROKER_URL": broker.url,
            "MCPI_RESULT_BACKEND": backend.url,
            **with_certificate,
        }
        status, report, err = estimate(env, "-n", "2e7", "--seed", "8")
        assert status == 0 and report is not None, err
        assert report["hits"] == count_hits(8, 0, 2 * 10**7)

        # Without a client certificate: the hub is refused in one line ...
        bare = {k: v for k, v in env.items() if k not in ("MCPI_TLS_CERT", "MCPI_TLS_KEY")}
        done = hub(bare, "estimate", "-n", "1e6", "--no-progress")
        assert done.returncode == ExitStatus.UNREACHABLE
        assert "the broker at 127.0.0.1:" in one_line(done.stderr)
        # ... and so is a worker.
        refused = Worker(
            "bare",
            broker.url,
            backend.url,
            tmp_path / "bare.log",
            extra_env={"MCPI_TLS_CA": with_certificate["MCPI_TLS_CA"]},
        )
        try:
            with pytest.raises(RuntimeError, match="exited"):
                refused.start(timeout=60)
        finally:
            refused.kill()
        assert "mcpi worker: the broker at 127.0.0.1:" in refused.log()
    finally:
        worker.stop()
