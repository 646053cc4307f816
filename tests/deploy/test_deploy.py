"""playbooks/cluster.yml on three real systemd hosts, then mcpi-hub against them.

The tests run in file order and build on each other, like an operator's session:
deploy, inspect, deploy again, compute, lose a host, reboot hosts, tear down.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shlex
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import testinfra

from mcpi.core import exact, kernel
from mcpi.errors import ExitStatus
from tests.deploy.testbed import BRIDGE, RECORDED, REPO, SUBNET, TestBed, plug, run, stage
from tests.helpers import USER_MODELS

pytestmark = pytest.mark.deploy

RECAP = re.compile(
    r"^(?P<host>\S+)\s+: ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+"
    r"unreachable=(?P<unreachable>\d+)\s+failed=(?P<failed>\d+)",
    re.M,
)
SEED = 20261125


# --- helpers -------------------------------------------------------------------------
def control_env(bed: TestBed) -> dict[str, str]:
    """The control node's environment: its own config home, so that the playbook's
    hub config lands where this run's mcpi-hub reads it, not in the user's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCPI_")}
    env.update(
        XDG_CONFIG_HOME=str(bed.state / "control-config"),
        # Job records and learned rates of this bed's runs only.
        XDG_CACHE_HOME=str(bed.state / "control-cache"),
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        PATH=f"{Path(sys.executable).parent}:{env.get('PATH', '')}",
    )
    return env


def playbook(
    bed: TestBed,
    name: str,
    log: str,
    *extra_inventories: Path,
    limit: str | None = None,
    extra_vars: tuple[str, ...] = (),
) -> tuple[int, str, dict[str, dict[str, int]]]:
    inventories = [arg for i in (bed.inventory, *extra_inventories) for arg in ("-i", str(i))]
    if limit is not None:
        inventories += ["--limit", limit]
    for assignment in extra_vars:
        inventories += ["-e", assignment]
    with stage(f"ansible-playbook {name} ({log})"):
        result = subprocess.run(
            [
                str(Path(sys.executable).parent / "ansible-playbook"),
                *inventories,
                str(REPO / "playbooks" / name),
            ],
            env=control_env(bed),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=1200,
        )
    output = result.stdout + result.stderr
    (bed.logs / f"{log}.log").write_text(output)
    recap = {
        m["host"]: {k: int(m[k]) for k in ("ok", "changed", "unreachable", "failed")}
        for m in RECAP.finditer(output)
    }
    return result.returncode, output, recap


def hub_command(*args: str) -> list[str]:
    return [
        str(Path(sys.executable).parent / "mcpi-hub"),
        "estimate", "--json", "--no-progress", "--seed", str(SEED), *args,
    ]  # fmt: skip


def hub(bed: TestBed, *args: str) -> dict[str, Any]:
    """``mcpi-hub estimate`` on the cluster, with the config the playbook wrote."""
    result = subprocess.run(
        hub_command(*args), env=control_env(bed), capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


#: A job that is still running well after a fault strikes (``hub_with_fault`` waits 4 s):
#: about 8 s on the test bed's two shared cores with the compiled kernel's vector path
#: (AVX-512 IFMA), 25 s on its portable one.
FAULT_JOB = ("-n", "2e10", "--chunk-size", "2.5e8")


def hub_with_fault(
    bed: TestBed, args: tuple[str, ...], fault: Callable[[], None]
) -> dict[str, Any]:
    """``hub(bed, *args)``, with ``fault()`` done once the job is under way on every host."""
    job = subprocess.Popen(
        hub_command(*args),
        env=control_env(bed),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(4)  # the job is under way on every host
    assert job.poll() is None, "the job ended before the fault could strike"
    fault()
    out, err = job.communicate(timeout=600)
    assert job.returncode == 0, err
    return json.loads(out)  # type: ignore[no-any-return]


@functools.cache
def local_hits(*args: str) -> int:
    """The embedded pool's count for the same job: what the cluster must reproduce
    (a pure function of the arguments: computed once per test session)."""
    result = subprocess.run(
        hub_command("--local", *args),
        env={k: v for k, v in os.environ.items() if not k.startswith("MCPI_")},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    return int(json.loads(result.stdout)["hits"])


def host(bed: TestBed, name: str) -> testinfra.host.Host:
    return testinfra.get_host(f"ssh://{name}", ssh_config=str(bed.ssh_config))


def secrets(bed: TestBed) -> list[str]:
    return [p.read_text().strip() for p in sorted(bed.credentials.glob("*-mcpi"))]


def worker_pids_users(h: testinfra.host.Host) -> set[str]:
    main = h.check_output("systemctl show --property=MainPID --value mcpi-worker")
    users = h.check_output(f"ps -o user= -p {main} --ppid {main}")
    return set(users.split())


def wait_for_workers(bed: TestBed, names: set[str], timeout: float = 120) -> None:
    """Until every named host's worker answers a broadcast ping through the broker."""
    script = (
        "from mcpi.cluster.app import create_app; from mcpi.settings import load_settings; "
        "app = create_app(load_settings(), role='hub'); "
        "print(' '.join(sorted(app.control.inspect(timeout=2).ping() or {})))"
    )
    deadline = time.monotonic() + timeout
    seen: set[str] = set()
    while time.monotonic() < deadline:
        result = subprocess.run(
            [sys.executable, "-c", script], env=control_env(bed), capture_output=True, text=True
        )
        seen = {node.split("@", 1)[1] for node in result.stdout.split()}
        if names <= seen:
            return
        time.sleep(2)
    raise AssertionError(f"workers of {sorted(names - seen)} did not come back in {timeout:.0f}s")


# --- the checks, in order --------------------------------------------------------------
def test_playbook_configures_every_host(testbed: TestBed) -> None:
    rc, output, recap = playbook(testbed, "cluster.yml", "cluster-first-run")
    assert rc == 0, output[-4000:]
    assert set(recap) >= set(testbed.hosts), recap
    for name, counts in recap.items():
        assert counts["failed"] == 0 and counts["unreachable"] == 0, (name, counts)
    for secret in secrets(testbed):
        assert secret not in output, "a generated credential appeared in the playbook output"


def test_broker_services_listen_only_where_they_should(testbed: TestBed) -> None:
    broker = testbed.hosts["h1"]
    h1 = host(testbed, "h1")
    for service in ("rabbitmq-server", "redis-server"):
        assert h1.service(service).is_running, service
        assert h1.service(service).is_enabled, service
    sockets = h1.check_output("ss -Htln | awk '{print $4}'").split()
    listening = {tuple(a.rsplit(":", 1)) for a in sockets}
    # TLS ports only: AMQPS and Redis over TLS; no plain AMQP or Redis port at all.
    assert {a for a, p in listening if p == "5671"} == {broker.address}
    assert {a for a, p in listening if p == "6380"} == {broker.address, "127.0.0.1"}
    assert not {p for _, p in listening} & {"5672", "6379"}, listening
    assert {a for a, p in listening if p == "25672"} == {"127.0.0.1"}
    assert {a for a, p in listening if p == "4369"} == {"127.0.0.1"}


def openssl_client(bed: TestBed, port: int, *args: str) -> subprocess.CompletedProcess[str]:
    """``openssl s_client`` from the control node to the broker host's ``port``."""
    address = bed.hosts["h1"].address
    return subprocess.run(
        ["openssl", "s_client", "-connect", f"{address}:{port}", "-brief", *args],
        input="",
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_both_services_speak_tls_1_3_with_the_clusters_certificate(testbed: TestBed) -> None:
    address = testbed.hosts["h1"].address
    ca = testbed.credentials / "tls" / "ca.pem"
    for port in (5671, 6380):
        done = openssl_client(
            testbed, port, "-CAfile", str(ca), "-verify_ip", address, "-verify_return_error"
        )
        assert done.returncode == 0, done.stderr
        assert "Protocol version: TLSv1.3" in done.stderr, done.stderr
        assert "Verification: OK" in done.stderr, done.stderr
        # Another address than the certificate's is refused.
        done = openssl_client(
            testbed, port, "-CAfile", str(ca), "-verify_ip", "192.0.2.1", "-verify_return_error"
        )
        assert done.returncode != 0 and "verify" in done.stderr.lower(), done.stderr
    # The plain ports give no service: nothing listens there.
    for port in (5672, 6379):
        with pytest.raises(OSError):
            socket.create_connection((address, port), timeout=5).close()
    # And the TLS ports say nothing to a plain client: AMQP's greeting is never sent in
    # clear, and a Redis command in clear gets no reply.
    for port, hello in ((5671, b"AMQP\x00\x00\x09\x01"), (6380, b"PING\r\n")):
        with socket.create_connection((address, port), timeout=5) as plain:
            plain.sendall(hello)
            plain.settimeout(3)
            try:
                answer = plain.recv(100)
            except (TimeoutError, ConnectionResetError):
                answer = b""
            assert b"AMQP" not in answer and b"PONG" not in answer, answer
    # Every client connection to RabbitMQ is TLS, also the broker host's own worker's.
    connections = host(testbed, "h1").check_output(
        "rabbitmqctl -q list_connections --no-table-headers ssl ssl_protocol"
    )
    rows = [line.split() for line in connections.splitlines() if line.strip()]
    assert rows and all(row == ["true", "tlsv1.3"] for row in rows), rows


def test_workers_run_as_the_unprivileged_user(testbed: TestBed) -> None:
    for name in testbed.hosts:
        h = host(testbed, name)
        assert h.service("mcpi-worker").is_running, name
        assert h.service("mcpi-worker").is_enabled, name
        assert worker_pids_users(h) == {"mcpi"}, name
        assert h.user("mcpi").shell == "/usr/sbin/nologin"
        env = h.file("/etc/mcpi/worker.env")
        assert (env.user, env.group, env.mode) == ("root", "mcpi", 0o640), name


#: The worker unit's ``systemd-analyze security`` exposure level (0 locked down, 10 fully
#: exposed). Measured on the test bed: see docs/deploying/index.md; a change to the unit
#: that loosens its sandbox beyond this fails the test.
MAX_WORKER_EXPOSURE = 2.5


def test_worker_unit_exposure_stays_low(testbed: TestBed) -> None:
    out = host(testbed, "h2").check_output("systemd-analyze security --no-pager mcpi-worker")
    match = re.search(r"Overall exposure level for mcpi-worker\.service: (\d+(?:\.\d+)?)", out)
    assert match, out[-2000:]
    exposure = float(match.group(1))
    RECORDED.append(f"systemd-analyze security mcpi-worker.service: {exposure}")
    assert exposure <= MAX_WORKER_EXPOSURE, out


def test_credentials_files_and_access(testbed: TestBed) -> None:
    h1 = host(testbed, "h1")
    for path, owner, group in (
        ("/etc/redis/redis.conf", "redis", "redis"),
        ("/etc/rabbitmq/definitions.json", "root", "rabbitmq"),
        ("/etc/rabbitmq/rabbitmq.conf", "root", "rabbitmq"),
    ):
        f = h1.file(path)
        assert (f.user, f.group, f.mode) == (owner, group, 0o640), path
    hub_config = testbed.state / "control-config/mcpi/hub.toml"
    assert hub_config.stat().st_mode & 0o777 == 0o600
    assert testbed.credentials.stat().st_mode & 0o777 == 0o700
    for secret_file in testbed.credentials.glob("*-mcpi"):
        assert secret_file.stat().st_mode & 0o777 == 0o600

    users = h1.check_output("rabbitmqctl --quiet --node rabbit@localhost list_users")
    assert "guest" not in users and "mcpi" in users

    # The CA and the keys on the control node, beside the passwords; on the broker host,
    # each key readable by its service only.
    tls = testbed.credentials / "tls"
    assert tls.stat().st_mode & 0o777 == 0o700
    for key in tls.glob("*.key"):
        assert key.stat().st_mode & 0o777 == 0o600, key
    for path, owner in (
        ("/etc/rabbitmq/tls/server.key", "rabbitmq"),
        ("/etc/redis/tls/server.key", "redis"),
    ):
        f = h1.file(path)
        assert (f.user, f.mode) == (owner, 0o600), path

    import pika

    broker = testbed.hosts["h1"].address
    context = ssl.create_default_context(cafile=str(tls / "ca.pem"))
    over_tls = pika.SSLOptions(context, server_hostname=broker)
    guest = pika.ConnectionParameters(
        broker, 5671, "/", pika.PlainCredentials("guest", "guest"), ssl_options=over_tls,
        socket_timeout=5,
    )  # fmt: skip
    with pytest.raises(pika.exceptions.ProbableAuthenticationError):
        pika.BlockingConnection(guest)
    wrong = pika.ConnectionParameters(
        broker, 5671, "mcpi", pika.PlainCredentials("mcpi", "not-the-password"),
        ssl_options=over_tls, socket_timeout=5,
    )  # fmt: skip
    with pytest.raises(pika.exceptions.ProbableAuthenticationError):
        pika.BlockingConnection(wrong)

    raw = socket.create_connection((broker, 6380), timeout=5)
    with context.wrap_socket(raw, server_hostname=broker) as redis:
        redis.sendall(b"PING\r\n")
        assert redis.recv(200).startswith(b"-NOAUTH")
        redis.sendall(b"AUTH mcpi not-the-password\r\n")
        assert redis.recv(200).startswith(b"-WRONGPASS")
        redis.sendall(b"AUTH default x\r\n")  # the default user is off
        assert redis.recv(200).startswith(b"-WRONGPASS")


def test_no_generated_secret_in_world_readable_files_or_ps(testbed: TestBed) -> None:
    # Not in the repository: the credentials directory is ignored, and no tracked file
    # holds a secret.
    in_git = subprocess.run(["git", "check-ignore", "-q", str(testbed.credentials)], cwd=REPO)
    assert in_git.returncode == 0, "the credentials directory is not git-ignored"
    for secret in secrets(testbed):
        tracked = subprocess.run(["git", "grep", "-qF", secret], cwd=REPO)
        assert tracked.returncode == 1, "a generated credential is in a tracked file"
    for name in testbed.hosts:
        h = host(testbed, name)
        processes = h.check_output("ps -eo args")
        for secret in secrets(testbed):
            assert secret not in processes, f"a credential is on a command line on {name}"
            found = h.run(
                f"grep -rlF '{secret}' /etc /opt /var/lib /home /root /tmp"
            ).stdout.split()
            for path in found:
                mode = int(h.check_output(f"stat -c %a {path}"), 8)
                assert mode & 0o004 == 0, f"{name}:{path} is world-readable and holds a credential"


def test_second_run_changes_nothing(testbed: TestBed) -> None:
    rc, output, recap = playbook(testbed, "cluster.yml", "cluster-second-run")
    assert rc == 0, output[-4000:]
    changed = {name: counts["changed"] for name, counts in recap.items() if counts["changed"]}
    assert not changed, f"second run changed something: {changed}\n{output[-4000:]}"


def capture_a_job(bed: TestBed, name: str) -> bytes:
    """Every byte on the test bed's bridge while the hub checks status and runs a job."""
    pcap = bed.logs / f"{name}.pcap"
    dump = subprocess.Popen(
        ["tcpdump", "-i", BRIDGE, "-U", "-s", "0", "-w", str(pcap)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        time.sleep(2)  # capturing before the first packet
        assert dump.poll() is None, dump.stderr.read() if dump.stderr else ""
        assert mcpi_hub(bed, "status").returncode == 0
        hub(bed, "-n", "2e9", "--chunk-size", "1e8")
        time.sleep(1)
    finally:
        dump.terminate()
        dump.wait(10)
    return pcap.read_bytes()


def secrets_on_the_wire(bed: TestBed, capture: bytes) -> dict[str, bool]:
    """Which of the things TLS must hide appear in ``capture``."""
    amqp, redis = (
        (bed.credentials / name).read_text().strip() for name in ("amqp-mcpi", "redis-mcpi")
    )
    markers = {
        "the AMQP password": amqp.encode(),
        "the Redis password": redis.encode(),
        "the Redis AUTH command": b"$4\r\nAUTH\r\n",  # RESP: AUTH, or HELLO's AUTH
        "the task name": b"mcpi.count_chunk",
        "the job seed": str(SEED).encode(),
        "the AMQP protocol header": b"AMQP\x00\x00\x09\x01",
    }
    return {what: marker in capture for what, marker in markers.items()}


def test_nothing_sensitive_crosses_the_wire_in_clear(testbed: TestBed) -> None:
    """A capture of the bridge during a job: with TLS (the default), none of the
    passwords, the AUTH command, the task name, the seed or the AMQP header appear; with
    TLS switched off (the positive control), every one of them does, or the capture
    would prove nothing."""
    with stage("capture a job over TLS"):
        encrypted = secrets_on_the_wire(testbed, capture_a_job(testbed, "tls"))
    with stage("redeploy with TLS off, the positive control"):
        rc, output, _ = playbook(
            testbed,
            "cluster.yml",
            "cluster-tls-off",
            extra_vars=("mcpi_tls=false",),  # as a user would type it
        )
        assert rc == 0, output[-4000:]
        wait_for_workers(testbed, set(testbed.hosts))
    try:
        with stage("capture a job in clear"):
            clear = secrets_on_the_wire(testbed, capture_a_job(testbed, "clear"))
    finally:
        # TLS back on, as the next two tests want it (one run of the playbook for
        # three): mutual, and a broker certificate near its end.
        tls_run(testbed, "cluster-tls-back", mutual=True, short_certificate=True)
    assert all(clear.values()), f"the positive control missed: {clear}"
    assert not any(encrypted.values()), f"in clear despite TLS: {encrypted}"
    RECORDED.append(
        "capture of the bridge during a job: with TLS off all of "
        + ", ".join(clear)
        + " appear; with TLS none does"
    )


def tls_run(bed: TestBed, log: str, mutual: bool, short_certificate: bool) -> None:
    """The playbook with TLS on: ``mutual`` (client certificates required), and with
    ``short_certificate`` a new broker certificate that ends in 10 days."""
    extra = [f"mcpi_tls_mutual={str(mutual).lower()}"]
    if short_certificate:
        (bed.credentials / "tls" / "broker.pem").unlink()
        extra.append("cluster_ca_certificate_days=10")
    with stage(f"redeploy with TLS: mutual {mutual}, short certificate {short_certificate}"):
        rc, output, _ = playbook(bed, "cluster.yml", log, extra_vars=tuple(extra))
        assert rc == 0, output[-4000:]
        wait_for_workers(bed, set(bed.hosts))


def hub_config(bed: TestBed) -> Path:
    return bed.state / "control-config" / "mcpi" / "hub.toml"


def first_reply(bed: TestBed, port: int, hello: bytes, certificate: bool) -> bytes:
    """What the broker host's TLS ``port`` answers to ``hello``, from a client that trusts
    the cluster's CA and presents its client certificate or none; b"" where the server
    ends the session instead (TLS 1.3 checks the client's certificate after the client's
    handshake is done, so a refusal shows on the first read)."""
    tls = bed.credentials / "tls"
    context = ssl.create_default_context(cafile=str(tls / "ca.pem"))
    if certificate:
        context.load_cert_chain(str(tls / "client.pem"), str(tls / "client.key"))
    address = bed.hosts["h1"].address
    try:
        with (
            socket.create_connection((address, port), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname=address) as conn,
        ):
            conn.sendall(hello)
            return conn.recv(100)
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        return b""


def test_mutual_tls_admits_only_clients_with_the_clusters_certificate(testbed: TestBed) -> None:
    """``mcpi_tls_mutual=true``: the hub and the workers present the cluster's client
    certificate and run jobs as before; RabbitMQ and Redis turn away a client that has
    the CA but no certificate, and so does a hub configured without one.

    The previous test's last run of the playbook turned mutual TLS on; alone, this test
    turns it on. The next test's run, with the defaults, turns it off again.
    """
    if "tls_cert" not in hub_config(testbed).read_text():
        tls_run(testbed, "cluster-mutual", mutual=True, short_certificate=False)
    report = hub(testbed, "-n", "1e9", "--chunk-size", "2e7")
    assert report["hits"] == local_hits("-n", "1e9", "--chunk-size", "2e7")
    assert {h["host"] for h in report["hosts"] if h["chunks"]} == set(testbed.hosts)
    # Every connection to RabbitMQ came with the cluster's client certificate.
    subjects = host(testbed, "h1").check_output(
        "rabbitmqctl -q list_connections --no-table-headers peer_cert_subject"
    )
    rows = [line.strip() for line in subjects.splitlines() if line.strip()]
    assert len(rows) >= len(testbed.hosts), rows
    assert all(row == "CN=mcpi client" for row in rows), rows
    # Each service answers a client with the certificate (the positive control) and
    # ends the session of one without.
    for port, hello, answer in (
        (5671, b"AMQP\x00\x00\x09\x01", b"\x01\x00\x00"),  # Connection.Start
        (6380, b"PING\r\n", b"-"),  # an error reply: not logged in
    ):
        assert first_reply(testbed, port, hello, certificate=True).startswith(answer)
        assert first_reply(testbed, port, hello, certificate=False) == b"", port
    # A hub whose config names no client certificate: one line, no traceback.
    bare = testbed.state / "bare-config"
    config = hub_config(testbed)
    (bare / "mcpi").mkdir(parents=True, exist_ok=True)
    (bare / "mcpi" / "hub.toml").write_text(
        "".join(
            line
            for line in config.read_text().splitlines(keepends=True)
            if not line.startswith(("tls_cert", "tls_key"))
        )
    )
    refused = subprocess.run(
        hub_command("-n", "1e6"),
        env={**control_env(testbed), "XDG_CONFIG_HOME": str(bare)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == ExitStatus.UNREACHABLE, refused.stderr
    (line,) = refused.stderr.strip().splitlines()
    assert f"the broker at {testbed.hosts['h1'].address}:5671" in line, line
    RECORDED.append(
        "mutual TLS: jobs run with client certificates; RabbitMQ and Redis end the session"
        " of a client without one, and a hub without one stops with one line"
    )


def certificate_days_left(bed: TestBed) -> float:
    status = json.loads(mcpi_hub(bed, "status", "--json").stdout)
    ends = datetime.fromisoformat(status["broker"]["certificate_expires"])
    return (ends - datetime.now(UTC)).total_seconds() / 86400


def test_a_certificate_near_its_end_is_renewed_and_an_unreachable_host_fails_alone(
    testbed: TestBed,
) -> None:
    """The next run of the playbook renews a broker certificate near its end, and the
    workers reconnect; a worker in the inventory that cannot be reached is reported,
    and the rest of the cluster is still configured (renewed) and still counts. The run,
    with the defaults, also turns mutual TLS off again.

    An earlier test's run left such a certificate; alone, this test makes one. That a
    renewed certificate is not renewed again is the second run's test: the first run
    makes its certificates as a renewal does.
    """
    if certificate_days_left(testbed) > 11:
        tls_run(testbed, "cluster-short-cert", mutual=False, short_certificate=True)
    assert certificate_days_left(testbed) < 11
    text = mcpi_hub(testbed, "status").stdout
    assert "warning: the broker's certificate expires in" in text, text
    extra = testbed.state / "unreachable.ini"
    extra.write_text(f"[workers]\nh9 ansible_host={SUBNET}.98\n")
    with stage("the next run renews it, an unreachable host in the inventory"):
        rc, output, recap = playbook(testbed, "cluster.yml", "cluster-renew", extra)
        assert rc == 4, output[-4000:]  # ansible-playbook: some host unreachable
        wait_for_workers(testbed, set(testbed.hosts))
    assert recap["h9"]["unreachable"] == 1, recap
    for name in testbed.hosts:
        assert recap[name]["failed"] == 0 and recap[name]["unreachable"] == 0, recap
    assert re.search(r"fatal: \[h9\]: UNREACHABLE!.*", output)
    assert recap["h1"]["changed"] > 0, recap
    assert certificate_days_left(testbed) > 300
    assert "warning" not in mcpi_hub(testbed, "status").stdout
    assert "tls_cert" not in hub_config(testbed).read_text()  # mutual TLS off again
    report = hub(testbed, "-n", "1e9", "--chunk-size", "2e7")
    assert report["hits"] == local_hits("-n", "1e9", "--chunk-size", "2e7")
    assert {h["host"] for h in report["hosts"] if h["chunks"]} == set(testbed.hosts)


def test_estimate_on_the_cluster_equals_the_local_run(testbed: TestBed) -> None:
    with stage("mcpi-hub estimate on the cluster and locally"):
        report = hub(testbed, "-n", "1e9", "--chunk-size", "2e7")
        expected = local_hits("-n", "1e9", "--chunk-size", "2e7")
    assert report["mode"] == "cluster"
    assert report["hits"] == expected
    worked = {h["host"]: h["chunks"] for h in report["hosts"]}
    assert set(worked) == set(testbed.hosts), worked
    assert all(chunks > 0 for chunks in worked.values()), worked


def test_a_host_powered_off_mid_job_loses_nothing(testbed: TestBed) -> None:
    victim = testbed.hosts["h3"]
    job_args = FAULT_JOB
    with stage("power off a worker host mid-job"):
        report = hub_with_fault(testbed, job_args, lambda: testbed.power_off(victim))
    with stage("the same job locally"):
        expected = local_hits(*job_args)
    assert report["hits"] == expected
    assert {h["host"] for h in report["hosts"]} >= {"h1", "h2"}


def test_rebooted_hosts_come_back_and_take_work(testbed: TestBed) -> None:
    with stage("boot the powered-off host, reboot another"):
        off = testbed.hosts["h3"]
        testbed.restore_link(off)
        testbed.boot(off)
        rebooted = testbed.hosts["h2"]
        testbed.stop(rebooted)
        testbed.boot(rebooted)
        for h in (off, rebooted):
            testbed.wait_for_ssh(h)
        wait_for_workers(testbed, set(testbed.hosts))
    report = hub(testbed, "-n", "1e9", "--chunk-size", "2e7")
    assert report["hits"] == local_hits("-n", "1e9", "--chunk-size", "2e7")
    assert {h["host"] for h in report["hosts"] if h["chunks"]} == set(testbed.hosts)


def test_a_host_cut_off_mid_job_loses_nothing_and_rejoins(testbed: TestBed) -> None:
    """Its held chunks return to the queue once the broker misses its heartbeats; when
    the cable is back, its worker reconnects by itself."""
    victim = testbed.hosts["h2"]
    job_args = FAULT_JOB

    def pull_the_cable() -> None:
        testbed.cut_link(victim)
        try:
            time.sleep(30)  # past two missed heartbeats: the broker requeues its chunks
        finally:
            testbed.restore_link(victim)

    with stage("cut a worker host off mid-job, then plug it back"):
        report = hub_with_fault(testbed, job_args, pull_the_cable)
    assert report["hits"] == local_hits(*job_args)
    with stage("the cut-off host's worker rejoins"):
        wait_for_workers(testbed, {victim.name})


#: The desktop's owner: one CPU-bound process that prints the CPU seconds it got in a
#: window of wall time.
OWNER = (
    "import os, time\n"
    "end = time.monotonic() + {seconds}\n"
    "while time.monotonic() < end:\n"
    "    pass\n"
    "t = os.times()\n"
    "print(t.user + t.system)\n"
)


def owner_cpu_seconds(bed: TestBed, name: str, seconds: float) -> float:
    script = OWNER.format(seconds=seconds)
    result = bed.ssh(bed.hosts[name], f"python3 -c {shlex.quote(script)}")
    return float(result.stdout.split()[-1])


def test_polite_workers_leave_the_owner_their_cpu(testbed: TestBed) -> None:
    """A job runs on h2 while h2's owner computes: the owner keeps >= 90 % of the CPU
    it gets with no job, and the job's count is still exact.

    The other hosts' workers stop meanwhile: the test bed's hosts share this machine's
    cores, and a host's politeness is towards its own owner, not towards other hosts.
    """
    h2 = host(testbed, "h2")
    unit = dict(
        line.split("=", 1)
        for line in h2.check_output(
            "systemctl show --property=CPUSchedulingPolicy --property=Nice --property=Slice "
            "mcpi-worker"
        ).split()
    )
    assert unit["CPUSchedulingPolicy"] in {"5", "idle"} and unit["Nice"] == "19", unit
    assert unit["Slice"] == "mcpi.slice", unit
    others = [name for name in testbed.hosts if name != "h2"]
    window = 5.0
    # Long enough to outlast the hub's 4 s head start and the owner's window, at full
    # speed and then on the core the owner leaves (some 12 s on the vector path).
    job_args = ("-n", "3e10", "--chunk-size", "5e8")
    result: dict[str, float] = {}

    def owner_during_the_job() -> None:
        result["shared"] = owner_cpu_seconds(testbed, "h2", window)

    try:
        for name in others:
            testbed.ssh(testbed.hosts[name], "systemctl stop mcpi-worker")
        with stage("the owner's CPU, alone"):
            alone = owner_cpu_seconds(testbed, "h2", window)
        with stage("the owner's CPU while a job runs on its host"):
            report = hub_with_fault(testbed, job_args, owner_during_the_job)
    finally:
        for name in others:
            testbed.ssh(testbed.hosts[name], "systemctl start mcpi-worker")
        wait_for_workers(testbed, set(testbed.hosts))
    shared = result["shared"]
    RECORDED.append(
        f"polite workers: the owner's CPU in {window:.0f} s, {alone:.2f} s alone and "
        f"{shared:.2f} s during a job on its host ({shared / alone:.2f})"
    )
    assert shared >= 0.9 * alone, (alone, shared)
    assert {h["host"] for h in report["hosts"] if h["chunks"]} == {"h2"}
    assert report["hits"] == local_hits(*job_args)


def ideal_ratio(report: dict[str, Any], slots: int) -> float:
    """The job's rate over the ideal one: the sum of its hosts' own measured rates (each
    host's per-slot rate while computing, times its slots)."""
    ideal = sum(h["darts_per_busy_second"] * slots for h in report["hosts"] if h["chunks"])
    return float(report["darts_per_second"]) / ideal


def test_a_slow_host_benchmark_with_and_without_backups(testbed: TestBed) -> None:
    """One of three worker hosts held to 20 % of its speed (a desktop whose owner started
    a build): the job's rate as a fraction of the ideal, without and with backups, in one
    run. A benchmark: the figures are recorded; the test asks exact counts only."""
    slow = testbed.hosts["h3"]
    slots = int(host(testbed, "h1").check_output("nproc"))
    # Chunk sizes are the tuner's, from a calibration of each run's own (fresh cache):
    # sizing and backups together, as a user gets them.
    job_args = ("-n", "2e10")
    expected = local_hits(*job_args)
    ratios, chunks = {}, {}
    # A duty cycle of SIGSTOP and SIGCONT to h3's pool processes: 20 ms of every 100 ms
    # running (a CPU quota would do, but the bed's hosts cannot set one on this kernel's
    # cgroups); the worker's main process keeps its heartbeats.
    testbed.ssh(
        slow,
        "cat > /run/mcpi-slowdown.sh <<'EOF'\n"
        "pid=$(systemctl show -P MainPID mcpi-worker)\n"
        "while :; do pkill -STOP -P $pid; sleep 0.08; pkill -CONT -P $pid; sleep 0.02; done\n"
        "EOF\n"
        "systemd-run --unit=mcpi-slowdown /bin/sh /run/mcpi-slowdown.sh",
    )
    try:
        for backups in ("false", "true"):
            env = {
                **control_env(testbed),
                "MCPI_BACKUPS": backups,
                "MCPI_CACHE_DIR": str(testbed.state / f"slow-host-{backups}"),
            }
            with stage(f"a job with h3 at 20 % CPU, backups {backups}"):
                # The rates are measured first, as a cluster's are after its first job.
                tune = [str(Path(sys.executable).parent / "mcpi-hub"), "tune", *job_args]
                subprocess.run(tune, env=env, capture_output=True, check=True, timeout=300)
                result = subprocess.run(
                    hub_command(*job_args), env=env, capture_output=True, text=True, timeout=600
                )
            assert result.returncode == 0, result.stderr
            report = json.loads(result.stdout)
            assert report["hits"] == expected
            ratios[backups] = ideal_ratio(report, slots)
            chunks[backups] = report["chunks"]
            if backups == "false":  # with backups, h3's copies may all be beaten
                rates = {h["host"]: h["darts_per_busy_second"] for h in report["hosts"]}
    finally:
        testbed.ssh(
            slow,
            "systemctl stop mcpi-slowdown; pkill -CONT -P $(systemctl show -P MainPID mcpi-worker)",
            check=False,
        )
    shown = ", ".join(f"{name} {rate:.3g}" for name, rate in sorted(rates.items()))
    RECORDED.append(
        "a slow host (h3 at 20 % CPU), the job's rate over the ideal: "
        f"{ratios['false']:.2f} without backups, {ratios['true']:.2f} with "
        f"({chunks['false']} and {chunks['true']} chunks; per-slot darts/s: {shown})"
    )
    # The set-up, not a speed target: h3 really was slower than the others.
    assert rates["h3"] < 0.6 * min(rates["h1"], rates["h2"]), rates


def chunk_receipts(bed: TestBed, job: str, since: float) -> dict[int, int]:
    """How often each chunk of ``job`` reached a worker since the epoch time ``since``,
    over every host's worker log."""
    receipts: dict[int, int] = {}
    for name in bed.hosts:
        log = bed.ssh(
            bed.hosts[name],
            f"journalctl -u mcpi-worker --no-pager --since @{since:.0f} -g 'mcpi-{job}-'",
        )
        for index in re.findall(rf"count_chunk\[mcpi-{job}-(\d+)\] received", log.stdout):
            receipts[int(index)] = receipts.get(int(index), 0) + 1
    return receipts


def queue_idle(bed: TestBed) -> bool:
    """The mcpi queue is empty, and no worker holds a chunk of it unacknowledged."""
    queue = bed.ssh(
        bed.hosts["h1"],
        "rabbitmqctl -q list_queues -p mcpi --no-table-headers "
        "name messages_ready messages_unacknowledged",
    )
    rows = [line.split() for line in queue.stdout.splitlines()]
    return ["mcpi", "0", "0"] in rows


def test_a_lost_broker_host_resume_recounts_no_journaled_chunk(testbed: TestBed) -> None:
    """The hub dies mid-job, then the broker host is rebuilt: Redis loses everything and
    the playbook runs again with new passwords. ``--resume`` finishes the job from the
    hub's own journal, recomputing only the chunks it lacks: the exact count."""
    job_args = ("-n", "1.5e10", "--chunk-size", "1.25e8")
    jobs = testbed.state / "control-cache" / "mcpi" / "jobs"
    killed = subprocess.Popen(
        hub_command(*job_args),
        env=control_env(testbed),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not any(p.read_text().count("\n") >= 5 for p in jobs.glob("*.chunks")):
            assert time.monotonic() < deadline, "the hub journaled no chunks"
            time.sleep(0.2)
    finally:
        killed.kill()
        killed.wait(10)
    (journal,) = jobs.glob("*.chunks")
    job = journal.stem
    journaled = {
        json.loads(line)["result"]["chunk"]["index"] for line in journal.read_text().splitlines()
    }
    with stage("the killed hub's queued chunks run out"):
        # So that Redis, wiped next, is left with nothing at all of the job.
        deadline = time.monotonic() + 120
        while not queue_idle(testbed):
            assert time.monotonic() < deadline, "the queue did not drain"
            time.sleep(1)
    with stage("rebuild the broker host's Redis, with new passwords"):
        testbed.ssh(
            testbed.hosts["h1"],
            "systemctl stop redis-server && rm -rf /var/lib/redis/* "
            "&& systemctl start redis-server",
        )
        for secret in ("amqp-mcpi", "redis-mcpi"):
            (testbed.credentials / secret).unlink()
        rc, output, _ = playbook(testbed, "cluster.yml", "cluster-new-passwords")
        assert rc == 0, output[-4000:]
        wait_for_workers(testbed, set(testbed.hosts))
    resumed_at = time.time() - 1
    with stage("resume the job from the hub's journal"):
        result = mcpi_hub(testbed, "estimate", "--json", "--no-progress", "--resume", job)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["hits"] == local_hits(*job_args)
    (note,) = [n for n in report["notes"] if n.startswith("resumed: ")]
    assert f"{len(journaled)} from the hub's journal, 0 from the result backend" in note, note
    # The workers' logs: since the resume, every chunk but the journaled ones was run.
    receipts = chunk_receipts(testbed, job, since=resumed_at)
    chunks = round(float(job_args[1]) / float(job_args[3]))
    assert set(receipts) == set(range(chunks)) - journaled, (sorted(receipts), sorted(journaled))


def mcpi_hub(bed: TestBed, *args: str) -> subprocess.CompletedProcess[str]:
    """Any ``mcpi-hub`` command on the control node (config and inventory from the playbook)."""
    return subprocess.run(
        [str(Path(sys.executable).parent / "mcpi-hub"), *args],
        env=control_env(bed),
        capture_output=True,
        text=True,
        timeout=600,
    )


def hosts_json(bed: TestBed, action: str, *args: str) -> tuple[int, dict[str, dict[str, Any]]]:
    # --json before the arguments: those of `run` end with the remote command.
    result = mcpi_hub(bed, "hosts", action, "--json", *args)
    assert result.stdout, result.stderr
    return result.returncode, {h["host"]: h for h in json.loads(result.stdout)["hosts"]}


def test_status_shows_every_host_and_no_version_skew(testbed: TestBed) -> None:
    wait_for_workers(testbed, set(testbed.hosts))
    result = mcpi_hub(testbed, "status", "--json", "--strict")
    assert result.returncode == 0, result.stdout + result.stderr
    status = json.loads(result.stdout)
    assert {w["host"] for w in status["workers"]} == set(testbed.hosts)
    assert status["broker"]["product"] == "RabbitMQ" and status["broker"]["version"]
    # HELLO gives the version through the deployed ACL, which denies INFO.
    assert status["backend"]["version"].startswith("7.")
    assert status["queue"]["consumers"] == 3 and status["skew"] == []
    assert status["broker"]["tls"] == status["backend"]["tls"] == "TLSv1.3", status
    assert all(w["slots"] >= 1 and len(w["load"]) == 3 for w in status["workers"])
    # The compiled dart kernel, from the control node's wheel, loads in the hardened unit,
    # where memory cannot be made executable (no JIT could run there), and picks the same
    # path as here: the test bed's hosts run on this machine's CPU.
    assert {w["kernel"] for w in status["workers"]} == {kernel.KERNEL}
    # So do the exact sums' compiled passes.
    assert {w["exact_sums"] for w in status["workers"]} == {exact.EXACT_PASS}
    unit = host(testbed, "h2").check_output("systemctl show -p MemoryDenyWriteExecute mcpi-worker")
    assert unit.strip() == "MemoryDenyWriteExecute=yes"
    text = mcpi_hub(testbed, "status").stdout
    assert "3 worker(s) on 3 host(s)" in text and "RabbitMQ" in text
    assert kernel.KERNEL in text and exact.EXACT_PASS in text and "warning" not in text


def test_precision_target_resume_and_plot_on_the_cluster(testbed: TestBed) -> None:
    # A precision target stops at the same dart on the cluster as on the local pool.
    plot = testbed.state / "precision.png"
    report = hub(testbed, "--precision", "5e-5", "--plot", str(plot))
    assert report["precision"]["reached"] and report["ci95"][1] - report["pi"] <= 5e-5
    assert len(report["stages"]) >= 2
    assert report["hits"] == local_hits("--precision", "5e-5")
    assert plot.read_bytes().startswith(b"\x89PNG")

    # The hub killed mid-job: resumed, it reuses what was counted and gives the count
    # of an uninterrupted run.
    job_args = ("-n", "3e10", "--chunk-size", "5e8")
    with stage("kill the hub mid-job, then resume the job"):
        killed = subprocess.Popen(
            hub_command(*job_args),
            env=control_env(testbed),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(6)
        assert killed.poll() is None, "the job ended before the hub could be killed"
        killed.kill()
        killed.wait(10)
        jobs = json.loads(mcpi_hub(testbed, "jobs", "--json").stdout)
        (record,) = [j for j in jobs if j["status"] == "running"]
        result = mcpi_hub(testbed, "estimate", "--json", "--no-progress", "--resume", record["id"])
    assert result.returncode == 0, result.stderr
    resumed = json.loads(result.stdout)
    assert resumed["hits"] == local_hits(*job_args) and resumed["job_id"] == record["id"]
    (note,) = [n for n in resumed["notes"] if n.startswith("resumed: ")]
    assert int(note.split()[1].replace(",", "")) >= 1
    assert resumed["thrown_darts"] < resumed["darts"]


def run_json(bed: TestBed, *args: str) -> tuple[int, dict[str, Any] | None, str]:
    """``mcpi-hub run --json ARGS`` on the control node."""
    result = mcpi_hub(bed, "run", "--json", "--no-progress", *args)
    report = json.loads(result.stdout) if result.returncode == 0 else None
    return result.returncode, report, result.stderr


def test_a_user_model_project_is_deployed_run_and_updated(testbed: TestBed) -> None:
    """A model project outside the mcpi tree, named in the inventory: deployed to every
    worker (and the hub), run on the cluster bit-identical to the local pool; a new
    version deployed alone, and a worker left behind named by the hub."""
    project = testbed.state / "usermodels"
    shutil.copytree(USER_MODELS, project, dirs_exist_ok=True)
    models_vars = testbed.inventory / "group_vars/all/models.yml"
    models_vars.write_text(f"---\nmcpi_models: ['{project}']\n")
    args = ("cosine", "--precision", "1e-3", "--seed", str(SEED))
    try:
        rc, output, _ = playbook(testbed, "models.yml", "models-deploy")
        assert rc == 0, output[-4000:]
        wait_for_workers(testbed, set(testbed.hosts))
        with stage("mcpi-hub run cosine on the cluster and locally"):
            code, cluster, err = run_json(testbed, *args)
            assert code == 0 and cluster is not None, err
            code, local, err = run_json(testbed, *args, "--local")
            assert code == 0 and local is not None, err
        assert cluster["mode"] == "cluster" and {h["host"] for h in cluster["hosts"]} == set(
            testbed.hosts
        )
        assert cluster["outputs"] == local["outputs"] and cluster["samples"] == local["samples"]
        cos = cluster["outputs"]["cos"]
        assert abs(cos["mean"] - cos["exact"]) < 4 * cos["std_error"]

        # Version 2 of the model, deployed to every host but h3: the hub names h3.
        source = project / "usermodels.py"
        source.write_text(source.read_text().replace('version="1"', 'version="2"'))
        rc, output, _ = playbook(testbed, "models.yml", "models-v2-not-h3", limit="localhost,h1,h2")
        assert rc == 0, output[-4000:]
        wait_for_workers(testbed, set(testbed.hosts))
        code, _, err = run_json(testbed, *args)
        assert code == 11 and "with other code: mcpi@h3 (version 1" in err, err

        # The models alone, everywhere: well under a minute, and every worker has v2.
        began = time.monotonic()
        rc, output, _ = playbook(testbed, "models.yml", "models-v2")
        seconds = time.monotonic() - began
        assert rc == 0, output[-4000:]
        RECORDED.append(f"models.yml, a new model version on 3 hosts: {seconds:.1f} s")
        assert seconds < 60, seconds
        wait_for_workers(testbed, set(testbed.hosts))
        listed = json.loads(mcpi_hub(testbed, "models", "--json").stdout)
        versions = set(listed["models"]["cosine"]["workers"].values())
        assert len(versions) == 1 and versions.pop().startswith("2:"), listed
        code, again, err = run_json(testbed, *args)
        assert code == 0 and again is not None, err
    finally:
        # The control node's Python is this test run's: leave it as it was.
        models_vars.unlink(missing_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "uninstall", "--quiet", "--yes", "mcpi-usermodels"],
            check=False,
        )


def test_randomized_qmc_runs_on_the_deployed_workers(testbed: TestBed) -> None:
    """The hardened units run the compiled Sobol' points from the wheel (its direction
    numbers packaged with it): the call to ±1e-4 on three hosts, the local pool's bits."""
    args = ("call", "--precision", "1e-4", "--seed", str(SEED))
    code, cluster, err = run_json(testbed, *args)
    assert code == 0 and cluster is not None, err
    code, local, err = run_json(testbed, *args, "--local")
    assert code == 0 and local is not None, err
    assert cluster["mode"] == "cluster" and cluster["sampler"]["kind"] == "rqmc"
    assert cluster["outputs"] == local["outputs"] and cluster["samples"] == local["samples"]
    price = cluster["outputs"]["price"]
    assert price["ci95"][0] <= price["exact"] <= price["ci95"][1]


def test_hosts_lists_states_tails_and_runs_over_the_inventory(testbed: TestBed) -> None:
    # No -i: the playbook recorded the inventory in the hub's config file.
    code, listed = hosts_json(testbed, "list")
    assert code == 0 and list(listed) == ["h1", "h2", "h3"]
    assert listed["h1"]["details"]["groups"] == "broker,workers"
    code, state = hosts_json(testbed, "state")
    assert code == 0, state
    assert {h: s["details"]["ActiveState"] for h, s in state.items()} == dict.fromkeys(
        testbed.hosts, "active"
    )
    logs = mcpi_hub(testbed, "hosts", "logs", "-n", "3")
    assert logs.returncode == 0, logs.stdout + logs.stderr
    assert all(f"== {name} (exit 0)" in logs.stdout for name in testbed.hosts)
    code, ran = hosts_json(testbed, "run", "--", "test", "-x", "/opt/mcpi/venv/bin/celery")
    assert code == 0 and all(r["exit_code"] == 0 for r in ran.values())
    # A command that fails on one host: its exit code, the others', and exit 9.
    code, ran = hosts_json(testbed, "run", "--on", "h2,h3", "--", 'test "$(hostname)" = h2')
    assert code == 9 and {h: r["exit_code"] for h, r in ran.items()} == {"h2": 0, "h3": 1}
    bad = mcpi_hub(testbed, "hosts", "state", "--on", "h7")
    assert bad.returncode == 2 and "h7: not in group 'workers'" in bad.stderr


def test_rolling_restart_brings_each_worker_back_before_the_next(testbed: TestBed) -> None:
    _, before = hosts_json(testbed, "state")
    with stage("rolling restart of every worker"):
        result = mcpi_hub(testbed, "hosts", "restart")
    assert result.returncode == 0, result.stdout + result.stderr
    order = [
        line.split(":")[1].strip() for line in result.stderr.splitlines() if "restarting" in line
    ]
    assert order == ["h1", "h2", "h3"]
    assert result.stdout.count("unit active, worker answers") == 3
    _, after = hosts_json(testbed, "state")
    for name in testbed.hosts:
        assert after[name]["details"]["MainPID"] != before[name]["details"]["MainPID"]


def test_a_host_drained_mid_job_loses_nothing_and_comes_back_with_limit(testbed: TestBed) -> None:
    """Removing a host drains its worker first; adding one is the playbook with --limit."""
    job_args = FAULT_JOB

    def drain_h3() -> None:
        result = mcpi_hub(testbed, "hosts", "drain", "--on", "h3")
        assert result.returncode == 0, result.stdout + result.stderr

    with stage("drain a worker host mid-job"):
        report = hub_with_fault(testbed, job_args, drain_h3)
    assert report["hits"] == local_hits(*job_args)
    code, state = hosts_json(testbed, "state", "--on", "h3")
    assert code == 9 and state["h3"]["details"]["UnitFileState"] == "disabled"

    rc, output, _ = playbook(testbed, "teardown.yml", "remove-h3", limit="h3")
    assert rc == 0, output[-4000:]
    status = json.loads(mcpi_hub(testbed, "status", "--json").stdout)
    assert {w["host"] for w in status["workers"]} == {"h1", "h2"}
    rc, output, recap = playbook(testbed, "cluster.yml", "add-h3", limit="h3,broker,localhost")
    assert rc == 0, output[-4000:]
    assert recap["h3"]["failed"] == 0 and recap["h3"]["changed"] > 0
    wait_for_workers(testbed, {"h3"})
    report = hub(testbed, "-n", "1e9", "--chunk-size", "2e7")
    assert {h["host"] for h in report["hosts"] if h["chunks"]} == set(testbed.hosts)


def test_firewall_turns_away_hosts_outside_the_inventory(testbed: TestBed) -> None:
    """mcpi_firewall is on in the test bed: a machine on the same network that is not
    in the inventory cannot even open a connection to the broker's ports."""
    broker = testbed.hosts["h1"].address
    stranger = "mcpitb-stranger"
    try:
        plug(stranger, "tb-stranger", f"{SUBNET}.99")
        probe = (
            "import socket, sys\n"
            "for port in (5671, 6380):\n"
            "    try:\n"
            f"        socket.create_connection(('{broker}', port), timeout=5).close()\n"
            "        print(port, 'open')\n"
            "    except ConnectionRefusedError:\n"
            "        print(port, 'refused')\n"
        )
        result = run("ip", "netns", "exec", stranger, sys.executable, "-c", probe)
        assert result.stdout.split("\n")[:2] == ["5671 refused", "6380 refused"], result.stdout
    finally:
        run("ip", "link", "delete", "tb-stranger", check=False)
        run("ip", "netns", "delete", stranger, check=False)


def test_teardown_leaves_no_mcpi_unit_running(testbed: TestBed) -> None:
    rc, output, _ = playbook(testbed, "teardown.yml", "teardown")
    assert rc == 0, output[-4000:]
    for name in testbed.hosts:
        h = host(testbed, name)
        running = h.check_output(
            "systemctl list-units --state=active,activating,reloading,failed"
            " --plain --no-legend 'mcpi*'"
        )
        assert running.strip() == "", f"{name}: {running}"
        assert not h.file("/etc/systemd/system/mcpi-worker.service").exists
        assert not h.user("mcpi").exists
    h1 = host(testbed, "h1")
    assert not h1.package("rabbitmq-server").is_installed
    assert not h1.package("redis-server").is_installed
    assert not (testbed.state / "control-config/mcpi/hub.toml").exists()
