"""``dataops schedule runner``: create, list, show, rotate-credential and delete through the CLI, with the cloud,
Keystone and the playbook faked at their boundaries; nothing it prints carries the credential's secret."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from orchestrator.cli.main import app
from orchestrator.runners import provision
from orchestrator.usecases import runners as runner_use_cases

from .conftest import InMemoryKeystone, RecordingConfigure, RunnerStackCloud, runner_file


@pytest.fixture
def fakes(monkeypatch, package):
    cloud, keystone, configure = RunnerStackCloud(), InMemoryKeystone(), RecordingConfigure()
    monkeypatch.setattr(runner_use_cases, "open_runner_cloud", lambda name: (cloud, keystone))
    monkeypatch.setattr(runner_use_cases, "runner_package", lambda python_version, cache=None: package)
    monkeypatch.setattr(provision, "run_playbook", configure)
    return cloud, keystone, configure


def invoke(*args: str):
    return CliRunner().invoke(app, ["schedule", "runner", *args])


def test_a_runner_is_created_listed_shown_rotated_and_deleted_without_its_secret_ever_printed(tmp_path, fakes):
    cloud, keystone, configure = fakes
    created = invoke("create", "-f", str(runner_file(tmp_path)))
    assert created.exit_code == 0, created.output
    assert created.stdout.strip().endswith("ops")
    assert "Runner ops ticks as ops-01234567 at 10.44.0.7; credential dataops-runner-ops-" in created.output

    listed = invoke("list")
    assert listed.exit_code == 0 and listed.stdout.split()[:3] == ["ops", "ready", "swift://ops/schedules"]
    shown = json.loads(invoke("show", "ops").stdout)
    assert shown["credential"]["id"] == "cred1" and shown["runner_id"] == "ops-01234567"

    rotated = invoke("rotate-credential", "ops")
    assert rotated.exit_code == 0, rotated.output
    assert "now holds credential dataops-runner-ops-" in rotated.output
    assert "revoked dataops-runner-ops-" in rotated.output
    assert list(keystone.by_id) == ["cred2"]

    deleted = invoke("delete", "ops")
    assert deleted.exit_code == 0, deleted.output
    assert "deleted application credential dataops-runner-ops-" in deleted.output
    assert "Runner ops deleted." in deleted.output
    assert keystone.by_id == {} and cloud.stacks == {} and cloud.keypairs == {}
    assert invoke("list").output.strip() == "No runners."

    printed = created.output + listed.output + json.dumps(shown) + rotated.output + deleted.output
    assert [secret for secret in keystone.secrets() if secret in printed] == []
    assert len(configure.calls) == 2


def test_an_unknown_runner_is_named_with_its_exit_code():
    shown = invoke("show", "ghost")
    assert shown.exit_code == 14
    assert "Error: no runner named 'ghost'" in shown.output


def test_a_malformed_runner_file_is_a_spec_error_at_its_line(tmp_path, fakes):
    created = invoke("create", "-f", str(runner_file(tmp_path, "flavour: big\n")))
    assert created.exit_code == 2
    assert "runner.yaml:6: unknown field 'flavour' (did you mean 'flavor'?)" in created.output
