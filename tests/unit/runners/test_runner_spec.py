"""The runner file: validated like every file users write, each mistake named by file, line and field, with the
closest valid name; its defaults keep the runner closed (no floating IP, a credential limited and expiring)."""

from __future__ import annotations

import pytest

from orchestrator.errors import SpecError
from orchestrator.runners.spec import load_runner_spec

from .conftest import runner_file


def test_the_example_runner_file_loads(tmp_path):
    from orchestrator.runners.package import PROJECT_ROOT

    spec = load_runner_spec(PROJECT_ROOT / "examples" / "runners" / "runner.yaml")
    assert spec.store_container == "ops" and spec.containers == ["raw-data"]
    assert spec.credential_ttl_s == 90 * 86400 and spec.every_s == 60


def test_defaults_give_no_floating_ip_and_a_limited_expiring_credential(tmp_path):
    spec = load_runner_spec(runner_file(tmp_path))
    assert spec.floating_ip is False and spec.network.public is None
    assert spec.access_rules is True and spec.credential_roles == ["member"]
    assert spec.credential_ttl == "90d" and spec.every == "60s"
    assert spec.store_container == "ops"


def test_a_misspelt_field_is_named_by_line_with_the_closest_field(tmp_path):
    path = runner_file(tmp_path, "credential_tll: 30d\n")
    with pytest.raises(SpecError) as failure:
        load_runner_spec(path)
    assert str(failure.value).startswith(f"{path}:6: unknown field 'credential_tll' (did you mean 'credential_ttl'?)")


def test_a_store_the_vm_cannot_reach_is_refused_at_its_line(tmp_path):
    path = tmp_path / "runner.yaml"
    path.write_text("name: ops\nimage: debian-12\nflavor: m1.small\nstore: ./.dataops\noperator_cidr: 192.0.2.2/32\n")
    with pytest.raises(SpecError, match=rf"^{path}:4: store: expected swift://CONTAINER\[/PREFIX\]"):
        load_runner_spec(path)


def test_every_mistake_of_a_file_is_reported_at_once_each_at_its_line(tmp_path):
    path = tmp_path / "runner.yaml"
    path.write_text(
        "name: Ops\n"
        "image: debian-12\n"
        "flavor: m1.small\n"
        "store: swift://ops\n"
        "operator_cidr: somewhere\n"
        "every: 5s\n"
        "credential_ttl: forever\n"
        "containers: [raw/data]\n"
    )
    with pytest.raises(SpecError) as failure:
        load_runner_spec(path)
    lines = str(failure.value).splitlines()
    assert [line.split(":")[1] for line in lines] == ["1", "5", "6", "7", "8"], lines
    assert "name: String should match pattern" in lines[0]
    assert "every: expected at least 10s between ticks" in lines[2]
    assert "invalid duration 'forever' for credential_ttl" in lines[3]
    assert "'raw/data' is not a container name" in lines[4]


def test_a_floating_ip_needs_the_external_network(tmp_path):
    path = runner_file(tmp_path, "floating_ip: true\n")
    with pytest.raises(SpecError, match="floating_ip needs network.public"):
        load_runner_spec(path)
    spec = load_runner_spec(runner_file(tmp_path, "floating_ip: true\nnetwork: {public: ext-net}\n"))
    assert spec.heat_parameters("key")["floating_ip"] == "true"


def test_a_credential_shorter_than_an_hour_is_refused(tmp_path):
    with pytest.raises(SpecError, match=r"runner.yaml:6: credential_ttl: expected a lifetime of at least 1h"):
        load_runner_spec(runner_file(tmp_path, "credential_ttl: 30m\n"))


def test_command_line_overrides_replace_the_file_s_fields(tmp_path):
    spec = load_runner_spec(runner_file(tmp_path), {"name": "other", "cloud": None})
    assert spec.name == "other" and spec.cloud is None
