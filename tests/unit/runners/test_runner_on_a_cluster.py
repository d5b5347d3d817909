"""A runner that names a cluster (``cluster:`` in runner.yaml) runs its slots there: it is put on the cluster's
network, a rule of its own stack admits its security group to the scheduler's port and nothing else, and its VM
keeps the cluster's record and a client certificate of the cluster's CA issued to it alone (no CA key, no SSH key),
from which the tick reaches the scheduler as the operator does."""

from __future__ import annotations

import json
import os
import shutil
import stat

import pytest
import yaml
from cryptography import x509

from orchestrator.ansible.playbook import PLAYBOOKS_DIR
from orchestrator.clusters import tls
from orchestrator.clusters.connection import scheduler_connection
from orchestrator.clusters.spec import ClusterSpec
from orchestrator.clusters.state import ClusterState, cluster_state
from orchestrator.errors import ClusterNotFound, DataopsError, SpecError
from orchestrator.runners import provision
from orchestrator.runners.provision import RUNNER_TEMPLATE
from orchestrator.runners.spec import load_runner_spec
from orchestrator.usecases.runners import cluster_seat

from .conftest import InMemoryKeystone, RecordingConfigure, RunnerStackCloud, Steps, fixed_clock, runner_file

ROLE = PLAYBOOKS_DIR / "roles" / "schedule_runner"
OUTPUTS = {"scheduler_url": "tls://10.99.0.5:8786", "network_id": "net-1234", "security_group_id": "sg-5678",
           "scheduler_address": "10.99.0.5"}


@pytest.fixture(autouse=True)
def clusters_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DATAOPS_CLUSTERS_DIR", str(tmp_path / "clusters"))


def _cluster(name="crunch", status="ready", access="floating_ip", outputs=OUTPUTS) -> ClusterState:
    spec = ClusterSpec.model_validate({
        "name": name, "image": "debian-12", "scheduler": {"flavor": "m1.small"},
        "workers": {"flavor": "m1.small", "count": 2}, "access": access, "operator_cidr": "192.0.2.10/32",
        "network": {"cidr": "10.99.0.0/24", **({"public": "public"} if access != "direct" else {})},
    })
    state = cluster_state(name)
    state.save(spec, status=status, outputs=dict(outputs))
    tls.ensure_ca(state.tls_dir, name)
    return state


def test_the_seat_is_the_cluster_s_network_and_group_and_a_certificate_of_its_ca_for_this_runner_alone():
    state = _cluster()
    seat = cluster_seat("ops", "crunch")
    assert (seat.cluster, seat.network_id, seat.security_group_id, seat.scheduler_port) == (
        "crunch", "net-1234", "sg-5678", 8786)
    cert = x509.load_pem_x509_certificate(seat.cert.read_bytes())
    ca = x509.load_pem_x509_certificate((state.tls_dir / tls.CA_FILE).read_bytes())
    assert cert.issuer == ca.subject and "runner-ops" in cert.subject.rfc4514_string()
    cert.verify_directly_issued_by(ca)
    assert seat.ca == state.tls_dir / tls.CA_FILE and seat.key.stat().st_mode & 0o077 == 0


def test_what_the_vm_keeps_of_the_cluster_holds_no_key_and_says_the_runner_is_on_its_network():
    _cluster()
    record = cluster_seat("ops", "crunch").record
    text = json.dumps(record)
    assert "PRIVATE KEY" not in text and "id_ed25519" not in text
    assert record["status"] == "ready" and record["on_cluster_network"] is True
    assert record["outputs"] == {"scheduler_url": "tls://10.99.0.5:8786", "network_id": "net-1234"}


def test_the_vm_s_copy_reaches_the_scheduler_over_tls_without_the_ca_key_even_behind_a_floating_ip(tmp_path,
                                                                                                   monkeypatch):
    _cluster(access="floating_ip")
    seat = cluster_seat("ops", "crunch")
    # What the role installs on the VM, in the VM's clusters folder.
    vm = tmp_path / "vm-clusters" / "crunch"
    (vm / "tls").mkdir(parents=True)
    (vm / ClusterState.record_file).write_text(json.dumps(seat.record))
    shutil.copy(seat.ca, vm / "tls" / tls.CA_FILE)
    shutil.copy(seat.cert, vm / "tls" / f"{tls.CLIENT_NAME}.pem")
    shutil.copy(seat.key, vm / "tls" / f"{tls.CLIENT_NAME}.key")
    monkeypatch.setenv("DATAOPS_CLUSTERS_DIR", str(vm.parent))
    url, security = scheduler_connection("crunch")
    assert url == "tls://10.99.0.5:8786" and security.require_encryption
    assert not (vm / "tls" / tls.CA_KEY_FILE).exists(), "nothing was signed on the VM"


@pytest.mark.parametrize(("status", "outputs", "expected"), [
    ("configuring", OUTPUTS, "cluster 'crunch' is 'configuring', not ready"),
    ("ready", {k: v for k, v in OUTPUTS.items() if k != "security_group_id"}, "gives no security_group_id"),
])
def test_a_cluster_not_ready_or_made_before_runners_could_join_is_refused_with_the_reason(status, outputs, expected):
    _cluster(status=status, outputs=outputs)
    with pytest.raises(DataopsError, match=expected):
        cluster_seat("ops", "crunch")


def test_an_unknown_cluster_is_named():
    with pytest.raises(ClusterNotFound, match="ghost"):
        cluster_seat("ops", "ghost")


def test_a_runner_file_naming_a_cluster_and_another_network_is_refused_at_its_line(tmp_path):
    path = runner_file(tmp_path, "cluster: crunch\nnetwork:\n  existing: elsewhere\n")
    with pytest.raises(SpecError, match=r"runner\.yaml.*cluster 'crunch' puts the runner on that cluster's network"):
        load_runner_spec(path)


def test_the_stack_puts_the_runner_on_the_cluster_s_network_and_the_playbook_gets_the_record_privately(tmp_path,
                                                                                                     package):
    _cluster()
    spec = load_runner_spec(runner_file(tmp_path, "cluster: crunch\n"))
    seen = {}

    class Configure(RecordingConfigure):
        def __call__(self, playbook, inventory, extravars, limit=None, on_event=None):
            record = extravars["schedule_runner_cluster_record"]
            seen.update(record=json.loads(open(record).read()), mode=stat.S_IMODE(os.stat(record).st_mode))
            return super().__call__(playbook, inventory, extravars, limit, on_event)

    cloud, configure = RunnerStackCloud(), Configure()
    provision.create_runner(spec, cloud, InMemoryKeystone(), package, "ssh-ed25519 AAAA k", Steps(),
                            configure=configure, seat=cluster_seat("ops", "crunch"), clock=fixed_clock())
    parameters = cloud.stacks[provision.stack_name("ops")]["parameters"]
    assert (parameters["existing_network"], parameters["cluster_security_group"],
            parameters["cluster_scheduler_port"]) == ("net-1234", "sg-5678", "8786")
    extravars = configure.calls[0]["extravars"]
    assert extravars["schedule_runner_cluster"] == "crunch"
    assert seen["record"]["outputs"]["scheduler_url"] == "tls://10.99.0.5:8786" and seen["mode"] == 0o600
    assert not os.path.exists(extravars["schedule_runner_cluster_record"]), "gone after the play"
    assert set(extravars["schedule_runner_cluster_tls"]) == {"ca", "cert", "key"}


def test_a_seat_that_does_not_match_the_runner_file_is_refused_before_anything_is_created(tmp_path, package):
    _cluster()
    cloud = RunnerStackCloud()
    spec = load_runner_spec(runner_file(tmp_path))
    with pytest.raises(DataopsError, match="the file names cluster None"):
        provision.create_runner(spec, cloud, InMemoryKeystone(), package, "ssh-ed25519 AAAA k", Steps(),
                                configure=RecordingConfigure(), seat=cluster_seat("ops", "crunch"),
                                clock=fixed_clock())
    assert cloud.stacks == {}


def test_the_cluster_admits_the_runner_s_group_to_the_scheduler_s_port_alone_by_a_rule_of_the_runner_s_stack():
    template = yaml.safe_load(RUNNER_TEMPLATE.read_text())
    rule = template["resources"]["cluster_scheduler_access"]
    assert rule["type"] == "OS::Neutron::SecurityGroupRule" and rule["condition"] == "joins_cluster"
    assert rule["properties"] == {
        "security_group": {"get_param": "cluster_security_group"}, "direction": "ingress", "protocol": "tcp",
        "port_range_min": {"get_param": "cluster_scheduler_port"},
        "port_range_max": {"get_param": "cluster_scheduler_port"},
        "remote_group": {"get_resource": "security_group"}}
    assert template["parameters"]["cluster_security_group"]["default"] == ""
    cluster = yaml.safe_load((RUNNER_TEMPLATE.parent / "cluster.yaml").read_text())
    assert cluster["outputs"]["security_group_id"]["value"] == {"get_resource": "security_group"}


def test_the_role_installs_the_files_where_the_tick_s_cluster_state_looks_and_never_shows_the_key():
    tasks = {t["name"]: t for t in yaml.safe_load((ROLE / "tasks" / "cluster.yml").read_text())}
    record = tasks["Install the cluster's record"]["ansible.builtin.copy"]
    assert record["dest"].endswith(f"/{ClusterState.record_file}") and record["mode"] == "0600"
    files = tasks["Install the cluster's CA and the runner's client certificate"]
    assert {item["dest"]: item["mode"] for item in files["loop"]} == {
        tls.CA_FILE: "0644", f"{tls.CLIENT_NAME}.pem": "0644", f"{tls.CLIENT_NAME}.key": "0600"}
    assert files["no_log"] is True
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    assert defaults["schedule_runner_environment"]["DATAOPS_CLUSTERS_DIR"] == "{{ schedule_runner_clusters_dir }}"
