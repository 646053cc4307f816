"""The cluster's hosts, read from the same Ansible inventory the playbooks use.

``ansible-inventory --list`` resolves every inventory format, group_vars and host_vars
into one JSON document; :func:`parse_inventory` (pure) turns it into the connection
details ``mcpi-hub hosts`` needs: address, port, user, key, and the groups a host is in.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Seconds ``ansible-inventory`` may take (a dynamic inventory may query a cloud).
INVENTORY_SECONDS = 60


class InventoryError(ValueError):
    """The inventory cannot be read, or names no such host or group."""


@dataclass(frozen=True)
class InventoryHost:
    name: str
    address: str
    groups: tuple[str, ...]
    user: str | None = None
    port: int = 22
    key_file: str | None = None
    #: Extra ssh options the inventory gives (``-o Name=value`` pairs).
    ssh_options: tuple[tuple[str, str], ...] = ()
    become_password: str | None = None
    #: The worker's systemd unit (the mcpi_worker role's ``mcpi_worker_service``).
    service: str | None = None


def parse_inventory(data: Mapping[str, Any]) -> list[InventoryHost]:
    """Hosts of an ``ansible-inventory --list`` document, in inventory order."""
    hostvars = data.get("_meta", {}).get("hostvars", {})
    groups_of: dict[str, list[str]] = {}

    def walk(group: str, seen: frozenset[str]) -> list[str]:
        entry = data.get(group, {})
        hosts = list(entry.get("hosts", []))
        for child in entry.get("children", []):
            if child not in seen:
                hosts += walk(child, seen | {child})
        return hosts

    order: list[str] = []
    for group in data:
        if group == "_meta":
            continue
        for host in walk(group, frozenset({group})):
            if host not in order:
                order.append(host)
            if group not in ("all", "ungrouped") and group not in groups_of.setdefault(host, []):
                groups_of[host].append(group)
    return [_host(name, hostvars.get(name, {}), groups_of.get(name, [])) for name in order]


def _host(name: str, variables: Mapping[str, Any], groups: list[str]) -> InventoryHost:
    try:
        port = int(variables.get("ansible_port") or variables.get("ansible_ssh_port") or 22)
    except (TypeError, ValueError):
        raise InventoryError(f"host {name}: ansible_port is not a number") from None
    return InventoryHost(
        name=name,
        address=str(variables.get("ansible_host") or name),
        groups=tuple(groups),
        user=variables.get("ansible_user") or variables.get("ansible_ssh_user"),
        port=port,
        key_file=variables.get("ansible_ssh_private_key_file"),
        ssh_options=ssh_options(
            " ".join(
                str(variables.get(k) or "")
                for k in ("ansible_ssh_common_args", "ansible_ssh_extra_args")
            )
        ),
        become_password=variables.get("ansible_become_password"),
        service=variables.get("mcpi_worker_service"),
    )


def ssh_options(arguments: str) -> tuple[tuple[str, str], ...]:
    """``-o Name=value`` pairs of an ssh argument string (other arguments are ignored)."""
    words = shlex.split(arguments)
    options = []
    for index, word in enumerate(words):
        following = words[index + 1] if index + 1 < len(words) else ""
        option = word[2:] if word.startswith("-o") and len(word) > 2 else None
        if word == "-o":
            option = following
        if option and "=" in option:
            key, _, value = option.partition("=")
            options.append((key.strip(), value.strip()))
    return tuple(options)


def select(
    hosts: list[InventoryHost], group: str | None, names: list[str] | None
) -> list[InventoryHost]:
    """Hosts of ``group`` (all if None), narrowed to ``names`` if given."""
    chosen = hosts if group in (None, "all") else [h for h in hosts if group in h.groups]
    if group not in (None, "all") and not chosen:
        raise InventoryError(f"the inventory has no host in group {group!r}")
    if names:
        known = {h.name for h in chosen}
        unknown = [n for n in names if n not in known]
        if unknown:
            where = f"group {group!r}" if group not in (None, "all") else "the inventory"
            raise InventoryError(f"{', '.join(unknown)}: not in {where}")
        chosen = [h for h in chosen if h.name in names]
    return chosen


def load_inventory(path: Path) -> list[InventoryHost]:
    """Every host of the Ansible inventory at ``path``, through ``ansible-inventory``."""
    if not path.exists():
        raise InventoryError(f"inventory {path} does not exist")
    command = shutil.which("ansible-inventory") or str(
        Path(sys.executable).parent / "ansible-inventory"
    )
    if not Path(command).exists():
        raise InventoryError("ansible-inventory not found: pip install 'mcpi[deploy]'")
    try:
        done = subprocess.run(
            [command, "-i", str(path), "--list"],
            # Without this, a file no inventory plugin can parse is only a warning
            # and an empty inventory; the user should hear why.
            env={**os.environ, "ANSIBLE_INVENTORY_UNPARSED_FAILED": "true"},
            capture_output=True,
            text=True,
            timeout=INVENTORY_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise InventoryError(
            f"ansible-inventory took over {INVENTORY_SECONDS}s on {path}"
        ) from None
    if done.returncode != 0:
        reason = " ".join((done.stderr.strip().splitlines() or ["failed"])[-1].split())
        reason = reason.removeprefix("[ERROR]: ").removeprefix("ERROR! ")
        raise InventoryError(f"ansible-inventory could not read {path}: {reason}")
    try:
        hosts = parse_inventory(json.loads(done.stdout))
    except ValueError as exc:
        raise InventoryError(f"ansible-inventory gave no JSON for {path}: {exc}") from None
    if not hosts:
        raise InventoryError(f"inventory {path} has no hosts")
    return hosts
