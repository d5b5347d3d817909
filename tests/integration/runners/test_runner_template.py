"""heat_templates/runner.yaml against the real Heat, Nova and Neutron of the CI control plane: it validates with Heat
itself, and a runner with a floating IP creates and deletes with the plain `openstack stack` CLI, its security group
admitting SSH from the operator's CIDR and nothing else."""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import pytest

from orchestrator.runners.provision import RUNNER_TEMPLATE, TAG_PREFIX

pytestmark = [pytest.mark.integration, pytest.mark.openstack]

FLAVOR = os.environ.get("DATAOPS_TEST_FLAVOR", "dataops.cpu.small")
IMAGE = os.environ.get("DATAOPS_TEST_IMAGE", "dataops-tiny")



@pytest.mark.parametrize("parameters", [{}, {"floating_ip": "true", "public_network": "public"}],
                         ids=["private", "floating-ip"])
def test_the_template_validates_with_heat_itself(cloud, parameters):
    response = cloud.orchestration.post(
        "/validate", json={"template": RUNNER_TEMPLATE.read_text(), "parameters": parameters}, raise_exc=False)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["Description"].strip()
    assert all(p.get("Description") for p in result["Parameters"].values())



def test_a_runner_stack_creates_and_deletes_with_the_plain_openstack_cli(cloud, keypair, openstack_cli):
    from netns_driver.netns_host import free_subnet

    name = f"r{uuid.uuid4().hex[:8]}"

    def stack(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([openstack_cli, "stack", *args], capture_output=True, text=True, timeout=900)

    created = stack(
        "create", "--wait", "-f", "json", "-t", str(RUNNER_TEMPLATE),
        "--parameter", f"runner_name={name}", "--parameter", f"image={IMAGE}", "--parameter", f"flavor={FLAVOR}",
        "--parameter", f"key_name={keypair}", "--parameter", f"private_network_cidr={free_subnet()}",
        "--parameter", "public_network=public", "--parameter", "floating_ip=true",
        "--parameter", "operator_cidr=127.0.0.1/32", f"runner-{name}",
    )
    try:
        assert created.returncode == 0, created.stderr[-2000:]
        outputs = {o["output_key"]: o["output_value"] for o in json.loads(
            stack("show", "-f", "json", f"runner-{name}").stdout)["outputs"]}
        assert outputs["name"] == f"runner-{name}" and outputs["address"] and outputs["public_address"]
        (port,) = cloud.network.ports(tags=[f"{TAG_PREFIX}{name}"])
        assert [f.floating_ip_address for f in cloud.network.ips(port_id=port.id)] == [outputs["public_address"]]
        (group,) = [g for g in cloud.network.security_groups() if g.name == f"runner-{name}-ssh"]
        ingress = [(r["protocol"], r["port_range_min"], r["port_range_max"], r["remote_ip_prefix"])
                   for r in group.security_group_rules if r["direction"] == "ingress"]
        assert ingress == [("tcp", 22, 22, "127.0.0.1/32")], "SSH from the operator and nothing else"
    finally:
        deleted = stack("delete", "--yes", "--wait", f"runner-{name}")
    assert deleted.returncode == 0, deleted.stderr[-2000:]
    assert [s.name for s in cloud.compute.servers() if s.name == f"runner-{name}"] == []
    assert list(cloud.network.ports(tags=[f"{TAG_PREFIX}{name}"])) == []
    assert [g.name for g in cloud.network.security_groups() if g.name.startswith(f"runner-{name}")] == []
