"""The Vagrantfile: valid for Vagrant, and the cluster it defines is the one the
playbook expects (same groups, one provisioner run over all machines, addresses that
the roles will bind to).

`vagrant up` itself needs a box, which cannot be downloaded here; see the README.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
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
    assert ansible["limit"] == "all"
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
