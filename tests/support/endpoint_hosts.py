"""Endpoint nodes that are namespace hosts of the CI control plane: nothing is sent to a node before its address is
checked to route through the endpoint network's own bridge."""

from __future__ import annotations

from netns_driver.netns_host import assert_routed_through_bridge, bridge_name

from orchestrator.ansible.playbook import run_playbook
from orchestrator.deploy.state import endpoint_state


def assert_nodes_routed(endpoint: str, addresses) -> None:
    """Every address routes through the bridge of ``endpoint``'s network."""
    bridge = bridge_name(endpoint_state(endpoint).load()["outputs"]["network_id"])
    for address in addresses:
        assert_routed_through_bridge(address, bridge)


class RouteChecked:
    """Runs the playbook only once every host address is checked to route through the endpoint network's bridge."""

    def __init__(self, endpoint: str):
        self.endpoint = endpoint

    def __call__(self, playbook, inventory, extravars, **kwargs):
        assert_nodes_routed(self.endpoint, [host["ansible_host"] for group in inventory["all"]["children"].values()
                                            for host in group["hosts"].values()])
        return run_playbook(playbook, inventory, extravars, **kwargs)
