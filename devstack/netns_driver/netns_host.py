"""Test hosts made of Linux network namespaces: a bridge on a private subnet, and per host a namespace with its
address on that bridge, a private /opt, /etc and /tmp view, and an sshd that accepts one public key.

Used by the test Nova virt driver (one host per server) and by the playbook tests. Safety rules, enforced here:
the subnet must overlap no route of the machine, the bridge exists before any host, no namespace gets a default
route, nothing enables forwarding or NAT, and :func:`assert_routed_through_bridge` must pass before anything
connects to a host address. Needs root, iproute2, util-linux (unshare, mount) and openssh-server.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

SSHD = "/usr/sbin/sshd"
# Where a host's sshd finds its files inside the host's own mount view (its /etc is private).
HOST_SSH_DIR = "/etc/dataops-sshd"
# Candidate subnets for test networks, tried in order; the first that overlaps no route is used.
CANDIDATE_SUBNETS = [f"10.{second}.{third}.0/24" for second in (213, 214, 215) for third in range(0, 250, 7)]


class NetnsError(RuntimeError):
    """A namespace host could not be created, or an address would not go through our own bridge."""


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(argv, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise NetnsError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


def routed_networks() -> list[ipaddress.IPv4Network]:
    """Return every IPv4 destination of the machine's main routing table except the default route."""
    routes = json.loads(_run("ip", "-j", "-4", "route", "show", "table", "all").stdout or "[]")
    networks = []
    for route in routes:
        dst = route.get("dst", "")
        if dst in ("default", "") or route.get("type") in ("broadcast", "local") and dst.startswith("127."):
            continue
        try:
            networks.append(ipaddress.ip_network(dst, strict=False))
        except ValueError:
            continue
    return networks


def free_subnet(exclude: list[str] = ()) -> ipaddress.IPv4Network:
    """Pick a candidate /24 that overlaps no route of the machine (nor ``exclude``)."""
    taken = routed_networks() + [ipaddress.ip_network(e) for e in exclude]
    for candidate in CANDIDATE_SUBNETS:
        network = ipaddress.ip_network(candidate)
        if not any(network.overlaps(t) for t in taken):
            return network
    raise NetnsError("no candidate test subnet is free of the machine's routes")


def host_name(server_id: str) -> str:
    """The namespace host of a Nova server (its namespace is ``dataops-<this>``)."""
    return server_id.replace("-", "")[:10]


def server_namespace(server_id: str) -> str:
    """The network namespace of a Nova server's host."""
    return f"dataops-{host_name(server_id)}"


def bridge_name(network_id: str) -> str:
    """The bridge of a Neutron network (interface names have at most 15 characters)."""
    return f"dn{network_id.replace('-', '')[:11]}"


def assert_routed_through_bridge(address: str, bridge: str) -> None:
    """Raise unless the kernel would send packets for ``address`` through ``bridge``.

    Raises:
        NetnsError: The route to ``address`` leaves through another device.
    """
    route = json.loads(_run("ip", "-j", "route", "get", address).stdout)[0]
    if route.get("dev") != bridge:
        raise NetnsError(f"refusing to connect to {address}: it routes through {route.get('dev')}, not {bridge}")


@dataclass
class Bridge:
    """A Linux bridge holding the gateway-less test subnet; the machine reaches hosts through it."""

    name: str
    subnet: ipaddress.IPv4Network

    @property
    def address(self) -> str:
        """The machine's own address on the bridge (the subnet's first)."""
        return str(next(self.subnet.hosts()))

    def create(self) -> None:
        """Create the bridge with its address, after checking the subnet overlaps no route."""
        if any(self.subnet.overlaps(n) for n in routed_networks()):
            raise NetnsError(f"subnet {self.subnet} overlaps a route of this machine")
        _run("ip", "link", "add", self.name, "type", "bridge")
        _run("ip", "addr", "add", f"{self.address}/{self.subnet.prefixlen}", "dev", self.name)
        _run("ip", "link", "set", self.name, "up")

    def delete(self) -> None:
        """Delete the bridge (idempotent)."""
        _run("ip", "link", "del", self.name, check=False)


@dataclass
class NetnsHost:
    """One test host: namespace, veth into the bridge, private /opt and /etc, and an sshd.

    Attributes:
        name: Short name (at most 10 characters; interface names are limited to 15).
        address: The host's IPv4 address on the bridge's subnet.
        bridge: The bridge the host is plugged into.
        state_dir: Directory holding the host's private /opt, /etc overlay, sshd config and keys.
        authorized_key: The public key sshd accepts for root.
        relay: (loopback address, ports) of the machine to make reachable inside the host at the same address
            (the cloud's API endpoints), or None.
    """

    name: str
    address: str
    bridge: Bridge
    state_dir: Path
    authorized_key: str
    relay: tuple[str, tuple[int, ...]] | None = None
    sshd: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def namespace(self) -> str:
        """Name of the network namespace."""
        return f"dataops-{self.name}"

    @property
    def _veth(self) -> str:
        return f"vd{self.name}"[:15]

    def create(self, sshd_timeout: float = 10.0) -> None:
        """Create the namespace, plug it into the bridge and start its sshd; wait until sshd listens."""
        if ipaddress.ip_address(self.address) not in self.bridge.subnet:
            raise NetnsError(f"{self.address} is not in the bridge's subnet {self.bridge.subnet}")
        _run("ip", "netns", "add", self.namespace)
        _run("ip", "link", "add", self._veth, "type", "veth", "peer", "name", "eth0", "netns", self.namespace)
        _run("ip", "link", "set", self._veth, "master", self.bridge.name, "up")
        ns = ("ip", "netns", "exec", self.namespace)
        _run(*ns, "ip", "addr", "add", f"{self.address}/{self.bridge.subnet.prefixlen}", "dev", "eth0")
        _run(*ns, "ip", "link", "set", "eth0", "up")
        _run(*ns, "ip", "link", "set", "lo", "up")
        self._prepare_state()
        assert_routed_through_bridge(self.address, self.bridge.name)
        if self.relay:
            self._start_relay()
        self._start_sshd()
        self._wait_for_sshd(sshd_timeout)

    def _start_relay(self) -> None:
        address, ports = self.relay
        log = open(self.state_dir / "relay.log", "ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "netns_driver.relay", self.namespace, address, *map(str, ports)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
        )
        log.close()
        (self.state_dir / "relay.pid").write_text(str(process.pid))

    def _prepare_state(self) -> None:
        for sub in ("opt", "etc.upper", "etc.work", "ssh"):
            (self.state_dir / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(self.state_dir / "ssh", 0o700)
        host_key = self.state_dir / "ssh" / "host_ed25519"
        if not host_key.exists():
            _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key))
        (self.state_dir / "ssh" / "authorized_keys").write_text(self.authorized_key.strip() + "\n")
        os.chmod(self.state_dir / "ssh" / "authorized_keys", 0o600)
        (self.state_dir / "ssh" / "sshd_config").write_text(
            "\n".join(
                [
                    f"ListenAddress {self.address}",
                    "Port 22",
                    f"HostKey {HOST_SSH_DIR}/host_ed25519",
                    f"AuthorizedKeysFile {HOST_SSH_DIR}/authorized_keys",
                    "PermitRootLogin prohibit-password",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "UsePAM no",
                    # The state directory may live under /tmp, whose mode StrictModes rejects.
                    "StrictModes no",
                    f"PidFile {HOST_SSH_DIR}/sshd.pid",
                    "Subsystem sftp internal-sftp",
                    "",
                ]
            )
        )
        Path("/run/sshd").mkdir(exist_ok=True, mode=0o755)

    def _start_sshd(self) -> None:
        state = self.state_dir
        # A private mount namespace: an empty /opt, a copy-on-write /etc and an empty /tmp, so hosts never share
        # installed software or scratch files with each other or with the machine.
        script = (
            f"mount --make-rprivate / && "
            f"mount --bind {state / 'opt'} /opt && "
            f"mount -t overlay overlay -o lowerdir=/etc,upperdir={state / 'etc.upper'},workdir={state / 'etc.work'} /etc && "
            # The sshd files are reached through /etc: the state directory itself may be under the hidden /tmp.
            f"mkdir -p {HOST_SSH_DIR} && mount --bind {state / 'ssh'} {HOST_SSH_DIR} && "
            f"mount -t tmpfs -o mode=1777 tmpfs /tmp && "
            f"echo {self.name} > /etc/hostname && "
            f"exec {SSHD} -D -e -f {HOST_SSH_DIR}/sshd_config"
        )
        log = open(state / "sshd.log", "ab")
        self.sshd = subprocess.Popen(
            ["ip", "netns", "exec", self.namespace, "unshare", "--mount", "--uts", "sh", "-c", f"hostname {self.name} && {script}"],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def _wait_for_sshd(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.sshd.poll() is not None:
                raise NetnsError(f"sshd of {self.name} exited: {(self.state_dir / 'sshd.log').read_text()[-500:]}")
            probe = _run("ip", "netns", "exec", self.namespace, "ss", "-Htln", "sport = :22", check=False)
            if probe.stdout.strip():
                return
            time.sleep(0.1)
        raise NetnsError(f"sshd of {self.name} did not listen within {timeout} s")

    def delete(self) -> None:
        """Stop every process of the namespace, then remove namespace, veth and state (idempotent)."""
        pids = _run("ip", "netns", "pids", self.namespace, check=False).stdout.split()
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
        relay_pid = self.state_dir / "relay.pid"
        if relay_pid.exists():
            try:
                os.killpg(int(relay_pid.read_text()), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        if self.sshd is not None:
            try:
                os.killpg(self.sshd.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.sshd.wait(timeout=10)
        _run("ip", "link", "del", self._veth, check=False)
        _run("ip", "netns", "del", self.namespace, check=False)
        shutil.rmtree(self.state_dir, ignore_errors=True)
