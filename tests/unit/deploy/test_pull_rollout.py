"""A machine holding neither the endpoint's SSH key nor a path to its network (a schedule runner's watch) rolls a
version out through the endpoint's store: one node more per generation of desired.json, each confirmed by that
node's follower before the next; the first refusal or silence puts every node back on the version before. The deploy
joins the endpoint's shared history, which the operator's machine adopts. The followers are the real ones, stepped
whenever the rollout waits; their server is a stand-in (tests/support/followers.py)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from orchestrator.artifacts.records import SharedRecords
from orchestrator.cli.main import app
from orchestrator.clusters.provision import Progress
from orchestrator.deploy import rollout
from orchestrator.deploy.pull import NodesDoNotFollow, PullRollout, read_desired
from orchestrator.deploy.state import endpoint_state
from orchestrator.errors import DeployFailed
from orchestrator.usecases import deploy as deploy_use_cases
from orchestrator.usecases.watch_targets import EndpointTarget
from support.endpoint_fakes import Playbooks
from support.followers import follower

NODES = ["web-0", "web-1"]


class Nodes:
    """The endpoint's nodes, each serving ``web:1``, their followers stepped while the rollout waits."""

    def __init__(self, store, folder, refuse: dict[str, set] | None = None, silent=()):
        self.followers = {node: follower(store, "web", node, folder / node, ("web", 1), (refuse or {}).get(node, ()))
                          for node in NODES}
        self.silent, self.store = set(silent), store
        self.seen: list[dict[str, int]] = []  # what each node served at every wait

    def step(self, seconds: float) -> None:
        for node, one in self.followers.items():
            if node not in self.silent:
                one.step()
        self.seen.append(self.serving())

    def serving(self) -> dict[str, int]:
        return {node: one.server.serving("web") for node, one in self.followers.items()}


@pytest.fixture()
def pushed(setup):
    """The operator's push of web:1 wrote the first generation (a push: the followers stand aside)."""
    store, cloud, spec = setup
    rollout.deploy("web:1", spec, store, cloud, configure=Playbooks())
    return store


def rollout_of(store, nodes: Nodes, **settings) -> PullRollout:
    return PullRollout(store, "web", NODES, Progress(), sleep=nodes.step, **settings)


def test_a_pull_rollout_moves_one_node_at_a_time_and_records_the_deploy(pushed, tmp_path):
    nodes, kept = Nodes(pushed, tmp_path), []

    entry = rollout_of(pushed, nodes).deploy("web", 2, ("web", 1), kept.append)

    assert entry["status"] == "succeeded" and entry["mode"] == "pull" and kept == [entry]
    assert nodes.serving() == {"web-0": 2, "web-1": 2}
    mixed = [seen for seen in nodes.seen if seen == {"web-0": 2, "web-1": 1}]
    assert mixed and {"web-0": 1, "web-1": 2} not in nodes.seen, "web-0 first, web-1 only after it answered"


def test_a_refusal_puts_every_node_back_on_the_version_before(pushed, tmp_path):
    nodes, kept = Nodes(pushed, tmp_path, refuse={"web-1": {2}}), []

    with pytest.raises(DeployFailed) as failed:
        rollout_of(pushed, nodes).deploy("web", 2, ("web", 1), kept.append)

    assert "stopped on web-1: refused it: version 2: example 0" in str(failed.value)
    assert "web:1 keeps serving on every node" in str(failed.value)
    assert nodes.serving() == {"web-0": 1, "web-1": 1}, "web-0 had moved on: it came back"
    assert [(e["status"], e["failed_on"]) for e in kept] == [("failed", "web-1")]


def test_a_node_whose_follower_does_not_answer_ends_the_rollout_in_time(pushed, tmp_path):
    nodes, kept = Nodes(pushed, tmp_path, silent={"web-0"}), []

    with pytest.raises(DeployFailed) as failed:
        rollout_of(pushed, nodes, node_timeout_s=5).deploy("web", 2, ("web", 1), kept.append)

    assert "no answer for generation" in str(failed.value) and "web-0 did not confirm" in str(failed.value)
    assert nodes.serving() == {"web-0": 1, "web-1": 1} and len(nodes.seen) <= 14


def test_an_endpoint_whose_nodes_have_no_followers_is_refused_saying_how_to_give_them_some(setup, tmp_path):
    store, _, _ = setup
    with pytest.raises(NodesDoNotFollow, match="deploy it once from the operator's machine"):
        rollout_of(store, Nodes(store, tmp_path)).deploy("web", 2, ("web", 1), lambda entry: None)


def test_the_operators_machine_adopts_what_a_watch_deployed_elsewhere(cli, monkeypatch, tmp_path):
    cloud, path = cli
    assert CliRunner().invoke(app, ["deploy", "web:1", "-e", "web", "-f", path]).exit_code == 0
    store = endpoint_store(monkeypatch)
    nodes = Nodes(store, tmp_path / "nodes")
    monkeypatch.setattr(deploy_use_cases, "PullRollout", lambda *args, **kwargs: PullRollout(*args, sleep=nodes.step,
                                                                                             **kwargs))
    with monkeypatch.context() as runner_vm:  # none of this machine's folders, the same cloud and store
        runner_vm.setenv("DATAOPS_ENDPOINTS_DIR", str(tmp_path / "runner-vm"))
        target = EndpointTarget("web")
        assert target.not_deployable_here() is None
        target.deploy(store, "ignored", "web", 2)
        assert target.served().version == 2
    assert nodes.serving() == {"web-0": 2, "web-1": 2}
    shared = SharedRecords(cloud.records, "endpoints").get("web")
    assert [(e["version"], e["status"]) for e in shared["history"]] == [(1, "succeeded"), (2, "succeeded")]

    assert EndpointTarget("web").served().version == 2
    assert endpoint_state("web").serving()["version"] == 2, "the operator's record adopted the watch's deploy"
    monkeypatch.setattr(rollout, "node_status", lambda url, token, model, ca_file=None: {"url": url, "ready": True,
                        "versions": ["2"], "requests": 3, "requests_per_s": 0.5})
    shown = CliRunner().invoke(app, ["endpoints", "show", "web"])
    assert "web:2" in shown.output and "through the store" in shown.output, shown.output
    assert read_desired(store, "web").mode == "pull"

    assert CliRunner().invoke(app, ["undeploy", "web"]).exit_code == 0
    assert list(store.list("endpoints/web/")) == [], "what the nodes followed and reported goes with them"


def endpoint_store(monkeypatch):
    return deploy_use_cases.open_store("the endpoint's store")


def test_a_watch_elsewhere_of_an_endpoint_without_followers_hands_over_saying_why(cli, monkeypatch, tmp_path):
    cloud, path = cli
    assert CliRunner().invoke(app, ["deploy", "web:1", "-e", "web", "-f", path]).exit_code == 0
    endpoint_store(monkeypatch).delete("endpoints/web/desired.json")
    monkeypatch.setenv("DATAOPS_ENDPOINTS_DIR", str(tmp_path / "runner-vm"))
    why = EndpointTarget("web").not_deployable_here()
    assert "do not follow its store" in why and "dataops approve web" in why


def test_a_watch_elsewhere_is_told_when_the_nodes_urls_have_lapsed(cli, monkeypatch, tmp_path):
    cloud, path = cli
    assert CliRunner().invoke(app, ["deploy", "web:1", "-e", "web", "-f", path]).exit_code == 0
    records = SharedRecords(cloud.records, "endpoints")
    record = records.get("web")
    record["history"][-1]["follow"]["url_expires"] = "2026-01-01T00:00:00+00:00"
    records.put("web", record)
    monkeypatch.setenv("DATAOPS_ENDPOINTS_DIR", str(tmp_path / "runner-vm"))
    with pytest.raises(NodesDoNotFollow, match="lapsed on 2026-01-01.* deploy it once more"):
        EndpointTarget("web").deploy(endpoint_store(monkeypatch), "ignored", "web", 2)
