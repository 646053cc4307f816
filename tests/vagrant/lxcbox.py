"""A vagrant-lxc box and a private network for a real ``vagrant up`` on this machine.

No box can be downloaded here, and there is no VirtualBox; but Debian packages
vagrant-lxc, and the deploy test bed already builds a Debian 12 root filesystem with
debootstrap. This module turns that root filesystem into a vagrant-lxc box (format
1.0.0: ``rootfs.tar.gz``, ``lxc-config``, ``metadata.json``) with what any Vagrant box
carries, a ``vagrant`` user with password-less sudo and Vagrant's well-known insecure
key (replaced by a fresh one on the first ``vagrant up``), and sets up what the
containers' network needs: a bridge of their own (no NAT: they reach nothing but each
other, this machine, and, through a filtering proxy, the machine's Debian mirror).

    python -m tests.vagrant.lxcbox up     # box added as mcpi/bookworm-lxc, bridge, proxy
    MCPI_BOX=mcpi/bookworm-lxc MCPI_SUBNET=10.213.48 vagrant up --provider=lxc
    python -m tests.vagrant.lxcbox down

Needs root and Debian's vagrant, vagrant-lxc, lxc and tinyproxy.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from tests.deploy.testbed import (
    _port_open,
    add_bridge,
    base_rootfs,
    missing_tools,
    run,
    start_mirror_proxy,
)

BOX_NAME = "mcpi/bookworm-lxc"
SUBNET = "10.213.48"
BRIDGE = "mcpivg0"
# vagrant-lxc's own choice for a private network's bridge address: .254.
BRIDGE_ADDRESS = f"{SUBNET}.254"
PROXY_PORT = 8898
STATE = Path(os.environ.get("MCPI_VAGRANT_LXC_STATE", "/var/tmp/mcpi-vagrant-lxc"))
REQUIRED_TOOLS = {
    "vagrant": "vagrant",
    "lxc-create": "lxc",
    "tinyproxy": "tinyproxy",
    "debootstrap": "debootstrap",
}
INSECURE_KEY = "keys/vagrant.pub"


def missing_prerequisites() -> list[str]:
    problems = []
    if os.geteuid() != 0:
        problems.append("must run as root (LXC containers, a bridge)")
    problems += missing_tools(REQUIRED_TOOLS)
    if shutil.which("vagrant") and "vagrant-lxc" not in run("vagrant", "plugin", "list").stdout:
        problems.append("the vagrant-lxc plugin is missing (Debian package vagrant-lxc)")
    return problems


def vagrant_insecure_key() -> Path:
    """Vagrant's published insecure public key, as the installed Vagrant ships it."""
    for candidate in sorted(Path("/usr/share").glob(f"**/gems/vagrant-[0-9]*/{INSECURE_KEY}")):
        return candidate
    raise RuntimeError("Vagrant's insecure public key (keys/vagrant.pub) not found")


def build_box(destination: Path) -> Path:
    """A vagrant-lxc box file from the test bed's Debian 12 root filesystem."""
    with tempfile.TemporaryDirectory(dir=destination.parent) as work:
        root = Path(work) / "rootfs"
        run("cp", "-a", "--reflink=auto", str(base_rootfs()), str(root))
        run("chroot", str(root), "useradd", "--create-home", "--shell", "/bin/bash", "vagrant")
        sudoers = root / "etc/sudoers.d/vagrant"
        sudoers.write_text("vagrant ALL=(ALL) NOPASSWD: ALL\n")
        sudoers.chmod(0o440)
        ssh_dir = root / "home/vagrant/.ssh"
        ssh_dir.mkdir(mode=0o700)
        shutil.copy(vagrant_insecure_key(), ssh_dir / "authorized_keys")
        (ssh_dir / "authorized_keys").chmod(0o600)
        run("chroot", str(root), "chown", "-R", "vagrant:vagrant", "/home/vagrant/.ssh")
        # Host keys are made at each machine's first boot, not shared through the box.
        dropin = root / "etc/systemd/system/ssh.service.d"
        dropin.mkdir(parents=True)
        (dropin / "host-keys.conf").write_text(
            "[Service]\nExecStartPre=\n"
            "ExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t\n"
        )
        # Vagrant's Debian guest support restarts the network after setting the host
        # name: with systemd-networkd active that is a no-op restart (it manages no
        # interface here; LXC configured eth0), without it an ifupdown restart that
        # this image cannot do.
        run("chroot", str(root), "systemctl", "enable", "systemd-networkd.service")
        (root / "etc/apt/apt.conf.d/01mcpi-vagrant-proxy").write_text(
            f'Acquire::http::Proxy "http://{BRIDGE_ADDRESS}:{PROXY_PORT}";\n'
        )
        (root / "etc/hosts").write_text("127.0.0.1\tlocalhost\n")
        box = Path(work) / "box"
        box.mkdir()
        # vagrant-lxc unpacks with --strip-components=2: entries are ./rootfs/...
        run("tar", "--numeric-owner", "-czf", str(box / "rootfs.tar.gz"), "-C", work, "./rootfs")
        (box / "lxc-config").write_text(
            "lxc.include = /usr/share/lxc/config/common.conf\n"
            # No AppArmor on this kernel; and systemd runs as init in the container.
            "lxc.apparmor.profile = unconfined\n"
            "lxc.mount.auto = proc:mixed sys:mixed cgroup:mixed\n"
            "lxc.autodev = 1\n"
        )
        (box / "metadata.json").write_text(
            json.dumps(
                {
                    "provider": "lxc",
                    "version": "1.0.0",
                    "built-on": time.strftime("%Y-%m-%d"),
                    "template-opts": {"--strip-components": "2"},
                }
            )
        )
        run("tar", "-czf", str(destination), "-C", str(box), ".")
    return destination


def up() -> None:
    """Bridge, proxy, and the box added to Vagrant (built once, cached in STATE)."""
    STATE.mkdir(parents=True, exist_ok=True)
    # The cached box is this module's: a change to how it is built builds a new one.
    revision = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]
    box = STATE / f"bookworm-lxc-{revision}.box"
    if not box.exists():
        for old in STATE.glob("bookworm-lxc-*.box"):
            old.unlink()
        build_box(box)
    added = STATE / "box-added"
    listed = BOX_NAME in run("vagrant", "box", "list").stdout
    if not listed or not added.exists() or added.read_text() != revision:
        run("vagrant", "box", "add", "--force", "--name", BOX_NAME, str(box))
        added.write_text(revision)
    if run("ip", "link", "show", BRIDGE, check=False).returncode != 0:
        add_bridge(BRIDGE, BRIDGE_ADDRESS)
    _start_proxy()


def down() -> None:
    """Stop the proxy and remove the bridge (the box stays, as any Vagrant box does)."""
    pid_file = STATE / "tinyproxy.pid"
    if pid_file.exists():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid_file.read_text()), 15)
        pid_file.unlink()
    run("ip", "link", "del", BRIDGE, check=False)


def _start_proxy() -> None:
    if _port_open(BRIDGE_ADDRESS, PROXY_PORT):
        return
    proxy = start_mirror_proxy(
        BRIDGE_ADDRESS, PROXY_PORT, f"{SUBNET}.0/24", STATE, STATE / "tinyproxy.log"
    )
    (STATE / "tinyproxy.pid").write_text(str(proxy.pid))


if __name__ == "__main__":
    problems = missing_prerequisites()
    if problems:
        sys.exit("; ".join(problems))
    {"up": up, "down": down}[sys.argv[1]]()
