"""heat_templates/runner.yaml: the spec maps onto exactly its parameters, its security group admits SSH from the
operator's CIDR and nothing else, the floating IP exists only when asked for, and the runner's port carries the tag
its deletion sweeps by. (Heat itself validates it in tests/integration/runners/.)"""

from __future__ import annotations

import pytest
import yaml

from orchestrator.runners.provision import RUNNER_TEMPLATE, TAG_PREFIX
from orchestrator.runners.spec import load_runner_spec

from .conftest import runner_file


@pytest.fixture(scope="module")
def template() -> dict:
    return yaml.safe_load(RUNNER_TEMPLATE.read_text())


def test_the_spec_gives_every_required_parameter_and_only_parameters_the_template_has(tmp_path, template):
    parameters = load_runner_spec(runner_file(tmp_path)).heat_parameters("dataops-runner-ops")
    declared = template["parameters"]
    assert set(parameters) <= set(declared), set(parameters) - set(declared)
    required = {name for name, p in declared.items() if "default" not in p}
    assert required <= set(parameters), required - set(parameters)
    assert all(isinstance(value, str) for value in parameters.values()), "Heat takes parameters as strings"
    assert parameters == {
        "runner_name": "ops", "image": "debian-12", "flavor": "m1.small", "key_name": "dataops-runner-ops",
        "existing_network": "", "private_network_cidr": "10.44.0.0/24", "public_network": "", "floating_ip": "false",
        "operator_cidr": "192.0.2.2/32",
    }


def test_ssh_from_the_operator_is_the_only_way_in(template):
    group = template["resources"]["security_group"]
    assert group["type"] == "OS::Neutron::SecurityGroup"
    assert group["properties"]["rules"] == [{"protocol": "tcp", "port_range_min": 22, "port_range_max": 22,
                                             "remote_ip_prefix": {"get_param": "operator_cidr"}}]
    assert template["resources"]["port"]["properties"]["security_groups"] == [{"get_resource": "security_group"}]


def test_the_floating_ip_exists_only_when_asked_for_on_an_external_network(template):
    floating = template["resources"]["server_floating_ip"]
    assert floating["condition"] == "has_floating_ip"
    assert template["conditions"]["has_floating_ip"] == {
        "and": [{"get_param": "floating_ip"}, {"not": {"equals": [{"get_param": "public_network"}, ""]}}]}
    assert template["parameters"]["floating_ip"]["default"] is False


def test_the_port_is_tagged_with_the_runner_and_the_outputs_are_what_the_use_cases_read(template):
    tags = template["resources"]["port"]["properties"]["tags"]
    assert tags == [{"list_join": ["=", [TAG_PREFIX.rstrip("="), {"get_param": "runner_name"}]]}]
    assert {"address", "public_address", "server_id", "network_id", "security_group_id"} <= set(template["outputs"])


def test_no_credential_passes_through_heat(template):
    """The server has no user data and the template takes no secret: the credential goes over SSH, never to Heat."""
    server = template["resources"]["server"]["properties"]
    assert "user_data" not in server
    secret_words = ("secret", "password", "credential", "token")
    assert not [name for name in template["parameters"] if any(word in name for word in secret_words)]
