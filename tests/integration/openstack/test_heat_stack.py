"""A Heat stack with a Nova server on a Neutron network, against the real services."""

from __future__ import annotations

import ipaddress
import os

import pytest

pytestmark = [pytest.mark.openstack, pytest.mark.integration]

TIMEOUT = int(os.environ.get("DATAOPS_TEST_STACK_TIMEOUT", "600"))
FLAVOR = os.environ.get("DATAOPS_TEST_FLAVOR", "dataops.cpu.small")
IMAGE = os.environ.get("DATAOPS_TEST_IMAGE", "dataops-tiny")

TEMPLATE = {
    "heat_template_version": "2021-04-16",
    "description": "One server on a private network (integration test).",
    "parameters": {
        "flavor": {"type": "string"},
        "image": {"type": "string"},
        "cidr": {"type": "string", "default": "10.77.0.0/24"},
    },
    "resources": {
        "net": {"type": "OS::Neutron::Net"},
        "subnet": {
            "type": "OS::Neutron::Subnet",
            "properties": {"network": {"get_resource": "net"}, "cidr": {"get_param": "cidr"}},
        },
        "server": {
            "type": "OS::Nova::Server",
            "depends_on": "subnet",
            "properties": {
                "flavor": {"get_param": "flavor"},
                "image": {"get_param": "image"},
                "networks": [{"network": {"get_resource": "net"}}],
                "user_data_format": "RAW",
            },
        },
    },
    "outputs": {
        "address": {"description": "The server's fixed IP.", "value": {"get_attr": ["server", "first_address"]}},
        "server_id": {"description": "The server's id.", "value": {"get_resource": "server"}},
    },
}


def test_stack_with_a_server_on_a_network_reaches_create_complete_and_deletes_cleanly(cloud, unique_name):
    orchestration = cloud.orchestration
    stack = orchestration.create_stack(
        name=unique_name, template=TEMPLATE, parameters={"flavor": FLAVOR, "image": IMAGE}, timeout_mins=10
    )
    try:
        stack = orchestration.wait_for_status(
            stack, status="CREATE_COMPLETE", failures=["CREATE_FAILED"], interval=2, wait=TIMEOUT
        )
        outputs = {o["output_key"]: o["output_value"] for o in orchestration.get_stack(stack.id).outputs}
        assert ipaddress.ip_address(outputs["address"]) in ipaddress.ip_network("10.77.0.0/24")
        server = cloud.compute.get_server(outputs["server_id"])
        assert server.status == "ACTIVE"
        assert server.flavor.original_name == FLAVOR
    finally:
        orchestration.delete_stack(stack, ignore_missing=True)
        orchestration.wait_for_delete(stack, interval=2, wait=TIMEOUT)
    deleted = orchestration.find_stack(stack.id, ignore_missing=True)
    assert deleted is None or deleted.status == "DELETE_COMPLETE"
    assert cloud.compute.find_server(outputs["server_id"], ignore_missing=True) is None
    assert cloud.network.find_network(unique_name, ignore_missing=True) is None
