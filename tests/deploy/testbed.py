"""Several real systemd hosts on one machine, for testing the deployment.

Each host is a copy of one Debian 12 root filesystem (built with debootstrap, cached
between runs), booted with ``systemd-nspawn -b`` in a network namespace of its own and
joined to a private bridge. The hosts have no default route: the only things they can
reach are each other, the control node on the bridge address, and a forward proxy
(tinyproxy) on that address that lets them fetch Debian packages from the machine's
own mirror and nowhere else. Ansible and testinfra reach them by SSH with a key the
test bed generates.

As a command, for a person following docs/deploying/trying.md::

    python -m tests.deploy.testbed up     # boot h1 (broker+worker), h2, h3; write an inventory
    python -m tests.deploy.testbed down   # stop them, remove the bridge and namespaces

Needs root, debootstrap, systemd-container (systemd-nspawn), tinyproxy and ssh.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("MCPI_TESTBED_CACHE", "/var/cache/mcpi-testbed"))
STATE = Path(os.environ.get("MCPI_TESTBED_STATE", REPO / ".testbed"))
SUITE = "bookworm"
# What the base image carries beyond minbase: an init, SSH, and what Ansible needs
# on a managed host (python3, python3-apt for the apt module, sudo for become).
BASE_PACKAGES = (
    "systemd,systemd-sysv,dbus,python3,python3-apt,openssh-server,iproute2,sudo,ca-certificates"
)
# A subnet that only exists on the bridge; nothing here is routed anywhere else.
SUBNET = "10.213.47"
BRIDGE = "mcpitb0"
BRIDGE_ADDRESS = f"{SUBNET}.1"
PROXY_PORT = 8899  # not tinyproxy's default, in case its system daemon runs
NETNS_PREFIX = "mcpitb-"
REQUIRED_TOOLS = {
    "debootstrap": "debootstrap",
    "systemd-nspawn": "systemd-container",
    "tinyproxy": "tinyproxy",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "ip": "iproute2",
}

#: (stage, seconds) of everything timed in this process; printed in the test summary.
STAGES: list[tuple[str, float]] = []
#: Measurements the deploy tests record, printed at the end of the pytest run.
RECORDED: list[str] = []


@contextlib.contextmanager
def stage(name: str) -> Iterator[None]:
    started = time.monotonic()
    try:
        yield
    finally:
        STAGES.append((name, time.monotonic() - started))


def run(*argv: str, check: bool = True, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=check, text=True, capture_output=True, **kwargs)  # type: ignore[call-overload, no-any-return]


def missing_prerequisites() -> list[str]:
    """Why the test bed cannot run here (empty when it can)."""
    problems = []
    if os.geteuid() != 0:
        problems.append("must run as root (network namespaces, systemd-nspawn)")
    return problems + missing_tools(REQUIRED_TOOLS)


def missing_tools(tools: dict[str, str]) -> list[str]:
    """One line per command of ``tools`` (command: Debian package) not on the PATH."""
    return [
        f"{tool} missing (Debian package {package})"
        for tool, package in tools.items()
        if shutil.which(tool) is None
    ]


def debian_mirror() -> str:
    """The machine's own Debian mirror: the test bed never names one of its own."""
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.exists():
        for line in sources.read_text().splitlines():
            if line.startswith("URIs:"):
                return line.split()[1]
    legacy = Path("/etc/apt/sources.list")
    if legacy.exists():
        for line in legacy.read_text().splitlines():
            fields = line.split()
            if len(fields) >= 3 and fields[0] == "deb" and "security" not in fields[1]:
                return fields[1]
    raise RuntimeError("no Debian mirror found in /etc/apt/sources.list{,.d/debian.sources}")


def base_rootfs() -> Path:
    """The cached base root filesystem, built with debootstrap when missing."""
    base = CACHE / f"{SUITE}-base"
    stamp = base / ".mcpi-testbed-complete"
    if stamp.exists():
        return base
    with stage("build base root filesystem (debootstrap)"):
        CACHE.mkdir(parents=True, exist_ok=True)
        building = CACHE / f"{SUITE}-building"
        shutil.rmtree(building, ignore_errors=True)
        shutil.rmtree(base, ignore_errors=True)
        mirror = debian_mirror()
        run(
            "debootstrap",
            "--variant=minbase",
            f"--include={BASE_PACKAGES}",
            SUITE,
            str(building),
            mirror,
        )
        _prepare_base(building, mirror)
        (building / stamp.name).write_text(f"{SUITE} from {mirror}\n")
        building.rename(base)
    return base


def _prepare_base(root: Path, mirror: str) -> None:
    """Make the image host-neutral: identity is given per host at copy time."""
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    (root / "etc/machine-id").write_text("")
    (root / "etc/hostname").write_text("localhost\n")
    # Packages come from the machine's own mirror (the security suite too, where the
    # machine uses it), through the proxy on the bridge (set per host).
    (root / "etc/apt/sources.list").unlink(missing_ok=True)
    machine_sources = Path("/etc/apt/sources.list.d/debian.sources")
    if machine_sources.exists():
        shutil.copy(machine_sources, root / "etc/apt/sources.list.d/debian.sources")
    else:
        (root / "etc/apt/sources.list").write_text(f"deb {mirror} {SUITE} main\n")
    # No console login prompts to wait on; sshd is how hosts are reached.
    for unit in ("console-getty.service", "getty@.service"):
        (root / "etc/systemd/system" / unit).unlink(missing_ok=True)
        (root / "etc/systemd/system" / unit).symlink_to("/dev/null")


@dataclass
class Host:
    name: str
    address: str
    root: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def netns(self) -> str:
        return NETNS_PREFIX + self.name

    @property
    def veth(self) -> str:
        return f"tb-{self.name}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class TestBed:
    """Hosts h1..hN on a private bridge; ``h1`` is the broker (and a worker)."""

    __test__ = False  # not a pytest test class

    names: tuple[str, ...] = ("h1", "h2", "h3")
    state: Path = STATE
    hosts: dict[str, Host] = field(default_factory=dict)
    proxy: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        for index, name in enumerate(self.names):
            address = f"{SUBNET}.{11 + index}"
            self.hosts[name] = Host(name, address, self.state / "hosts" / name)

    # --- paths -------------------------------------------------------------------
    @property
    def key(self) -> Path:
        return self.state / "id_ed25519"

    @property
    def ssh_config(self) -> Path:
        return self.state / "ssh_config"

    @property
    def inventory(self) -> Path:
        return self.state / "inventory"

    @property
    def credentials(self) -> Path:
        return self.state / "credentials"

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    # --- lifecycle ---------------------------------------------------------------
    def up(self) -> TestBed:
        problems = missing_prerequisites()
        if problems:
            raise RuntimeError("test bed cannot run: " + "; ".join(problems))
        cleanup(self.state)  # leftovers of a crashed run
        self.logs.mkdir(parents=True, exist_ok=True)
        base = base_rootfs()
        with stage("network: bridge and proxy"):
            self._keys()
            self._bridge()
            self._start_proxy()
        with stage(f"copy root filesystems ({len(self.hosts)} hosts)"):
            for host in self.hosts.values():
                self._copy_root(base, host)
        with stage("boot hosts and wait for SSH"):
            for host in self.hosts.values():
                self._plug(host)
                self.boot(host)
            for host in self.hosts.values():
                self.wait_for_ssh(host)
        self._write_client_config()
        return self

    def down(self) -> None:
        for host in self.hosts.values():
            self.stop(host)
        if self.proxy is not None:
            self.proxy.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proxy.wait(timeout=10)
            self.proxy = None
        cleanup(self.state)

    # --- hosts -------------------------------------------------------------------
    def boot(self, host: Host) -> None:
        log = (self.logs / f"{host.name}.console.log").open("ab")
        host.process = subprocess.Popen(
            [
                "systemd-nspawn",
                "--directory",
                str(host.root),
                "--boot",
                "--register=no",
                "--keep-unit",
                f"--machine={host.name}",
                f"--network-namespace-path=/run/netns/{host.netns}",
                "--console=passive",
                # A real host administers its own network (the firewall role needs it).
                "--capability=CAP_NET_ADMIN",
                "--link-journal=no",
                "--resolv-conf=off",
                "--timezone=off",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self, host: Host, timeout: float = 60) -> None:
        """Shut a host down cleanly (SIGTERM to nspawn asks its systemd to power off)."""
        if host.process is None:
            return
        if host.process.poll() is None:
            host.process.send_signal(signal.SIGTERM)
            try:
                host.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                host.process.kill()
                host.process.wait(timeout=30)
        host.process = None

    def power_off(self, host: Host) -> None:
        """Pull the plug: cut the host's link first, so that not even a FIN or RST gets
        out, then SIGKILL its init (the kernel then kills every process in it)."""
        run("ip", "link", "set", host.veth, "down")
        assert host.process is not None
        init = _children(host.process.pid)
        for pid in init:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        host.process.wait(timeout=60)
        host.process = None

    def cut_link(self, host: Host) -> None:
        """Pull the host's network cable: it keeps running, cut off from everyone."""
        run("ip", "link", "set", host.veth, "down")

    def restore_link(self, host: Host) -> None:
        run("ip", "link", "set", host.veth, "up")

    def wait_for_ssh(self, host: Host, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if host.process is not None and host.process.poll() is not None:
                raise RuntimeError(
                    f"{host.name} exited while booting: see {self.logs / host.name}.console.log"
                )
            if self.ssh(host, "systemctl is-system-running --wait", check=False).returncode in (
                0,
                1,  # "degraded" still boots sshd; the tests check the units they need
            ):
                return
            time.sleep(1)
        raise TimeoutError(f"{host.name} not reachable by SSH after {timeout:.0f}s")

    def ssh(self, host: Host, command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run(
            "ssh",
            "-F",
            str(self.ssh_config),
            "-o",
            "ConnectTimeout=3",
            host.name,
            command,
            check=check,
        )

    # --- set-up steps --------------------------------------------------------------
    def _keys(self) -> None:
        if not self.key.exists():
            run(
                "ssh-keygen",
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "mcpi-testbed",
                "-f",
                str(self.key),
            )
        self._write_ssh_config()

    def _write_ssh_config(self) -> None:
        lines = []
        for host in self.hosts.values():
            lines += [
                f"Host {host.name}",
                f"    HostName {host.address}",
                "    User root",
                f"    IdentityFile {self.key}",
                "    IdentitiesOnly yes",
                "    StrictHostKeyChecking no",
                "    UserKnownHostsFile /dev/null",
                "    LogLevel ERROR",
                "",
            ]
        self.ssh_config.write_text("\n".join(lines))
        self.ssh_config.chmod(0o600)

    def _bridge(self) -> None:
        add_bridge(BRIDGE, BRIDGE_ADDRESS)

    def _start_proxy(self) -> None:
        self.proxy = start_mirror_proxy(
            BRIDGE_ADDRESS, PROXY_PORT, f"{SUBNET}.0/24", self.state, self.logs / "tinyproxy.log"
        )

    def _copy_root(self, base: Path, host: Host) -> None:
        shutil.rmtree(host.root, ignore_errors=True)
        host.root.parent.mkdir(parents=True, exist_ok=True)
        run("cp", "-a", "--reflink=auto", str(base), str(host.root))
        etc = host.root / "etc"
        (etc / "hostname").write_text(f"{host.name}\n")
        # Every host resolves its own name (RabbitMQ's CLI needs that); the playbook
        # does not rely on the test bed for anything else.
        (etc / "hosts").write_text(f"127.0.0.1\tlocalhost\n127.0.1.1\t{host.name}\n")
        (etc / "machine-id").write_text(uuid.uuid4().hex + "\n")
        (etc / "apt/apt.conf.d/01mcpi-testbed-proxy").write_text(
            f'Acquire::http::Proxy "http://{BRIDGE_ADDRESS}:{PROXY_PORT}";\n'
        )
        run("ssh-keygen", "-A", "-f", str(host.root))
        ssh_dir = host.root / "root/.ssh"
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        (ssh_dir / "authorized_keys").write_text(Path(f"{self.key}.pub").read_text())
        (ssh_dir / "authorized_keys").chmod(0o600)

    def _plug(self, host: Host) -> None:
        plug(host.netns, host.veth, host.address)

    def _write_client_config(self) -> None:
        """An inventory for these hosts, laid out as inventory/example is."""
        shutil.rmtree(self.inventory, ignore_errors=True)
        shutil.copytree(REPO / "inventory/example/group_vars", self.inventory / "group_vars")
        broker, *_ = self.hosts.values()
        lines = ["[broker]", f"{broker.name} ansible_host={broker.address}", "", "[workers]"]
        lines += [f"{h.name} ansible_host={h.address}" for h in self.hosts.values()]
        lines += [
            "",
            "[all:vars]",
            "ansible_user=root",
            f"ansible_ssh_private_key_file={self.key}",
            "ansible_ssh_common_args='-o StrictHostKeyChecking=no "
            "-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR'",
            "",
        ]
        (self.inventory / "hosts.ini").write_text("\n".join(lines))
        (self.inventory / "group_vars/all/testbed.yml").write_text(
            "---\n# The test bed turns the optional firewall on, to test it.\n"
            "mcpi_firewall: true\n"
            f"mcpi_credentials_dir: {self.credentials}\n"
        )


def plug(netns: str, veth: str, address: str) -> None:
    """A new network namespace joined to the bridge by a veth pair, with ``address`` on
    its ``eth0`` and no default route."""
    run("ip", "netns", "add", netns)
    run("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns)
    run("ip", "link", "set", veth, "master", BRIDGE, "up")
    inside = ("ip", "netns", "exec", netns, "ip")
    run(*inside, "addr", "add", f"{address}/24", "dev", "eth0")
    run(*inside, "link", "set", "eth0", "up")
    run(*inside, "link", "set", "lo", "up")


def _children(pid: int) -> list[int]:
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            children += [int(c) for c in (task / "children").read_text().split()]
    return children


def add_bridge(name: str, address: str) -> None:
    """A bridge with ``address``/24 on it, up: the private network of a set of test hosts."""
    run("ip", "link", "add", name, "type", "bridge")
    run("ip", "addr", "add", f"{address}/24", "dev", name)
    run("ip", "link", "set", name, "up")


def start_mirror_proxy(
    listen: str, port: int, clients: str, state: Path, log_path: Path
) -> subprocess.Popen[bytes]:
    """tinyproxy on ``listen``:``port`` that lets ``clients`` (a subnet) reach the
    machine's Debian mirror host names and nothing else; its files go in ``state``."""
    hosts = set()
    for source in (
        Path("/etc/apt/sources.list.d/debian.sources"),
        Path("/etc/apt/sources.list"),
    ):
        if source.exists():
            hosts.update(re.findall(r"https?://([^/\s]+)", source.read_text()))
    hosts.add(re.sub(r"^https?://([^/]+).*$", r"\1", debian_mirror()))
    allow = state / "proxy-allow"
    allow.write_text("".join(f"^{re.escape(h)}$\n" for h in sorted(hosts)))
    conf = state / "tinyproxy.conf"
    conf.write_text(
        "User nobody\nGroup nogroup\n"
        f"Port {port}\nListen {listen}\nAllow {clients}\n"
        "Timeout 600\nMaxClients 100\nLogLevel Notice\n"
        f'Filter "{allow}"\nFilterType ere\nFilterDefaultDeny Yes\n'
        "ConnectPort 443\n"
    )
    with log_path.open("ab") as log:
        proxy = subprocess.Popen(
            ["tinyproxy", "-d", "-c", str(conf)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 10
    while not _port_open(listen, port):
        if proxy.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"tinyproxy did not start: see {log_path}")
        time.sleep(0.1)
    return proxy


def _port_open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def cleanup(state: Path = STATE) -> None:
    """Remove every trace of a test bed: nspawn processes, proxy, namespaces, links."""
    marker = str(state)
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            text = b" ".join(argv).decode(errors="replace")
            if marker in text and (
                argv[0].endswith(b"systemd-nspawn") or argv[0].endswith(b"tinyproxy")
            ):
                # A container outlives its nspawn process: SIGKILL its init first (the
                # kernel then kills everything in its PID namespace).
                for pid in [*_children(int(proc.name)), int(proc.name)]:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
    time.sleep(0.5)
    netns = run("ip", "-json", "netns", "list", check=False).stdout.strip() or "[]"
    for entry in json.loads(netns):
        if entry["name"].startswith(NETNS_PREFIX):
            run("ip", "netns", "delete", entry["name"], check=False)
    links = run("ip", "-json", "link", "show", check=False).stdout.strip() or "[]"
    for link in json.loads(links):
        if link["ifname"].startswith("tb-") or link["ifname"] == BRIDGE:
            run("ip", "link", "delete", link["ifname"], check=False)
    shutil.rmtree(state / "hosts", ignore_errors=True)


def main(argv: list[str]) -> int:
    command = argv[0] if argv else ""
    if command == "up":
        bed = TestBed().up()
        print(f"hosts up: {', '.join(f'{h.name} {h.address}' for h in bed.hosts.values())}")
        print(f"inventory: {bed.inventory}   ssh: ssh -F {bed.ssh_config} h1")
        print("stop them with: python -m tests.deploy.testbed down")
        return 0
    if command == "down":
        cleanup()
        return 0
    print("usage: python -m tests.deploy.testbed up|down", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
