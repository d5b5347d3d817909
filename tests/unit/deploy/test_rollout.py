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
from orchestrator.deploy.spec import EndpointSpec
from orchestrator.deploy.state import endpoint_state
from orchestrator.errors import ConfigurationFailed, DataopsError, DeployFailed
from orchestrator.openstack.stacks import Leftover, StackEvent, StackSummary
from orchestrator.registry import ModelRegistry
from orchestrator.usecases import clusters as cluster_use_cases
from orchestrator.usecases import deploy as deploy_use_cases

from support.tiny_models import build_model_folder


class TempUrlStore(LocalStore):
    """A local store that can hand out (fake) TempURLs, as the Swift store does: it is its own URL signer."""

    def url_signer(self):
        return self

    signed: list[tuple] = []

    def temp_url(self, key, expires_in, method="GET", *, prefix=False, check=True):
        assert not check or method != "GET" or prefix or self.exists(key)
        self.signed.append((key, expires_in, method, prefix))
        return f"https://swift.test/{key}?temp_url_sig=x"


class EndpointCloud:
    def __init__(self):
        self.stacks, self.keypairs = {}, set()
        self.ports = {"p1": "dataops-endpoint=web", "p2": "dataops-endpoint=other"}
        self.waits = []  # (stack, action, timeout in seconds) of every wait asked for

    def create_stack(self, name, template, environment_files, parameters, tags):
        assert template.name == "inference.yaml"
        self.stacks[name] = dict(parameters)

    def update_stack(self, name, template, environment_files, parameters):
        self.stacks[name] = dict(parameters)

    def wait_stack(self, name, action, on_event, timeout_s):
        self.waits.append((name, action, timeout_s))
        on_event(StackEvent(name, f"{action}_COMPLETE"))

    def stack_outputs(self, name):
        count, scheme = int(self.stacks[name]["node_count"]), self.stacks[name]["serving_scheme"]
        nodes = [{"name": f"web-{i}", "address": f"10.43.0.{10 + i}", "public_address": f"203.0.113.{10 + i}"}
                 for i in range(count)]
        return {"nodes": nodes, "endpoint_urls": [f"{scheme}://{n['public_address']}:8000" for n in nodes]}

    def find_stack(self, name):
        return StackSummary(name, "CREATE_COMPLETE") if name in self.stacks else None

    def delete_stack(self, name, timeout_s):
        self.waits.append((name, "DELETE", timeout_s))
        self.stacks.pop(name, None)

    def create_keypair(self, name, public_key, cluster):
        self.keypairs.add(name)

    def list_tagged(self, tag_prefix, owner):
        return [Leftover("port", p, owner) for p, tag in self.ports.items() if tag == f"{tag_prefix}{owner}"]

    def delete_leftover(self, leftover):
        if leftover.kind == "keypair":
            self.keypairs.discard(leftover.id)
        else:
            self.ports.pop(leftover.id, None)


class Playbooks:
    """Records each run (node, versions); refuses the versions listed in ``refuse``."""

    def __init__(self, refuse=()):
        self.runs, self.refuse, self.extravars = [], set(refuse), []

    def __call__(self, playbook, inventory, extravars, limit=None, on_event=None):
        versions = [m["version"] for m in extravars["onnx_server_models"]]
        self.runs.append((limit, versions))
        self.extravars.append(extravars)
        if set(versions) & self.refuse:
            raise ConfigurationFailed(f"{limit}: task 'Load the changed models' failed: example output 'label' differs")


@pytest.fixture()
def setup(tmp_path, monkeypatch):
    monkeypatch.setenv("DATAOPS_ENDPOINTS_DIR", str(tmp_path / "endpoints"))
    wheels = tmp_path / "wheelhouse"
    wheels.mkdir()
    monkeypatch.setattr(rollout, "server_wheelhouse", lambda folder, gpu: (wheels, ["dataops-inference-server==0.1.0"]))
    store = TempUrlStore(tmp_path / "store")
    registry = ModelRegistry(store)
    for seed in (0, 1):
        registry.register(build_model_folder(tmp_path / f"m{seed}", name="web", seed=seed), "web")
    spec = EndpointSpec(name="web", image="img", flavor="cpu", nodes=2, operator_cidr="127.0.0.1/32",
                        client_cidr="10.0.0.0/8")
    return store, EndpointCloud(), spec


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


ENDPOINT_FILE = """\
name: ignored
image: img
flavor: cpu
nodes: 2
operator_cidr: 127.0.0.1/32
client_cidr: 10.0.0.0/8
"""


@pytest.fixture()
def cli(setup, monkeypatch, tmp_path):
    """The CLI on the fake cloud and store, with the playbook runs faked; returns the cloud and the endpoint file."""
    store, cloud, _ = setup
    monkeypatch.setattr(deploy_use_cases, "open_store", lambda location: store)
    monkeypatch.setattr(cluster_use_cases, "open_cloud", lambda name: cloud)
    # The cloud's shared records: a folder standing in for its private container.
    cloud.records = LocalStore(tmp_path / "records-container")
    monkeypatch.setattr(cluster_use_cases, "open_records",
                        lambda name, kind="clusters": SharedRecords(cloud.records, kind))
    monkeypatch.setattr(rollout, "run_playbook", Playbooks())
    path = tmp_path / "endpoint.yaml"
    path.write_text(ENDPOINT_FILE)
    return cloud, str(path)


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
