"""A runner's life against an in-memory cloud and Keystone: creation issues one restricted, expiring credential
limited to the runner's containers and hands its secret to the playbook in a private file only; a stack that fails,
or a credential the store refuses, leaves nothing behind; a rotation revokes the old credential only once the VM
holds the new one; deletion removes every resource and credential of the runner (and of no other), twice over.
No secret reaches the stack's parameters, the local record, the progress shown, the logs or an error's text."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from orchestrator.errors import CloudError, ConfigurationFailed, StackFailed
from orchestrator.runners import provision
from orchestrator.runners.credential import SEGMENT_SUFFIX, credential_name, is_credential_of
from orchestrator.runners.spec import load_runner_spec
from orchestrator.runners.state import RunnerNotFound, runner_state

from .conftest import InMemoryKeystone, RecordingConfigure, RunnerStackCloud, Steps, fixed_clock, runner_file

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl operator"


def _create(tmp_path, package, text="", cloud=None, keystone=None, configure=None, **kwargs):
    cloud, keystone = cloud or RunnerStackCloud(), keystone or InMemoryKeystone()
    configure, steps = configure or RecordingConfigure(), Steps()
    spec = load_runner_spec(runner_file(tmp_path, text))
    ready = provision.create_runner(spec, cloud, keystone, package, KEY, steps, configure=configure,
                                    clock=fixed_clock(), **kwargs)
    return ready, cloud, keystone, configure, steps


def test_creation_issues_one_restricted_expiring_credential_limited_to_the_runner_s_containers(tmp_path, package):
    ready, cloud, keystone, configure, _ = _create(tmp_path, package, "containers: [raw]\n",
                                                   records_container="dataops-records")
    (credential,) = keystone.by_id.values()
    assert re.fullmatch(r"dataops-runner-ops-20270115t083000-[0-9a-f]{4}", credential["name"])
    assert credential["name"] == ready.credential.name
    assert credential["unrestricted"] is False and credential["roles"] == ["member"]
    assert credential["expires_at"] == datetime(2027, 4, 15, 8, 30, tzinfo=UTC), "90 days by default"
    paths = {rule["path"] for rule in credential["access_rules"]}
    for container in ("ops", "raw", "dataops-records"):
        for name in (container, container + SEGMENT_SUFFIX):
            assert {f"/v1/*/{name}", f"/v1/*/{name}/**"} <= paths
    assert {rule["service"] for rule in credential["access_rules"]} == {"object-store"}
    assert {rule["method"] for rule in credential["access_rules"]} == {"GET", "HEAD", "PUT", "POST", "DELETE"}
    assert len(paths) == 12, "nothing beyond the runner's containers"
    assert ready.runner_id == "ops-01234567" and ready.address == "10.44.0.7"


def test_the_playbook_gets_the_credential_in_a_private_file_that_is_gone_afterwards(tmp_path, package):
    ready, _, keystone, configure, _ = _create(tmp_path, package)
    (call,) = configure.calls
    assert call["playbook"] == "runner.yml"
    assert call["file_mode"] == 0o600 and call["folder_mode"] == 0o700
    entry = call["clouds"]["clouds"]["dataops-runner"]
    assert entry["auth"]["application_credential_secret"] == keystone.secrets()[0]
    assert not Path(call["extravars"]["schedule_runner_clouds_yaml"]).exists()
    extravars = call["extravars"]
    assert extravars["schedule_runner_phase"] == "install" and extravars["schedule_runner_id"] == ready.runner_id
    assert extravars["schedule_runner_store"] == "swift://ops/schedules"
    assert extravars["common_python_packages"] == ["dask==2026.8.0", "distributed==2026.8.0"]
    assert extravars["schedule_runner_project_wheel"].endswith("dataops-0.1.0-py3-none-any.whl")
    assert call["inventory"]["all"]["children"]["runner"]["hosts"] == {"runner-ops": {"ansible_host": "10.44.0.7"}}
    assert "application_credential_secret" not in json.dumps(extravars)


def test_no_secret_reaches_heat_the_local_record_the_progress_or_the_logs(tmp_path, package, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    ready, cloud, keystone, configure, steps = _create(tmp_path, package)
    (secret,) = keystone.secrets()
    (stack,) = cloud.stacks.values()
    state = runner_state("ops")
    seen = {
        "stack parameters": json.dumps(stack),
        "stack outputs": json.dumps(cloud.stack_outputs("runner-ops")),
        "local record": state.record.read_text(),
        "files of the runner's folder": "".join(p.read_text() for p in state.directory.iterdir() if p.is_file()),
        "progress": "\n".join(steps.messages),
        "logs": caplog.text,
        "output": "".join(capsys.readouterr()),
        "result": repr(ready),
        "extravars": json.dumps(configure.calls[0]["extravars"]),
    }
    assert [where for where, text in seen.items() if secret in text] == []
    assert state.load()["credential"]["id"] == "cred1", "the record names the credential, not its secret"


def test_a_failed_configuration_says_how_to_remove_the_runner_without_the_secret(tmp_path, package):
    with pytest.raises(ConfigurationFailed) as failure:
        _create(tmp_path, package, configure=RecordingConfigure(fail_with="runner-ops: task 'Install' failed"))
    message = str(failure.value)
    assert "dataops schedule runner delete ops" in message and "s3cr3t" not in message
    assert runner_state("ops").load()["status"] == "failed"


def test_a_stack_that_fails_leaves_no_stack_key_pair_credential_or_record(tmp_path, package):
    cloud, keystone = RunnerStackCloud(flavors=()), InMemoryKeystone()
    with pytest.raises(StackFailed, match="Flavor m1.small could not be found"):
        _create(tmp_path, package, cloud=cloud, keystone=keystone)
    assert (cloud.stacks, cloud.keypairs, cloud.ports, keystone.by_id) == ({}, {}, {}, {})
    assert not runner_state("ops").exists()


def test_a_credential_the_store_refuses_is_revoked_and_nothing_is_left(tmp_path, package):
    keystone = InMemoryKeystone()
    keystone.reachable = False
    cloud = RunnerStackCloud()
    with pytest.raises(CloudError, match="Swift refuses application credential") as failure:
        _create(tmp_path, package, cloud=cloud, keystone=keystone)
    assert keystone.by_id == {} and cloud.stacks == {} and cloud.keypairs == {}
    assert "s3cr3t" not in str(failure.value)


def test_a_role_the_user_lacks_is_keystone_s_refusal_and_leaves_nothing(tmp_path, package):
    cloud, keystone = RunnerStackCloud(), InMemoryKeystone()
    with pytest.raises(CloudError, match="no role"):
        _create(tmp_path, package, "credential_roles: [admin]\n", cloud=cloud, keystone=keystone)
    assert cloud.stacks == {} and keystone.by_id == {}


def test_a_runner_that_exists_is_not_created_twice(tmp_path, package):
    _, cloud, keystone, _, _ = _create(tmp_path, package)
    with pytest.raises(Exception, match="runner 'ops' already exists"):
        _create(tmp_path, package, cloud=cloud, keystone=keystone)
    assert len(keystone.by_id) == 1


def test_rotation_puts_the_new_credential_on_the_vm_before_revoking_the_old_one(tmp_path, package):
    _, cloud, keystone, _, _ = _create(tmp_path, package)
    configure, revoked_before_play = RecordingConfigure(), []
    original = configure.__call__

    def configure_and_look(*args, **kwargs):
        revoked_before_play.append("cred1" not in keystone.by_id)
        return original(*args, **kwargs)

    later = fixed_clock("2027-03-01T00:00:00")
    new, revoked = provision.rotate_credential("ops", keystone, Steps(), configure=configure_and_look, clock=later)
    assert revoked_before_play == [False], "the old credential still works while the VM takes the new one"
    assert [c.id for c in revoked] == ["cred1"] and list(keystone.by_id) == ["cred2"]
    assert new.name.startswith("dataops-runner-ops-20270301t000000-")
    assert keystone.by_id["cred2"]["expires_at"] == datetime(2027, 5, 30, tzinfo=UTC)
    (call,) = configure.calls
    assert call["extravars"]["schedule_runner_phase"] == "credential"
    assert call["extravars"]["common_prepared"] is True, "a rotation installs nothing"
    assert call["clouds"]["clouds"]["dataops-runner"]["auth"]["application_credential_id"] == "cred2"
    assert runner_state("ops").load()["credential"]["id"] == "cred2"


def test_a_rotation_the_vm_refuses_revokes_the_new_credential_and_keeps_the_old(tmp_path, package):
    _, _, keystone, _, _ = _create(tmp_path, package)
    with pytest.raises(ConfigurationFailed):
        provision.rotate_credential("ops", keystone, Steps(), configure=RecordingConfigure(fail_with="unreachable"),
                                    clock=fixed_clock("2027-02-01T00:00:00"))
    assert list(keystone.by_id) == ["cred1"]
    assert runner_state("ops").load()["credential"]["id"] == "cred1"


def test_rotating_an_unknown_runner_names_it():
    with pytest.raises(RunnerNotFound, match="no runner named 'ghost'"):
        provision.rotate_credential("ghost", InMemoryKeystone(), Steps())


def test_deletion_removes_stack_key_pair_ports_and_every_credential_of_the_runner_only(tmp_path, package):
    _, cloud, keystone, _, _ = _create(tmp_path, package)
    provision.rotate_credential("ops", keystone, Steps(), configure=RecordingConfigure(),
                                clock=fixed_clock("2027-02-01T00:00:00"))
    # A credential left by a crash between issue and record, and one of another runner whose name starts alike.
    keystone.issue(credential_name("ops", datetime(2027, 2, 2, tzinfo=UTC)), description="", roles=["member"],
                   expires_at=datetime(2027, 5, 1, tzinfo=UTC), access_rules=None)
    keystone.issue(credential_name("ops-2", datetime(2027, 2, 2, tzinfo=UTC)), description="", roles=["member"],
                   expires_at=datetime(2027, 5, 1, tzinfo=UTC), access_rules=None)
    cloud.ports["port-other"] = "dataops-runner=ops-2"
    swept = provision.delete_runner("ops", cloud, keystone)
    assert sorted((s.kind, s.id) for s in swept) == [
        ("application_credential", "cred2"), ("application_credential", "cred3"), ("port", "port-runner-ops")]
    assert cloud.stacks == {} and cloud.keypairs == {} and cloud.ports == {"port-other": "dataops-runner=ops-2"}
    assert [c["name"][:36] for c in keystone.by_id.values()] == ["dataops-runner-ops-2-20270202t000000"]
    assert not runner_state("ops").exists()
    assert provision.delete_runner("ops", cloud, keystone) == [], "deleting again succeeds and finds nothing"


def test_a_credential_name_belongs_to_one_runner_and_two_issued_in_one_second_differ():
    at = datetime(2027, 1, 15, 8, 30, tzinfo=UTC)
    name = credential_name("ops", at)
    assert is_credential_of(name, "ops") and not is_credential_of(name, "op")
    assert len({credential_name("ops", at) for _ in range(20)}) > 1
    assert not is_credential_of(credential_name("ops-2", datetime.now(UTC)), "ops")
    assert not is_credential_of("dataops-runner-ops", "ops")


def test_the_record_says_when_the_credential_expires(tmp_path, package):
    from orchestrator.usecases.runners import describe_runner, list_runners

    _create(tmp_path, package)
    shown = describe_runner("ops", now=datetime(2027, 4, 5, 8, 30, tzinfo=UTC))
    assert shown["credential_days_left"] == 10.0 and shown["status"] == "ready"
    (row,) = list_runners()
    assert row["credential_expires_at"].startswith("2027-04-15T08:30:00") and row["runner_id"] == "ops-01234567"
