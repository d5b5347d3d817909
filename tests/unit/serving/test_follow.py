"""A node's follower serves what the store's desired.json names for its node, once per generation: it fetches the
version checked against the registry's sha256, serves it instead of the model's other versions, and says what came
of it in its own status. It stands aside for the operator's push, puts back what it served when the server refuses
a version, and after a restart does not act twice. The store is a local folder and the server a stand-in that loads
the repository folder (tests/integration/serving/test_follow_store.py runs the real server against Swift)."""

from __future__ import annotations

import pytest

from orchestrator.deploy.pull import model_entry, write_desired
from orchestrator.registry.models import ModelRegistry
from orchestrator.serving.desired import PULL, PUSH, REFUSED, SERVED
from orchestrator.serving.follow import FollowError
from support.followers import TempUrlStore, follower, status_of
from support.tiny_models import build_model_folder


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("follow")
    store = TempUrlStore(root / "store")
    registry = ModelRegistry(store)
    for seed in (0, 1, 2):
        registry.register(build_model_folder(root / f"m{seed}", name="web", seed=seed, rows=200), "web")
    return store


@pytest.fixture()
def endpoint(request):
    return request.node.name.replace("_", "-")[5:40]


def name(store, endpoint, mode, version, nodes=("web-0",)):
    return write_desired(store, endpoint, mode, {n: model_entry(store, "web", version) for n in nodes}, "test")


def versions_on_disk(node) -> list[str]:
    return sorted(p.name for p in (node.config.repository_dir / "web").iterdir())


def test_a_pull_generation_is_served_instead_of_the_other_versions_and_reported(store, endpoint, tmp_path):
    node = follower(store, endpoint, "web-0", tmp_path, serving=("web", 1))
    generation = name(store, endpoint, PULL, 2).generation

    status = node.step()

    assert (status.state, status.version, status.generation) == (SERVED, 2, generation)
    assert node.server.serving("web") == 2 and versions_on_disk(node) == ["2"]
    assert status_of(store, endpoint, "web-0")["state"] == SERVED
    assert node.applied() == generation and node.step() is None, "a generation is acted on once"


def test_the_operators_push_is_noted_and_left_alone(store, endpoint, tmp_path):
    node = follower(store, endpoint, "web-0", tmp_path, serving=("web", 1))
    name(store, endpoint, PUSH, 2)
    assert node.step() is None
    assert node.server.serving("web") == 1 and node.server.loads == 1, "the push's playbook does the node's work"
    assert not store.exists(f"endpoints/{endpoint}/nodes/web-0.json")


def test_a_generation_naming_another_node_or_the_version_served_only_confirms(store, endpoint, tmp_path):
    node = follower(store, endpoint, "web-0", tmp_path, serving=("web", 1))
    name(store, endpoint, PULL, 2, nodes=("web-1",))
    assert node.step() is None and node.server.serving("web") == 1
    name(store, endpoint, PULL, 1)
    assert node.step().state == SERVED and node.server.loads == 1, "nothing to load: it already serves it"


def test_a_version_the_server_refuses_is_taken_out_and_the_one_served_kept(store, endpoint, tmp_path):
    node = follower(store, endpoint, "web-0", tmp_path, serving=("web", 1), refuse={2})
    name(store, endpoint, PULL, 2)

    status = node.step()

    assert (status.state, status.version) == (REFUSED, 1) and "example 0" in status.reason
    assert node.server.serving("web") == 1 and versions_on_disk(node) == ["1"]
    assert not list(node.config.stash_dir.iterdir()), "nothing is left aside"


def test_a_lower_version_rolls_the_node_back(store, endpoint, tmp_path):
    node = follower(store, endpoint, "web-0", tmp_path, serving=("web", 3))
    name(store, endpoint, PULL, 1)
    assert node.step().version == 1 and node.server.serving("web") == 1 and versions_on_disk(node) == ["1"]


def test_a_file_that_is_not_the_registrys_is_refused_without_touching_what_is_served(store, endpoint, tmp_path):
    node = follower(store, endpoint, "web-0", tmp_path, serving=("web", 1))
    entry = {**model_entry(store, "web", 2), "model_sha256": "0" * 64}
    write_desired(store, endpoint, PULL, {"web-0": entry}, "test")

    status = node.step()

    assert status.state == REFUSED and "sha256" in status.reason
    assert node.server.serving("web") == 1 and versions_on_disk(node) == ["1"]


def test_a_status_that_cannot_be_written_is_written_at_the_next_poll(store, endpoint, tmp_path):
    node = follower(store, endpoint, "web-0", tmp_path, serving=("web", 1))
    generation = name(store, endpoint, PULL, 2).generation
    report = node.channel.report

    def store_unreachable(status):
        raise FollowError("writing the node's status: timed out")

    node.channel.report = store_unreachable
    with pytest.raises(FollowError):
        node.step()
    assert node.applied() < generation
    node.channel.report = report
    assert node.step().state == SERVED and status_of(store, endpoint, "web-0")["generation"] == generation


def test_a_restarted_follower_does_not_act_twice(store, endpoint, tmp_path):
    first = follower(store, endpoint, "web-0", tmp_path / "node", serving=("web", 1), refuse={2})
    name(store, endpoint, PULL, 2)
    assert first.step().state == REFUSED
    restarted = type(first)(first.config, first.channel, first.server, first.fetch)
    assert restarted.step() is None and first.server.loads == 3, "one refused load, one to put version 1 back"
