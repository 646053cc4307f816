"""``mcpi-hub hosts``: ad hoc operations on the inventory's hosts, over SSH with Fabric.

Commands run on every chosen host in parallel (one thread and one SSH connection per
host), each with its own result: exit code, output, or the reason it could not run.
A host that fails never hides the others' results. The exception is ``restart``,
which is rolling: one host at a time, each back (unit active and, with a cluster
configured, its worker answering a ping) before the next is touched, and stopping at
the first host that does not come back, so a bad restart takes out one host, not all.

Privileged commands run as the inventory's user with ``sudo -n`` unless that user
is root (Ansible's ``ansible_become_password``, if set, is used instead of ``-n``).
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from mcpi.ops.inventory import InventoryHost

#: Seconds to open an SSH connection.
CONNECT_SECONDS = 10
#: Seconds a rolling restart waits for a host's worker to be back.
BACK_SECONDS = 120
#: The worker's systemd unit, as the mcpi_worker role names it by default.
DEFAULT_SERVICE = "mcpi-worker"


@dataclass(frozen=True)
class HostResult:
    host: str
    #: The command's exit code; None if it could not run (no connection).
    exit_code: int | None
    output: str = ""
    error: str = ""
    #: For ``state``: the unit's properties.
    details: tuple[tuple[str, str], ...] = ()

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


def run_everywhere(
    hosts: Iterable[InventoryHost],
    command: Callable[[InventoryHost], str],
    privileged: bool = False,
) -> list[HostResult]:
    """Run ``command(host)`` on every host at once; results in the hosts' order."""
    chosen = list(hosts)
    if not chosen:
        return []
    with ThreadPoolExecutor(max_workers=min(32, len(chosen))) as pool:
        futures = [pool.submit(run_on, host, command(host), privileged) for host in chosen]
        return [f.result() for f in futures]


def run_on(host: InventoryHost, command: str, privileged: bool = False) -> HostResult:
    """Run one shell command on ``host``; never raises."""
    import paramiko.ssh_exception

    try:
        options: dict[str, Any] = {"hide": True, "warn": True, "in_stream": False}
        with _connect(host) as connection:
            if not privileged or host.user in (None, "root"):
                done = connection.run(command, **options)
            elif host.become_password:
                done = connection.sudo(command, password=host.become_password, **options)
            else:
                done = connection.run("sudo -n sh -c " + shlex.quote(command), **options)
        return HostResult(host.name, done.exited, done.stdout, done.stderr)
    except (OSError, EOFError, paramiko.ssh_exception.SSHException) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        return HostResult(host.name, None, error=f"cannot reach {host.address}: {reason}")


def unit_state(hosts: Iterable[InventoryHost]) -> list[HostResult]:
    """Each host's worker unit: active state, since when, restarts, main pid."""
    properties = (
        "LoadState,ActiveState,SubState,ActiveEnterTimestamp,InactiveEnterTimestamp,"
        "NRestarts,MainPID,UnitFileState"
    )
    results = run_everywhere(
        hosts, lambda h: f"systemctl show {shlex.quote(_service(h))} --property={properties}"
    )
    parsed = []
    for result in results:
        details = tuple(
            (key, value)
            for key, _, value in (line.partition("=") for line in result.output.splitlines())
            if key
        )
        state = dict(details)
        # systemctl show succeeds for units that do not exist: say so.
        exit_code = result.exit_code
        if exit_code == 0 and state.get("ActiveState") != "active":
            exit_code = 3  # systemctl is-active's code for "not active"
        parsed.append(HostResult(result.host, exit_code, result.output, result.error, details))
    return parsed


def journal_tail(hosts: Iterable[InventoryHost], lines: int) -> list[HostResult]:
    return run_everywhere(
        hosts,
        lambda h: (
            f"journalctl --unit={shlex.quote(_service(h))} --lines={lines} "
            "--no-pager --output=short-iso"
        ),
        privileged=True,
    )


def drain(hosts: Iterable[InventoryHost]) -> list[HostResult]:
    """Stop and disable each host's worker: a warm shutdown lets its running chunks
    finish (prefetched ones go back to the queue), so no chunk is lost."""
    return run_everywhere(
        hosts,
        lambda h: f"systemctl disable --now {shlex.quote(_service(h))}",
        privileged=True,
    )


def rolling_restart(
    hosts: Iterable[InventoryHost],
    worker_answers: Callable[[str], bool] | None,
    say: Callable[[str], None],
    back_seconds: float = BACK_SECONDS,
) -> list[HostResult]:
    """Restart the hosts' workers one at a time, each back before the next."""
    results: list[HostResult] = []
    for host in hosts:
        service = shlex.quote(_service(host))
        say(f"{host.name}: restarting {_service(host)}")
        began = time.monotonic()
        done = run_on(host, f"systemctl restart {service} && hostname", privileged=True)
        if not done.ok:
            results.append(done)
            break
        hostname = done.output.strip().splitlines()[-1] if done.output.strip() else host.name
        back = _wait_until_back(host, hostname, worker_answers, began + back_seconds)
        results.append(back)
        if not back.ok:
            break
        say(f"{host.name}: back after {time.monotonic() - began:.0f}s")
    return results


def _wait_until_back(
    host: InventoryHost,
    hostname: str,
    worker_answers: Callable[[str], bool] | None,
    deadline: float,
) -> HostResult:
    service = shlex.quote(_service(host))
    active = False
    while time.monotonic() < deadline:
        if not active:
            active = run_on(host, f"systemctl is-active --quiet {service}").ok
        if active and (worker_answers is None or worker_answers(hostname)):
            what = "unit active" + ("" if worker_answers is None else ", worker answers")
            return HostResult(host.name, 0, what)
        time.sleep(1)
    missing = "its worker does not answer" if active else f"{_service(host)} is not active"
    return HostResult(
        host.name, None, error=f"not back after the restart: {missing} (rolling stopped here)"
    )


def _service(host: InventoryHost) -> str:
    return host.service or DEFAULT_SERVICE


def _connect(host: InventoryHost) -> Any:
    from fabric import Config, Connection

    connect_kwargs: dict[str, Any] = {"look_for_keys": host.key_file is None}
    if host.key_file:
        connect_kwargs["key_filename"] = [host.key_file]
    connection = Connection(
        host.address,
        user=host.user,
        port=host.port,
        connect_timeout=CONNECT_SECONDS,
        connect_kwargs=connect_kwargs,
        config=Config(overrides={"load_ssh_configs": False}),
    )
    options = dict(host.ssh_options)
    if options.get("UserKnownHostsFile") == "/dev/null":
        # The inventory trusts these hosts' keys blindly (a throw-away test bed, say):
        # so does this connection, instead of checking them against ~/.ssh/known_hosts.
        connection.client.get_host_keys().clear()
    return connection
