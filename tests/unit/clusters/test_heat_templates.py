"""The Heat templates are static HOT files in which every parameter is described and constrained, every output is
described, worker groups scale down selectively, and environment files only switch optional parts off."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

TEMPLATES = Path(__file__).resolve().parents[3] / "heat_templates"
TEMPLATE_FILES = sorted(TEMPLATES.glob("*.yaml"))
ENVIRONMENT_FILES = sorted((TEMPLATES / "environments").glob("*.yaml"))


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def test_the_cluster_and_node_templates_exist():
    assert {p.name for p in TEMPLATE_FILES} >= {"cluster.yaml", "node.yaml"}


@pytest.mark.parametrize("path", TEMPLATE_FILES, ids=lambda p: p.name)
def test_every_template_is_hot_2021_04_16_with_a_description(path):
    template = _load(path)
    assert str(template["heat_template_version"]) == "2021-04-16", f"{path.name}: expected HOT 2021-04-16"
    assert template.get("description", "").strip(), f"{path.name}: template has no description"


@pytest.mark.parametrize("path", TEMPLATE_FILES, ids=lambda p: p.name)
def test_every_parameter_is_described_and_constrained(path):
    for name, parameter in _load(path)["parameters"].items():
        assert parameter.get("description", "").strip(), f"{path.name}: parameter {name} has no description"
        constraints = parameter.get("constraints") or []
        assert constraints, f"{path.name}: parameter {name} has no constraints"
        for constraint in constraints:
            assert constraint.get("description"), f"{path.name}: a constraint of {name} has no description"


@pytest.mark.parametrize("path", TEMPLATE_FILES, ids=lambda p: p.name)
def test_every_output_is_described(path):
    for name, output in _load(path)["outputs"].items():
        assert output.get("description", "").strip(), f"{path.name}: output {name} has no description"


def test_worker_groups_can_be_zero_and_remove_named_members_first():
    template = _load(TEMPLATES / "cluster.yaml")
    for group, count_parameter, removal_parameter in [
        ("workers", "worker_count", "worker_removal_list"),
        ("gpu_workers", "gpu_worker_count", "gpu_worker_removal_list"),
    ]:
        resource = template["resources"][group]
        assert resource["type"] == "OS::Heat::ResourceGroup"
        assert resource["properties"]["count"] == {"get_param": count_parameter}
        assert resource["properties"]["removal_policies"] == [{"resource_list": {"get_param": removal_parameter}}]
        (count_range,) = [c["range"] for c in template["parameters"][count_parameter]["constraints"] if "range" in c]
        assert count_range["min"] == 0


def test_dask_ports_are_open_only_to_cluster_members_and_ssh_only_to_the_operator():
    rules = _load(TEMPLATES / "cluster.yaml")["resources"]["security_group"]["properties"]["rules"]
    for rule in rules:
        from_operator = rule.get("remote_ip_prefix") == {"get_param": "operator_cidr"}
        from_members = rule.get("remote_mode") == "remote_group_id" and "remote_group_id" not in rule
        assert from_operator or from_members, f"rule open to the world: {rule}"
        if from_operator:
            assert rule["port_range_min"] in (22, {"get_param": "dashboard_port"}), f"operator may reach only SSH and dashboard: {rule}"


def test_workers_spread_with_soft_anti_affinity():
    group = _load(TEMPLATES / "cluster.yaml")["resources"]["server_group"]
    assert group["type"] == "OS::Nova::ServerGroup"
    assert group["properties"]["policies"] == ["soft-anti-affinity"]


def test_outputs_give_scheduler_address_dashboard_and_every_node():
    outputs = _load(TEMPLATES / "cluster.yaml")["outputs"]
    assert {"scheduler_address", "scheduler_public_address", "scheduler_url", "dashboard_url", "nodes"} <= set(outputs)


@pytest.mark.parametrize("path", ENVIRONMENT_FILES, ids=lambda p: p.name)
def test_environment_files_map_only_existing_resources_of_the_cluster_template(path):
    template = _load(TEMPLATES / "cluster.yaml")
    environment = _load(path)
    assert set(environment) <= {"resource_registry", "parameter_defaults", "parameters"}, f"{path.name}: unknown sections"
    for resource_name, mapping in environment.get("resource_registry", {}).get("resources", {}).items():
        assert resource_name in template["resources"], f"{path.name}: no resource {resource_name} in cluster.yaml"
        ((original, replacement),) = mapping.items()
        assert original == template["resources"][resource_name]["type"], f"{path.name}: {resource_name} type mismatch"
        assert replacement in (original, "OS::Heat::None"), f"{path.name}: may only switch {resource_name} off"


def test_there_is_an_environment_switching_the_floating_ip_off():
    names = {p.name for p in ENVIRONMENT_FILES}
    assert "no_floating_ip.yaml" in names


def test_templates_and_playbooks_pass_yamllint():
    from yamllint import linter
    from yamllint.config import YamlLintConfig

    root = TEMPLATES.parent
    config = YamlLintConfig(file=str(root / ".yamllint.yaml"))
    problems = []
    for path in sorted([*TEMPLATES.rglob("*.yaml"), *(root / "playbooks").rglob("*.yml")]):
        problems += [f"{path.relative_to(root)}:{p.line}: {p.message}" for p in linter.run(path.read_text(), config)]
    assert problems == [], "\n".join(problems)
