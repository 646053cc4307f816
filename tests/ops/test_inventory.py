"""The inventory behind ``mcpi-hub hosts``: read with the real ``ansible-inventory``.

Operations over SSH (state, logs, restart, run, drain) are tested on the systemd test
bed (tests/deploy); here, everything that needs no SSH: parsing, selection and the
command line's answers to bad input.
"""

from __future__ import annotations

import io
import json
import shutil
import sys
from pathlib import Path

import pytest

from mcpi.cli import main
from mcpi.errors import ExitStatus
from mcpi.ops.inventory import InventoryError, load_inventory, parse_inventory, select, ssh_options

needs_ansible = pytest.mark.skipif(
    shutil.which("ansible-inventory") is None
    and not (Path(sys.executable).parent / "ansible-inventory").exists(),
    reason="ansible-inventory is in the deploy extra",
)

INVENTORY = """\
[broker]
b1 ansible_host=10.0.0.1

[workers]
b1 ansible_host=10.0.0.1
w1 ansible_host=10.0.0.2 ansible_port=2222 ansible_user=lab
w2 mcpi_worker_service=mcpi-worker-gpu

[all:vars]
ansible_ssh_common_args='-o StrictHostKeyChecking=no -oUserKnownHostsFile=/dev/null'
"""


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    path = tmp_path / "hosts.ini"
    path.write_text(INVENTORY)
    return path


def run(args: list[str], tmp_path: Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    env = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    status = main(args, env, out, err)
    return status, out.getvalue(), err.getvalue()


def test_parse_resolves_nested_groups_and_connection_variables() -> None:
    listed = {
        "_meta": {
            "hostvars": {
                "a": {"ansible_host": "10.1.1.1", "ansible_user": "ops"},
                "b": {"ansible_ssh_port": "2200", "ansible_ssh_private_key_file": "/k"},
            }
        },
        "all": {"children": ["ungrouped", "cluster"]},
        "cluster": {"children": ["broker", "workers"]},
        "broker": {"hosts": ["a"]},
        "workers": {"hosts": ["a", "b"]},
        "ungrouped": {},
    }
    a, b = parse_inventory(listed)
    assert (a.name, a.address, a.user, a.port) == ("a", "10.1.1.1", "ops", 22)
    assert set(a.groups) == {"cluster", "broker", "workers"}
    assert (b.address, b.port, b.key_file) == ("b", 2200, "/k")
    assert "broker" not in b.groups and "workers" in b.groups


def test_ssh_options_are_read_in_both_spellings() -> None:
    assert ssh_options("-o A=1 -oB=2 -v -o NoValue") == (("A", "1"), ("B", "2"))


def test_a_non_numeric_port_is_an_inventory_error() -> None:
    with pytest.raises(InventoryError, match="ansible_port is not a number"):
        parse_inventory(
            {"_meta": {"hostvars": {"x": {"ansible_port": "ssh"}}}, "all": {"hosts": ["x"]}}
        )


@needs_ansible
def test_load_reads_an_ini_inventory_through_ansible(inventory: Path) -> None:
    hosts = {h.name: h for h in load_inventory(inventory)}
    assert list(hosts) == ["b1", "w1", "w2"]
    assert hosts["b1"].groups == ("broker", "workers")
    assert (hosts["w1"].address, hosts["w1"].port, hosts["w1"].user) == ("10.0.0.2", 2222, "lab")
    assert hosts["w2"].service == "mcpi-worker-gpu"
    assert dict(hosts["w1"].ssh_options)["UserKnownHostsFile"] == "/dev/null"


@needs_ansible
def test_select_narrows_to_a_group_and_names(inventory: Path) -> None:
    hosts = load_inventory(inventory)
    assert [h.name for h in select(hosts, "broker", None)] == ["b1"]
    assert [h.name for h in select(hosts, "workers", ["w2", "b1"])] == ["b1", "w2"]
    with pytest.raises(InventoryError, match="w9: not in group 'workers'"):
        select(hosts, "workers", ["w9"])
    with pytest.raises(InventoryError, match="no host in group 'gpus'"):
        select(hosts, "gpus", None)


@needs_ansible
def test_hosts_list_needs_no_ssh(inventory: Path, tmp_path: Path) -> None:
    status, out, err = run(["hosts", "list", "-i", str(inventory)], tmp_path)
    assert status == ExitStatus.OK, err
    assert "b1    10.0.0.1  broker,workers" in out and "w2" in out
    status, out, _ = run(["hosts", "list", "-i", str(inventory), "--json"], tmp_path)
    listed = json.loads(out)
    assert listed["ok"] and [h["host"] for h in listed["hosts"]] == ["b1", "w1", "w2"]


@needs_ansible
def test_the_inventory_can_come_from_the_environment(inventory: Path, tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    env = {"HOME": str(tmp_path), "MCPI_INVENTORY": str(inventory)}
    assert main(["hosts", "list", "--group", "broker"], env, out, err) == ExitStatus.OK, err
    assert out.getvalue().count("10.0.0.") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["hosts"], "hosts needs an action"),
        (["hosts", "state"], "no inventory"),
        (["hosts", "list", "-i", "/nonexistent/inv"], "does not exist"),
        (["hosts", "drain", "-i", "{inv}"], "drain takes the hosts to drain"),
        (["hosts", "run", "-i", "{inv}"], "hosts run needs a command"),
        (["hosts", "state", "-i", "{inv}", "--on", "w9"], "w9: not in group 'workers'"),
        (["hosts", "state", "-i", "{inv}", "--on", ","], "expected host names"),
        (["hosts", "logs", "-i", "{inv}", "-n", "0"], "lines"),
        (["hosts", "list", "-i", "{bad}"], "ansible-inventory could not read"),
    ],
)
@needs_ansible
def test_bad_hosts_input_gets_one_line(
    args: list[str], message: str, inventory: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("all: [this is: not an inventory\n")
    args = [a.format(inv=inventory, bad=bad) for a in args]
    status, out, err = run(args, tmp_path)
    assert status == ExitStatus.USAGE, (out, err)
    assert out == ""
    last = err.strip().splitlines()[-1]
    assert last.startswith("mcpi-hub: error: ") and message in last, err
    assert "Traceback" not in err
