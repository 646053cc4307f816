"""The Vagrantfile: valid for Vagrant, and the cluster it defines is the one the
playbook expects (same groups, one provisioner run over all machines, addresses that
the roles will bind to); and a real ``vagrant up``, with vagrant-lxc and a box built
here from the test bed's Debian 12 root filesystem (no box can be downloaded, and
there is no VirtualBox), after which ``mcpi-hub estimate`` runs on the containers.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mcpi.core.kernel import count_hits
from tests.deploy.testbed import stage
from tests.vagrant import lxcbox

REPO = Path(__file__).resolve().parents[2]
# Vagrant must not phone home (version and box update checks) from the test suite.
QUIET_VAGRANT = {"VAGRANT_CHECKPOINT_DISABLE": "1", "VAGRANT_BOX_UPDATE_CHECK_DISABLE": "1"}


def require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        message = f"{tool} not installed (scripts/test installs the Debian package vagrant)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def topology(**env: str) -> dict[str, Any]:
    result = subprocess.run(
        [require("ruby"), str(REPO / "tests/vagrant/topology.rb"), str(REPO / "Vagrantfile")],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def playbook_groups() -> set[str]:
    groups = set()
    for path in (REPO / "playbooks").glob("*.yml"):
        for play in yaml.safe_load(path.read_text()) or []:
            hosts = str(play.get("hosts", ""))
            groups.add(hosts.split("[")[0])
    return groups - {"", "localhost"}


def test_vagrant_validate() -> None:
    result = subprocess.run(
        [require("vagrant"), "validate"],
        cwd=REPO,
        env={**os.environ, **QUIET_VAGRANT},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("workers", [2, 4])
def test_machines_groups_and_addresses_match_the_playbook(workers: int) -> None:
    top = topology(MCPI_WORKERS=str(workers))
    machines = top["machines"]
    names = [m["name"] for m in machines]
    assert len(machines) == 1 + workers
    addresses = [m["ip"] for m in machines]
    assert len(set(addresses)) == len(addresses)
    assert len({a.rsplit(".", 1)[0] for a in addresses}) == 1, "one private subnet"
    assert all(m["network"] == "private_network" for m in machines)
    assert [m["hostname"] for m in machines] == names

    # Exactly one Ansible run, from the last machine, over all of them.
    runs = [(m["name"], p) for m in machines for p in m["provisioners"] if p["type"] == "ansible"]
    assert len(runs) == 1 and runs[0][0] == names[-1]
    ansible = runs[0][1]
    # Every machine, and the control node's plays (implicit localhost is not in "all").
    assert ansible["limit"] == "all,localhost"
    assert (REPO / ansible["playbook"]).exists()
    assert ansible["playbook"] == "playbooks/cluster.yml"

    # The same groups as a real inventory, and every playbook group is provided.
    groups = ansible["groups"]
    assert set(groups) == playbook_groups() == {"broker", "workers"}
    assert len(groups["broker"]) == 1 and groups["broker"][0] in names
    assert sorted(groups["workers"]) == sorted(names), "the broker is a worker too"
    # The roles bind to each machine's private address.
    assert {n: v["mcpi_cluster_address"] for n, v in ansible["host_vars"].items()} == dict(
        zip(names, addresses, strict=True)
    )
    # The inventory wiring (group_vars) is the example inventory's, not a copy.
    inventory = Path(ansible["raw_arguments"][0].split("=", 1)[1])
    assert (inventory / "group_vars/all").resolve() == (
        REPO / "inventory/example/group_vars/all"
    ).resolve()


def test_resources_and_box_come_from_the_environment() -> None:
    top = topology(MCPI_VM_CPUS="3", MCPI_VM_MEMORY="3072", MCPI_BOX="local/mcpi-bookworm")
    assert top["box"] == "local/mcpi-bookworm"
    for provider in ("libvirt", "virtualbox"):
        assert top["providers"][provider] == {"cpus": 3, "memory": 3072}


def test_lxc_containers_get_the_same_addresses_on_their_only_interface() -> None:
    """vagrant-lxc would set a private network up only after waiting for SSH on it, so
    under lxc the address is in each container's LXC config instead."""
    default = {m["name"]: m["ip"] for m in topology()["machines"]}
    machines = topology(VAGRANT_DEFAULT_PROVIDER="lxc")["machines"]
    for m in machines:
        assert m["network"] is None
        assert m["lxc"]["customize"]["net.0.ipv4.address"] == f"{default[m['name']]}/24"
        assert m["lxc"]["ssh_ip_addr"] == default[m["name"]]
        assert m["lxc"]["customize"]["net.0.link"] == "mcpivg0"


@pytest.fixture
def lxc_vagrant(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of a ``vagrant up`` of LXC containers on a private bridge."""
    problems = lxcbox.missing_prerequisites()
    if problems:
        message = "vagrant-lxc unavailable: " + "; ".join(problems)
        if os.environ.get("CI") or os.environ.get("MCPI_REQUIRE_DEPLOY") == "1":
            pytest.fail(message)
        pytest.skip(message)
    with stage("vagrant-lxc: box, bridge and proxy"):
        lxcbox.up()
    env = {
        **os.environ,
        **QUIET_VAGRANT,
        "VAGRANT_DEFAULT_PROVIDER": "lxc",
        "VAGRANT_DOTFILE_PATH": str(tmp_path / "dot-vagrant"),
        "MCPI_BOX": lxcbox.BOX_NAME,
        "MCPI_SUBNET": lxcbox.SUBNET,
        "MCPI_LXC_BRIDGE": lxcbox.BRIDGE,
        # The control node's part of the playbook writes the hub's config here.
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
    }
    try:
        yield env
    finally:
        vagrant(env, "destroy", "-f", check=False)
        lxcbox.down()


def vagrant(
    env: dict[str, str], *args: str, check: bool = True, timeout: float = 1200
) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryFile("w+") as log:
        result = subprocess.run(
            ["vagrant", *args],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
        )
        log.seek(0)
        output = log.read()
    if check:
        assert result.returncode == 0, f"vagrant {' '.join(args)}:\n{output[-6000:]}"
    return subprocess.CompletedProcess(result.args, result.returncode, output, "")


def lxc_containers() -> set[str]:
    return set(subprocess.run(["lxc-ls"], capture_output=True, text=True).stdout.split())


@pytest.mark.deploy
@pytest.mark.timeout(1800)
def test_vagrant_up_gives_a_cluster_the_hub_runs_on(lxc_vagrant: dict[str, str]) -> None:
    env = lxc_vagrant
    before = lxc_containers()
    with stage("vagrant up (lxc): 3 containers, provisioned by cluster.yml"):
        up = vagrant(env, "up")
    assert "Running provisioner: ansible" in up.stdout
    assert "failed=0" in up.stdout and "unreachable=0" in up.stdout
    hub_config = Path(env["XDG_CONFIG_HOME"]) / "mcpi/hub.toml"
    config = hub_config.read_text()
    assert "amqps://mcpi:" in config and f"@{lxcbox.SUBNET}.10:5671/" in config
    assert "tls_ca = " in config

    # On the host, with no more steps: the hub finds the cluster through its config.
    with stage("mcpi-hub estimate on the vagrant cluster"):
        result = subprocess.run(
            [
                str(Path(sys.executable).parent / "mcpi-hub"),
                "estimate",
                "-n",
                "1e9",
                "--seed",
                "2026",
                "--json",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["mode"] == "cluster" and report["hits"] == count_hits(2026, 0, 10**9)
    assert {h["host"] for h in report["hosts"] if h["chunks"]} == {"broker", "worker1", "worker2"}

    # Vagrant's inventory (recorded in the hub's config) serves `hosts` as well, as its
    # user, vagrant, with sudo for the journal.
    logs = subprocess.run(
        [str(Path(sys.executable).parent / "mcpi-hub"), "hosts", "logs", "-n", "1", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert logs.returncode == 0, logs.stdout + logs.stderr
    assert {h["host"] for h in json.loads(logs.stdout)["hosts"]} == {"broker", "worker1", "worker2"}

    # Destroyed, nothing is left for the next `vagrant up` to trip over: no container,
    # no hub config pointing at a broker that is gone.
    with stage("vagrant destroy"):
        vagrant(env, "destroy", "-f")
    assert lxc_containers() <= before
    assert not hub_config.exists()
