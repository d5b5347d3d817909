"""Clusters on namespace hosts, for the tests that create them on the control plane: a playbook runner that checks
every host routes through the cluster's own bridge first, and the list of what a deleted cluster left behind."""

from __future__ import annotations

import subprocess

from netns_driver.netns_host import assert_routed_through_bridge, bridge_name, server_namespace

from orchestrator.ansible.playbook import run_playbook
from orchestrator.clusters import provision
from orchestrator.clusters.cloud import cluster_tag
from orchestrator.clusters.state import cluster_state


class RouteCheckedConfigure:
    """Runs the playbook only after every host address is checked to route through the cluster network's bridge;
    remembers which hosts each run was limited to."""

    def __init__(self):
        self.limits: list[str | None] = []

    def __call__(self, playbook, inventory, extravars, limit=None, **kwargs):
        name = next(iter(inventory["all"]["children"]["scheduler"]["hosts"])).removesuffix("-scheduler")
        bridge = bridge_name(cluster_state(name).load_record()["outputs"]["network_id"])
        for group in inventory["all"]["children"].values():
            for host in group["hosts"].values():
                assert_routed_through_bridge(host["ansible_host"], bridge)
        self.limits.append(limit)
        return run_playbook(playbook, inventory, extravars, limit=limit, **kwargs)


def left_behind(conn, name: str, server_ids: list[str], network_id: str) -> dict[str, list]:
    """Everything of cluster ``name`` still on the cloud or on this machine, by kind (all lists empty: nothing)."""
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True).stdout
    return {
        "servers": [s.name for s in conn.compute.servers() if s.name.startswith(name)],
        "ports": [p.id for p in conn.network.ports(tags=[cluster_tag(name)])],
        "floating_ips": [f.id for f in conn.network.ips() if f.description and name in f.description],
        "security_groups": [g.name for g in conn.network.security_groups() if g.name.startswith(name)],
        "keypairs": [k.name for k in conn.compute.keypairs() if k.name == provision.keypair_name(name)],
        "stacks": [s.name for s in conn.orchestration.stacks() if s.name == name and s.status != "DELETE_COMPLETE"],
        "namespaces": [i for i in server_ids if server_namespace(i) in namespaces],
        "bridges": [b for b in [bridge_name(network_id)] if network_id and b in links],
    }
