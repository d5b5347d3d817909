"""Deploys roll a registered model out node by node and record who deployed which version from which run; a node
that refuses a version stops the rollout and goes back to the version it served; rollback serves the previous
version again; undeploy leaves nothing and can be repeated. The cloud and the playbook runs are faked here (the
integration tests run them for real)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.artifacts.local import LocalStore
from orchestrator.artifacts.records import SharedRecords
from orchestrator.cli.main import app
from orchestrator.deploy import rollout
from orchestrator.deploy.state import endpoint_state
from orchestrator.errors import ConfigurationFailed, DataopsError, DeployFailed

from support.endpoint_fakes import ENDPOINT_FILE, Playbooks


def test_a_deploy_rolls_out_node_by_node_and_records_who_what_and_when(setup):
    store, cloud, spec = setup
    playbooks = Playbooks()
    record = rollout.deploy("web:1", spec, store, cloud, configure=playbooks, wheelhouse_dir=Path("/wh"))
    assert playbooks.runs == [("web-0", [1]), ("web-1", [1])]
    assert cloud.keypairs == {"dataops-endpoint-web"} and "endpoint-web" in cloud.stacks
    assert record["status"] == "succeeded" and record["deployed_by"] and record["deployed_at"]
    assert endpoint_state("web").serving()["version"] == 1


def test_capturing_nodes_get_a_url_signed_for_writes_under_captures_alone_and_others_none(setup):
    store, cloud, spec = setup
    playbooks = Playbooks()
    rollout.deploy("web:1", spec.model_copy(update={"capture_rate": 0.25, "capture_url_days": 7}), store, cloud,
                   configure=playbooks, wheelhouse_dir=Path("/wh"))
    assert [(v["onnx_server_capture_rate"], v["onnx_server_capture_url"]) for v in playbooks.extravars] == \
        [(0.25, "https://swift.test/captures?temp_url_sig=x")] * 2
    assert ("captures", 7 * 86400, "PUT", True) in store.signed
    plain = Playbooks()
    rollout.deploy("web:1", spec, store, cloud, configure=plain, wheelhouse_dir=Path("/wh"))
    assert {(v["onnx_server_capture_rate"], v["onnx_server_capture_url"]) for v in plain.extravars} == {(0.0, "")}


def test_a_node_refusing_the_new_version_stops_the_rollout_and_goes_back(setup):
    store, cloud, spec = setup
    rollout.deploy("web:1", spec, store, cloud, configure=Playbooks(), wheelhouse_dir=Path("/wh"))
    playbooks = Playbooks(refuse={2})
    with pytest.raises(DeployFailed, match="stopped on web-0.*example output 'label' differs") as failure:
        rollout.deploy("web:2", spec, store, cloud, configure=playbooks, wheelhouse_dir=Path("/wh"))
    assert "web:1 keeps serving" in str(failure.value)
    assert playbooks.runs == [("web-0", [2]), ("web-0", [1])], "web-1 is never touched"
    history = endpoint_state("web").history()
    assert [(h["version"], h["status"]) for h in history] == [(1, "succeeded"), (2, "failed")]
    assert endpoint_state("web").serving()["version"] == 1


class DeadNode(Playbooks):
    """``dead`` answers no playbook at all, as a node that has died."""

    def __init__(self, dead):
        super().__init__()
        self.dead = dead

    def __call__(self, playbook, inventory, extravars, limit=None, on_event=None):
        super().__call__(playbook, inventory, extravars, limit=limit, on_event=on_event)
        if limit == self.dead:
            raise ConfigurationFailed(f"{limit}: unreachable: Connection timed out")


def test_a_node_dying_during_the_rollout_stops_it_with_one_error_and_the_failure_recorded(setup):
    store, cloud, spec = setup
    rollout.deploy("web:1", spec, store, cloud, configure=Playbooks(), wheelhouse_dir=Path("/wh"))
    playbooks = DeadNode("web-0")
    with pytest.raises(DeployFailed, match="stopped on web-0: web-0: unreachable") as failure:
        rollout.deploy("web:2", spec, store, cloud, configure=playbooks, wheelhouse_dir=Path("/wh"))
    assert "web:1 keeps serving on the nodes not yet rolled; web-0 could not be put back" in str(failure.value)
    assert playbooks.runs == [("web-0", [2]), ("web-0", [1])], "web-1 is never touched"
    assert [(h["version"], h["status"]) for h in endpoint_state("web").history()] == [(1, "succeeded"), (2, "failed")]


def test_rollback_serves_the_previous_version_again(setup):
    store, cloud, spec = setup
    for ref in ("web:1", "web:2"):
        rollout.deploy(ref, spec, store, cloud, configure=Playbooks(), wheelhouse_dir=Path("/wh"))
    playbooks = Playbooks()
    assert rollout.rollback("web", store, cloud, configure=playbooks, wheelhouse_dir=Path("/wh"))["version"] == 1
    assert playbooks.runs == [("web-0", [1]), ("web-1", [1])]


def test_a_store_without_temp_urls_is_refused_naming_the_option(setup, tmp_path):
    _, cloud, spec = setup
    local = LocalStore(tmp_path / "store")
    with pytest.raises(DataopsError, match="--store swift://"):
        rollout.deploy("web:1", spec, local, cloud, configure=Playbooks(), wheelhouse_dir=Path("/wh"))
    assert cloud.stacks == {} and cloud.keypairs == set(), "nothing is created"


def test_undeploy_removes_stack_key_tagged_ports_and_state_and_can_be_repeated(setup):
    store, cloud, spec = setup
    rollout.deploy("web:1", spec, store, cloud, configure=Playbooks(), wheelhouse_dir=Path("/wh"))
    swept = rollout.undeploy("web", cloud)
    assert [s.id for s in swept] == ["p1"]
    assert cloud.stacks == {} and cloud.keypairs == set() and cloud.ports == {"p2": "dataops-endpoint=other"}
    assert not endpoint_state("web").exists()
    assert rollout.undeploy("web", cloud) == []


def test_deploy_and_undeploy_timeouts_reach_the_stack_waits(cli):
    cloud, path = cli
    deployed = CliRunner().invoke(app, ["deploy", "web:1", "-e", "web", "-f", path, "--timeout", "45m"])
    assert deployed.exit_code == 0, deployed.output
    assert "web:1 serves on web (2 nodes" in deployed.output
    undeployed = CliRunner().invoke(app, ["undeploy", "web", "--timeout", "5m"])
    assert undeployed.exit_code == 0, undeployed.output
    assert cloud.waits == [("endpoint-web", "CREATE", 2700), ("endpoint-web", "DELETE", 300)]


def test_without_timeout_a_deploy_waits_as_long_as_the_stack_timeout_setting_says(cli, monkeypatch):
    cloud, path = cli
    monkeypatch.setenv("DATAOPS_STACK_TIMEOUT", "20m")
    assert CliRunner().invoke(app, ["deploy", "web:1", "-e", "web", "-f", path]).exit_code == 0
    assert cloud.waits == [("endpoint-web", "CREATE", 1200)]


def test_a_first_deploy_without_an_endpoint_file_asks_for_it_with_the_usage_exit_code(cli):
    cloud, _ = cli
    result = CliRunner().invoke(app, ["deploy", "web:1", "-e", "web"])
    assert result.exit_code == 2
    assert "endpoint web does not exist yet: give its file with -f" in " ".join(result.output.split())
    assert cloud.stacks == {}


def test_every_machine_of_the_cloud_sees_what_an_endpoint_serves_but_never_its_key_or_token(cli, monkeypatch,
                                                                                           tmp_path):
    cloud, path = cli
    assert CliRunner().invoke(app, ["deploy", "web:1", "-e", "web", "-f", path]).exit_code == 0
    shared = SharedRecords(cloud.records, "endpoints").get("web")
    assert [n["name"] for n in shared["nodes"]] == ["web-0", "web-1"]
    assert [(e["model"], e["version"], e["status"]) for e in shared["history"]] == [("web", 1, "succeeded")]
    token = endpoint_state("web").ensure_token()
    assert token not in str(shared) and "PRIVATE KEY" not in str(shared)
    assert shared["ca_certificate"] == endpoint_state("web").ca_file.read_text(), "the CA is public: it is shared"
    from orchestrator.usecases.drift import served_by

    with monkeypatch.context() as runner_vm:  # none of this machine's folders, the same cloud
        runner_vm.setenv("DATAOPS_ENDPOINTS_DIR", str(tmp_path / "runner-vm"))
        assert served_by("web")[:2] == ("web", 1)
    assert CliRunner().invoke(app, ["undeploy", "web"]).exit_code == 0
    assert SharedRecords(cloud.records, "endpoints").get("web") is None


def _sans(path: Path) -> tuple[list[str], list[str]]:
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(path.read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return sorted(sans.get_values_for_type(x509.DNSName)), sorted(map(str, sans.get_values_for_type(x509.IPAddress)))


def test_every_node_serves_https_with_a_certificate_of_the_endpoint_ca_naming_its_addresses(setup):
    store, cloud, spec = setup
    spec = spec.model_copy(update={"tls_names": ["predict.example.org"]})
    playbooks = Playbooks()
    rollout.deploy("web:1", spec, store, cloud, configure=playbooks, wheelhouse_dir=Path("/wh"))
    state = endpoint_state("web")
    assert cloud.stacks["endpoint-web"]["serving_scheme"] == "https"
    assert state.load()["outputs"]["endpoint_urls"] == ["https://203.0.113.10:8000", "https://203.0.113.11:8000"]
    assert _sans(state.tls_dir / "web-0.pem") == (["predict.example.org", "web-0"], ["10.43.0.10", "203.0.113.10"])
    assert _sans(state.tls_dir / "web-1.pem") == (["predict.example.org", "web-1"], ["10.43.0.11", "203.0.113.11"])
    for extravars in playbooks.extravars:  # the playbook copies the files; no key travels in its variables
        assert extravars["onnx_server_tls_source_dir"] == str(state.tls_dir)
        assert extravars["onnx_server_insecure_http"] is False
        assert "PRIVATE KEY" not in str(extravars)


def test_an_endpoint_file_asking_for_plain_http_gets_http_urls_and_no_certificate(setup):
    store, cloud, spec = setup
    playbooks = Playbooks()
    rollout.deploy("web:1", spec.model_copy(update={"insecure_http": True}), store, cloud, configure=playbooks,
                   wheelhouse_dir=Path("/wh"))
    state = endpoint_state("web")
    assert state.load()["outputs"]["endpoint_urls"][0].startswith("http://")
    assert not state.tls_dir.exists()
    assert playbooks.extravars[0]["onnx_server_tls_source_dir"] == ""
    assert playbooks.extravars[0]["onnx_server_insecure_http"] is True


def test_a_stack_made_with_http_urls_is_updated_to_https_on_the_next_deploy(setup):
    store, cloud, spec = setup
    rollout.deploy("web:1", spec, store, cloud, configure=Playbooks(), wheelhouse_dir=Path("/wh"))
    cloud.stacks["endpoint-web"]["serving_scheme"] = "http"  # as a stack made before the servers spoke TLS
    rollout.deploy("web:2", spec, store, cloud, configure=Playbooks(), wheelhouse_dir=Path("/wh"))
    assert [action for _, action, _ in cloud.waits] == ["CREATE", "UPDATE"]
    assert endpoint_state("web").load()["outputs"]["endpoint_urls"][0].startswith("https://")


def test_endpoints_show_reads_the_nodes_through_the_endpoint_ca_and_prints_its_path(cli, monkeypatch):
    _, path = cli
    assert CliRunner().invoke(app, ["deploy", "web:1", "-e", "web", "-f", path]).exit_code == 0
    reached = []
    monkeypatch.setattr(rollout, "node_status", lambda url, token, model, ca_file=None: reached.append(
        (url, ca_file)) or {"url": url, "ready": True, "versions": ["1"], "requests": 3, "requests_per_s": 0.5})
    shown = CliRunner().invoke(app, ["endpoints", "show", "web"])
    assert shown.exit_code == 0, shown.output
    ca_file = endpoint_state("web").ca_file
    assert [c for _, c in reached] == [ca_file, ca_file]
    assert f"CA certificate: {ca_file}" in " ".join(shown.output.split())


def test_endpoints_show_says_what_is_captured_and_until_when_the_nodes_may_write_it(cli, monkeypatch, tmp_path):
    _, path = cli
    capturing = tmp_path / "capturing.yaml"
    capturing.write_text(Path(path).read_text() + "capture_rate: 0.05\ncapture_url_days: 3\n")
    assert CliRunner().invoke(app, ["deploy", "web:1", "-e", "web", "-f", str(capturing)]).exit_code == 0
    monkeypatch.setattr(rollout, "node_status", lambda url, token, model, ca_file=None: {"url": url, "ready": True})
    shown = " ".join(CliRunner().invoke(app, ["endpoints", "show", "web"]).output.split())
    lapse = endpoint_state("web").history()[-1]["captures"]["url_expires"]
    assert f"Captures: 5% of requests into {endpoint_state('web').load()['store']}/captures" in shown
    assert f"through a signed URL valid until {lapse}" in shown

    state = endpoint_state("web")
    history = state.history()
    history[-1]["captures"]["url_expires"] = "2026-01-01T00:00:00+00:00"
    state.save(history=history)
    shown = " ".join(CliRunner().invoke(app, ["endpoints", "show", "web"]).output.split())
    assert "its signed URL lapsed at 2026-01-01T00:00:00+00:00: nothing is captured until a deploy" in shown


def test_endpoints_ca_prints_or_writes_the_ca_here_and_on_a_machine_holding_only_the_shared_record(
        cli, monkeypatch, tmp_path):
    _, path = cli
    assert CliRunner().invoke(app, ["deploy", "web:1", "-e", "web", "-f", path]).exit_code == 0
    pem = endpoint_state("web").ca_file.read_text()
    printed = CliRunner().invoke(app, ["endpoints", "ca", "web"])
    assert printed.exit_code == 0 and printed.stdout == pem
    with monkeypatch.context() as runner_vm:
        runner_vm.setenv("DATAOPS_ENDPOINTS_DIR", str(tmp_path / "runner-vm"))
        written = CliRunner().invoke(app, ["endpoints", "ca", "web", "-o", str(tmp_path / "web-ca.pem")])
        assert written.exit_code == 0, written.output
        assert (tmp_path / "web-ca.pem").read_text() == pem


def test_endpoints_ca_of_a_plain_http_endpoint_says_it_has_none(cli, tmp_path):
    _, path = cli
    Path(path).write_text(ENDPOINT_FILE + "insecure_http: true\n")
    assert CliRunner().invoke(app, ["deploy", "web:1", "-e", "web", "-f", path]).exit_code == 0
    result = CliRunner().invoke(app, ["endpoints", "ca", "web"])
    assert result.exit_code == 1
    assert "endpoint web serves plain HTTP" in " ".join(result.output.split())


def test_an_endpoint_turned_to_plain_http_no_longer_hands_out_its_old_ca(cli):
    cloud, path = cli
    assert CliRunner().invoke(app, ["deploy", "web:1", "-e", "web", "-f", path]).exit_code == 0
    Path(path).write_text(ENDPOINT_FILE + "insecure_http: true\n")
    assert CliRunner().invoke(app, ["deploy", "web:1", "-e", "web", "-f", path]).exit_code == 0
    assert endpoint_state("web").load()["outputs"]["endpoint_urls"][0].startswith("http://")
    assert CliRunner().invoke(app, ["endpoints", "ca", "web"]).exit_code == 1
    assert SharedRecords(cloud.records, "endpoints").get("web")["ca_certificate"] is None
