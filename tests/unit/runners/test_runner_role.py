"""The schedule_runner role as files: every variable the runner use cases pass is one the roles declare, the
credential is written readable by root only and never shown, and the tick runs as the schedule runner's contract
says (a systemd timer from `dataops schedule install`, else the supervised `dataops schedule tick --loop`)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from orchestrator.ansible.playbook import PLAYBOOKS_DIR

from .conftest import InMemoryKeystone, RecordingConfigure, RunnerStackCloud, Steps, fixed_clock, runner_file

ROLE = PLAYBOOKS_DIR / "roles" / "schedule_runner"


def _tasks(name: str) -> list[dict]:
    return yaml.safe_load((ROLE / "tasks" / name).read_text())


def _task(name: str, title: str) -> dict:
    (task,) = [t for t in _tasks(name) if t["name"] == title]
    return task


def _declared() -> set[str]:
    names = set()
    for role in ("schedule_runner", "common"):
        names |= set(yaml.safe_load((PLAYBOOKS_DIR / "roles" / role / "defaults" / "main.yml").read_text()))
    return names | {"common_prepared"}  # common's own flag, set by its last task


@pytest.mark.parametrize("phase", ["install", "credential"])
def test_every_variable_the_use_cases_pass_is_declared_by_the_roles(tmp_path, package, phase):
    from orchestrator.runners import provision
    from orchestrator.runners.spec import load_runner_spec

    keystone, configure = InMemoryKeystone(), RecordingConfigure()
    spec = load_runner_spec(runner_file(tmp_path))
    provision.create_runner(spec, RunnerStackCloud(), keystone, package, "ssh-ed25519 AAAA k", Steps(),
                            configure=configure, clock=fixed_clock())
    if phase == "credential":
        provision.rotate_credential("ops", keystone, Steps(), configure=configure, clock=fixed_clock())
    passed = set(configure.calls[-1]["extravars"])
    assert passed <= _declared(), passed - _declared()


def test_the_credential_is_readable_by_root_only_and_never_shown():
    clouds = _task("credential.yml", "Install the runner's clouds.yaml, which holds its application credential")
    assert clouds["no_log"] is True
    assert clouds["ansible.builtin.copy"]["mode"] == "0600" and clouds["ansible.builtin.copy"]["owner"] == "root"
    environment = _task("credential.yml", "Write the environment of the tick (the cloud, the store, the tick's home)")
    assert environment["ansible.builtin.template"]["mode"] == "0600"
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    assert set(defaults["schedule_runner_environment"]) >= {"OS_CLIENT_CONFIG_FILE", "OS_CLOUD", "HOME"}
    assert not [k for k in defaults["schedule_runner_environment"] if "SECRET" in k or "PASSWORD" in k]


def test_systemd_hosts_get_the_timer_of_schedule_install_with_the_runner_s_environment_file():
    install = _task("tick.yml", "Install and enable the tick's systemd timer and services")
    argv = install["ansible.builtin.command"]["argv"]
    assert argv[1:6] == ["schedule", "install", "--systemd", "--system", "--store"]
    assert argv[argv.index("--environment-file") + 1].endswith("/etc/runner.env")
    assert argv[argv.index("--runner") + 1] == "{{ schedule_runner_id }}"
    assert install["when"] == "ansible_service_mgr == 'systemd'"


def test_other_hosts_run_the_tick_loop_under_the_supervisor_with_the_runner_s_environment():
    script = (ROLE / "templates" / "dataops-tick.sh.j2").read_text()
    assert ". {{ schedule_runner_root }}/etc/runner.env" in script
    assert "dataops schedule tick --loop --every {{ schedule_runner_every | quote }}" in script
    assert "--runner {{ schedule_runner_id | quote }}" in script
    service = _task("tick.yml", "Run the tick loop as a supervised service")
    assert service["ansible.builtin.include_role"] == {"name": "common", "tasks_from": "service"}
    assert service["vars"]["common_service_name"] == "dataops-tick"


def test_the_playbook_checks_from_the_vm_that_the_credential_reaches_the_store():
    check = _task("main.yml", "Check from the runner that its credential reaches the store")
    argv = check["ansible.builtin.command"]["argv"]
    assert argv[1:4] == ["schedule", "list", "--store"] and check["environment"] == "{{ schedule_runner_environment }}"
    assert Path(PLAYBOOKS_DIR / "runner.yml").exists()
