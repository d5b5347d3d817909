"""The inference endpoint template against the real Heat, Nova and Neutron of the CI control plane: every template
validates with Heat itself, and a 2-node endpoint creates and deletes with the plain `openstack stack` CLI, opening
only the serving port to clients and SSH to the operator."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.openstack]

TEMPLATES = Path(__file__).resolve().parents[3] / "heat_templates"
FLAVOR = os.environ.get("DATAOPS_TEST_FLAVOR", "dataops.cpu.small")
IMAGE = os.environ.get("DATAOPS_TEST_IMAGE", "dataops-tiny")



def _files(template: Path) -> dict[str, str]:
    """The nested templates Heat needs beside ``template``, keyed by the name the template uses."""
    return {p.name: p.read_text() for p in TEMPLATES.glob("*.yaml") if p != template}


@pytest.mark.parametrize("name", ["cluster.yaml", "inference.yaml"])
def test_the_template_validates_with_heat_itself(cloud, name):
    template = TEMPLATES / name
    # Heat's own validation (POST /validate), with the nested templates as a stack create sends them.
    response = cloud.orchestration.post(
        "/validate", json={"template": template.read_text(), "files": _files(template)}, raise_exc=False
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["Description"].strip()
    assert all(p.get("Description") for p in result["Parameters"].values())



def test_an_endpoint_stack_creates_and_deletes_with_the_plain_openstack_cli(cloud, keypair, openstack_cli):
    name = f"e{uuid.uuid4().hex[:8]}"

    def stack(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([openstack_cli, "stack", *args], capture_output=True, text=True, timeout=900)

    created = stack(
        "create", "--wait", "-f", "json", "-t", str(TEMPLATES / "inference.yaml"),
        "-e", str(TEMPLATES / "environments" / "inference_floating_ip.yaml"),
        "--parameter", f"endpoint_name={name}", "--parameter", f"image={IMAGE}",
        "--parameter", f"flavor={FLAVOR}", "--parameter", f"key_name={keypair}",
        "--parameter", "node_count=2", "--parameter", "operator_cidr=127.0.0.1/32",
        "--parameter", "client_cidr=127.0.0.0/8", name,
    )
    try:
        assert created.returncode == 0, created.stderr[-2000:]
        outputs = {o["output_key"]: o["output_value"] for o in json.loads(
            stack("show", "-f", "json", name).stdout)["outputs"]}
        nodes = outputs["nodes"]
        assert [n["name"] for n in nodes] == [f"{name}-0", f"{name}-1"]
        assert all(n["public_address"] for n in nodes), nodes
        assert outputs["endpoint_urls"] == [f"https://{n['public_address']}:8000" for n in nodes], "HTTPS by default"
        ports = list(cloud.network.ports(tags=[f"dataops-endpoint={name}"]))
        assert len(ports) == 2
        (group,) = [g for g in cloud.network.security_groups() if g.name == f"{name}-nodes"]
        ingress = sorted((r["port_range_min"], r["remote_ip_prefix"]) for r in group.security_group_rules
                         if r["direction"] == "ingress")
        assert ingress == [(22, "127.0.0.1/32"), (8000, "127.0.0.0/8")]
    finally:
        deleted = stack("delete", "--yes", "--wait", name)
    assert deleted.returncode == 0, deleted.stderr[-2000:]
    assert [s.name for s in cloud.compute.servers() if s.name.startswith(name)] == []
    assert list(cloud.network.ports(tags=[f"dataops-endpoint={name}"])) == []
    assert [g.name for g in cloud.network.security_groups() if g.name.startswith(name)] == []
    assert [f.id for f in cloud.network.ips() if f.port_id in {p.id for p in ports}] == []
