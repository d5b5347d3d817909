"""A Nova virt driver for CI: Nova's fake driver, plus a real host per server built from a network namespace.

Each spawned server gets a namespace with its Neutron fixed IP on a bridge for its network, a private /opt and
/etc, and an sshd that accepts the server's key pair; deleting the server removes all of it, and the bridge
goes with its last host. Select it with ``compute_driver = netns_driver.driver.NetnsDriver`` once this
directory is installed into Nova's environment (``pip install devstack/netns_driver``).
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
from pathlib import Path

from nova.virt import fake
from oslo_config import cfg
from oslo_log import log as logging

from netns_driver.netns_host import Bridge, NetnsHost, bridge_name, host_name

LOG = logging.getLogger(__name__)
CONF = cfg.CONF


def _first_fixed_ip(network_info) -> tuple[str, str, str] | None:
    """(network id, subnet CIDR, address) of the server's first IPv4 fixed IP, or None without one."""
    for vif in network_info or []:
        network = vif["network"]
        for subnet in network["subnets"]:
            for ip in subnet["ips"]:
                if ipaddress.ip_address(ip["address"]).version == 4:
                    return network["id"], subnet["cidr"], ip["address"]
    return None


class NetnsDriver(fake.FakeDriverWithoutFakeNodes):
    """The fake driver, with a namespace host behind every server that has a fixed IP."""

    def get_available_resource(self, nodename):
        resources = super().get_available_resource(nodename)
        # Lets tests (and operators) see from the hypervisor list that servers here are real hosts.
        resources["hypervisor_type"] = "netns"
        return resources

    def _netns_state_dir(self, instance) -> Path:
        return Path(CONF.state_path) / "netns-hosts" / instance.uuid

    def _netns_host(self, instance, bridge: Bridge, address: str) -> NetnsHost:
        return NetnsHost(
            relay=_relay_from_environment(),
            name=host_name(instance.uuid),
            address=address,
            bridge=bridge,
            state_dir=self._netns_state_dir(instance),
            authorized_key=instance.key_data or "",
        )

    def spawn(self, context, instance, image_meta, injected_files, admin_password, allocations,
              network_info=None, block_device_info=None, power_on=True, accel_info=None):
        super().spawn(context, instance, image_meta, injected_files, admin_password, allocations,
                      network_info=network_info, block_device_info=block_device_info, power_on=power_on,
                      accel_info=accel_info)
        fixed = _first_fixed_ip(network_info)
        if fixed is None or not instance.key_data:
            LOG.info("netns driver: server %s has no fixed IPv4 or no key pair; no host created", instance.uuid)
            return
        network_id, cidr, address = fixed
        bridge = Bridge(bridge_name(network_id), ipaddress.ip_network(cidr))
        if subprocess.run(["ip", "link", "show", bridge.name], capture_output=True).returncode != 0:
            # Bridge.create refuses a subnet that overlaps any route of the machine.
            bridge.create()
        host = self._netns_host(instance, bridge, address)
        try:
            host.create()
        except Exception:
            host.delete()
            _delete_if_empty(bridge)
            raise
        # Keep what delete needs, in case nova-compute restarts in between.
        (host.state_dir / "host.json").write_text(
            json.dumps({"name": host.name, "bridge": bridge.name, "cidr": cidr, "address": address}))
        LOG.info("netns driver: server %s is host %s at %s on %s", instance.uuid, host.namespace, address, bridge.name)

    def destroy(self, context, instance, network_info, block_device_info=None, destroy_disks=True,
                destroy_secrets=True):
        state_file = self._netns_state_dir(instance) / "host.json"
        if state_file.exists():
            saved = json.loads(state_file.read_text())
            bridge = Bridge(saved["bridge"], ipaddress.ip_network(saved["cidr"]))
            self._netns_host(instance, bridge, saved["address"]).delete()
            _delete_if_empty(bridge)
        elif (fixed := _first_fixed_ip(network_info)) is not None:
            # A spawn that failed half-way may have left the network's bridge behind.
            _delete_if_empty(Bridge(bridge_name(fixed[0]), ipaddress.ip_network(fixed[1])))
        super().destroy(context, instance, network_info, block_device_info=block_device_info,
                        destroy_disks=destroy_disks, destroy_secrets=destroy_secrets)


def _relay_from_environment() -> tuple[str, tuple[int, ...]] | None:
    """``DATAOPS_NETNS_RELAY=ADDRESS:PORT,PORT``: the cloud's endpoints every host reaches at the same address."""
    value = os.environ.get("DATAOPS_NETNS_RELAY", "")
    if not value:
        return None
    address, _, ports = value.rpartition(":")
    return address, tuple(int(p) for p in ports.split(","))


def _delete_if_empty(bridge: Bridge) -> None:
    """Delete ``bridge`` once no host is plugged into it (it goes with its network's last server)."""
    members = subprocess.run(["ip", "-br", "link", "show", "master", bridge.name], capture_output=True, text=True)
    if members.returncode == 0 and not members.stdout.strip():
        bridge.delete()
