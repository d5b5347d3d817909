"""``dataops cluster`` verbs: bad cluster files name file, line and field; unknown clusters are reported with
their own exit code; create, list, show and delete work end to end against an in-memory cloud."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from typer.testing import CliRunner

from support.fake_cloud import InMemoryCloud

from orchestrator.ansible.playbook import PlaybookResult
from orchestrator.artifacts.local import LocalStore
from orchestrator.artifacts.records import SharedRecords
from orchestrator.cli.main import app
from orchestrator.clusters import provision
from orchestrator.usecases import clusters as cluster_use_cases

CLUSTER_FILE = """\
name: ignored
image: debian-12
scheduler: {flavor: m1.small}
workers:
  flavor: m1.small
  count: 2
network: {public: public}
operator_cidr: 192.0.2.2/32
"""


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("DATAOPS_CLUSTERS_DIR", str(tmp_path / "clusters"))
    cloud = InMemoryCloud()
    monkeypatch.setattr(cluster_use_cases, "open_cloud", lambda name: cloud)
    # The cloud's shared records: a folder standing in for its private container.
    cloud.records = SharedRecords(LocalStore(tmp_path / "records-container"), "clusters")
    monkeypatch.setattr(cluster_use_cases, "open_records", lambda name: cloud.records)
    monkeypatch.setattr(provision, "run_playbook", lambda *a, **k: PlaybookResult())
    # create_cluster binds its configure default at import: route it through the patched runner.
    original = provision.create_cluster
    monkeypatch.setattr(provision, "create_cluster", lambda *a, **k: original(*a, configure=lambda *x, **y: PlaybookResult(), **k))
    return cloud


def _write(tmp_path, text):
    path = tmp_path / "cluster.yaml"
    path.write_text(text)
    return path


def test_create_list_show_delete_round_trip(tmp_path, isolated):
    runner = CliRunner()
    created = runner.invoke(app, ["cluster", "create", "demo", "-f", str(_write(tmp_path, CLUSTER_FILE)), "--ttl", "8h"])
    assert created.exit_code == 0, created.output
    assert "Cluster demo ready: 3 nodes" in created.output
    listed = runner.invoke(app, ["cluster", "list", "--json"])
    rows = json.loads(listed.stdout)
    assert [(r["name"], r["status"], r["workers"], r["ttl"]) for r in rows] == [("demo", "ready", 2, "8h")]
    shown = json.loads(runner.invoke(app, ["cluster", "show", "demo"]).stdout)
    assert [n["role"] for n in shown["nodes"]] == ["scheduler", "worker", "worker"]
    assert runner.invoke(app, ["cluster", "delete", "demo"]).exit_code == 0
    assert isolated.stacks == {} and isolated.keypairs == {}
    again = runner.invoke(app, ["cluster", "delete", "demo"])
    assert again.exit_code == 0 and "Cluster demo deleted." in again.output


def test_a_bad_cluster_file_names_file_line_and_field(tmp_path):
    path = _write(tmp_path, CLUSTER_FILE.replace("count: 2", "count: many"))
    result = CliRunner().invoke(app, ["cluster", "create", "demo", "-f", str(path)])
    assert result.exit_code == 2
    # The console wraps long lines: compare with whitespace collapsed.
    assert f"{path}:6: workers.count: Input should be a valid integer" in " ".join(result.output.split())


def test_floating_ip_access_without_a_public_network_is_refused(tmp_path):
    path = _write(tmp_path, CLUSTER_FILE.replace("network: {public: public}\n", ""))
    result = CliRunner().invoke(app, ["cluster", "create", "demo", "-f", str(path)])
    assert result.exit_code == 2
    assert "access 'floating_ip' needs network.public" in " ".join(result.output.split())


def test_showing_an_unknown_cluster_exits_14_naming_it():
    result = CliRunner().invoke(app, ["cluster", "show", "ghost"])
    assert result.exit_code == 14
    assert "Error: no cluster named 'ghost'" in result.output


def test_timeout_reaches_the_stack_waits_of_create_scale_and_delete(tmp_path, isolated):
    runner = CliRunner()
    file = str(_write(tmp_path, CLUSTER_FILE))
    assert runner.invoke(app, ["cluster", "create", "demo", "-f", file, "--timeout", "45m"]).exit_code == 0
    assert runner.invoke(app, ["cluster", "scale", "demo", "--workers", "3", "--timeout", "1h"]).exit_code == 0
    assert runner.invoke(app, ["cluster", "delete", "demo", "--timeout", "90s"]).exit_code == 0
    assert isolated.waits == [("demo", "CREATE", 2700), ("demo", "UPDATE", 3600), ("demo", "DELETE", 90)]


def test_without_timeout_the_waits_use_the_settings_then_the_defaults(tmp_path, isolated, monkeypatch):
    runner = CliRunner()
    file = str(_write(tmp_path, CLUSTER_FILE))
    assert runner.invoke(app, ["cluster", "create", "demo", "-f", file]).exit_code == 0
    assert runner.invoke(app, ["cluster", "delete", "demo"]).exit_code == 0
    monkeypatch.setenv("DATAOPS_STACK_TIMEOUT", "10m")
    monkeypatch.setenv("DATAOPS_STACK_DELETE_TIMEOUT", "5m")
    assert runner.invoke(app, ["cluster", "create", "demo", "-f", file]).exit_code == 0
    assert runner.invoke(app, ["cluster", "delete", "demo"]).exit_code == 0
    assert [timeout for _, _, timeout in isolated.waits] == [1800, 900, 600, 300]


def test_a_timeout_that_is_not_a_duration_is_refused_naming_the_option_before_anything_is_created(tmp_path, isolated):
    result = CliRunner().invoke(app, ["cluster", "create", "demo", "-f", str(_write(tmp_path, CLUSTER_FILE)),
                                      "--timeout", "soon"])
    assert result.exit_code == 1
    assert "Error: invalid duration 'soon' for --timeout" in " ".join(result.output.split())
    assert isolated.stacks == {} and isolated.waits == []


def test_a_stack_that_fails_exits_with_the_stack_failed_code(tmp_path):
    path = _write(tmp_path, CLUSTER_FILE.replace("scheduler: {flavor: m1.small}", "scheduler: {flavor: m1.huge}"))
    result = CliRunner().invoke(app, ["cluster", "create", "demo", "-f", str(path)])
    assert result.exit_code == 18
    assert "Error: stack demo CREATE_FAILED: resource scheduler: Flavor m1.huge" in " ".join(result.output.split())


def test_a_created_cluster_is_seen_from_every_machine_of_the_cloud_without_any_secret(tmp_path, isolated, monkeypatch):
    runner = CliRunner()
    file = str(_write(tmp_path, CLUSTER_FILE))
    assert runner.invoke(app, ["cluster", "create", "demo", "-f", file, "--ttl", "8h"]).exit_code == 0
    record = isolated.records.get("demo")
    assert (record["status"], record["ttl"], record["workers"]) == ("ready", "8h", 2)
    assert record["last_used"] == record["created_at"]
    assert set(record) == {"name", "cloud", "status", "ttl", "workers", "gpu_workers", "scheduler_url",
                           "created_on", "created_at", "last_used"}, "nothing private: no key, no certificate"
    # Another machine: none of the first one's folders, the same cloud.
    monkeypatch.setenv("DATAOPS_CLUSTERS_DIR", str(tmp_path / "other-machine"))
    assert json.loads(runner.invoke(app, ["cluster", "list", "--json"]).stdout) == []
    (shared,) = json.loads(runner.invoke(app, ["cluster", "list", "--shared", "--json"]).stdout)
    assert (shared["name"], shared["here"], shared["ttl"]) == ("demo", False, "8h")
    assert runner.invoke(app, ["cluster", "scale", "demo", "--workers", "3"]).exit_code != 0, \
        "scaling needs the keys of the machine that made it"
    assert runner.invoke(app, ["cluster", "delete", "demo"]).exit_code == 0
    assert isolated.records.all() == {} and isolated.stacks == {}


def test_a_runner_sweeps_a_cluster_made_elsewhere_once_it_is_idle_past_its_ttl(tmp_path, isolated, monkeypatch):
    runner = CliRunner()
    assert runner.invoke(app, ["cluster", "create", "demo", "-f", str(_write(tmp_path, CLUSTER_FILE)),
                               "--ttl", "1h"]).exit_code == 0
    assert runner.invoke(app, ["cluster", "create", "busy", "-f", str(_write(tmp_path, CLUSTER_FILE)),
                               "--ttl", "1h"]).exit_code == 0
    two_hours_ago = (datetime.now(timezone.utc) - timedelta(hours=2)).isoformat()
    isolated.records.update("demo", last_used=two_hours_ago)
    monkeypatch.setenv("DATAOPS_CLUSTERS_DIR", str(tmp_path / "runner-vm"))
    swept = runner.invoke(app, ["cluster", "sweep", "--expired"])
    assert swept.exit_code == 0, swept.output
    assert "demo" in swept.output and "busy" not in swept.output
    assert set(isolated.stacks) == {"busy"} and set(isolated.records.all()) == {"busy"}
