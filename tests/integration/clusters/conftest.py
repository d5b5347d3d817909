"""Namespace test hosts for the playbook tests: a private bridge and one host per node, torn down afterwards."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from netns_driver.netns_host import Bridge, NetnsHost, assert_routed_through_bridge, free_subnet

ROOT = Path(__file__).resolve().parents[3]


def _missing_prerequisite() -> str | None:
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("/usr/sbin/sshd", shutil.which("ip"), shutil.which("unshare"), shutil.which("start-stop-daemon")):
        if not tool or not Path(tool).exists():
            return "needs iproute2, util-linux, dpkg's start-stop-daemon and openssh-server (apt-get install openssh-server)"
    return None


@pytest.fixture(scope="session")
def ssh_key(tmp_path_factory) -> Path:
    key = tmp_path_factory.mktemp("ssh") / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key


@pytest.fixture(scope="module")
def netns_hosts(request, ssh_key, tmp_path_factory):
    """Start the hosts named by the module's NETNS_HOSTS ({name: role}) and yield {name: NetnsHost}."""
    reason = _missing_prerequisite()
    if reason:
        pytest.skip(reason)
    names = request.module.NETNS_HOSTS
    bridge = Bridge(f"dobr{os.getpid() % 100000}", free_subnet())
    hosts: dict[str, NetnsHost] = {}
    state = tmp_path_factory.mktemp("netns")
    bridge.create()
    try:
        addresses = list(bridge.subnet.hosts())[10:]
        for index, name in enumerate(names):
            host = NetnsHost(
                name=f"{os.getpid() % 10000}{index}",
                address=str(addresses[index]),
                bridge=bridge,
                state_dir=state / name,
                authorized_key=ssh_key.with_suffix(".pub").read_text(),
            )
            hosts[name] = host
            host.create()
            assert_routed_through_bridge(host.address, bridge.name)
        yield hosts
    finally:
        for host in hosts.values():
            host.delete()
        bridge.delete()


@pytest.fixture(scope="module")
def cluster_cloud(netns_compute):
    """The cluster use cases on the test cloud, which boots servers as namespace hosts."""
    from orchestrator.openstack.cluster_cloud import OpenStackClusterCloud

    return OpenStackClusterCloud(netns_compute)


@pytest.fixture(scope="module")
def clusters_dir(tmp_path_factory):
    """A clusters folder of the module's own (``DATAOPS_CLUSTERS_DIR``), for the records and keys its creates write."""
    folder = tmp_path_factory.mktemp("clusters")
    previous = os.environ.get("DATAOPS_CLUSTERS_DIR")
    os.environ["DATAOPS_CLUSTERS_DIR"] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop("DATAOPS_CLUSTERS_DIR")
    else:
        os.environ["DATAOPS_CLUSTERS_DIR"] = previous
