"""The deploy tests' world: a store that signs (fake) TempURLs with two registered versions of model ``web``, a
fake cloud, an endpoint spec of 2 nodes, and (``cli``) the CLI wired to them with the cloud's shared records."""

from __future__ import annotations


import pytest

from orchestrator.artifacts.local import LocalStore
from orchestrator.artifacts.records import SharedRecords
from orchestrator.deploy import rollout
from orchestrator.deploy.spec import EndpointSpec
from orchestrator.registry import ModelRegistry
from orchestrator.usecases import clusters as cluster_use_cases
from orchestrator.usecases import deploy as deploy_use_cases

from support.endpoint_fakes import ENDPOINT_FILE, EndpointCloud, Playbooks
from support.followers import TempUrlStore
from support.tiny_models import build_model_folder


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


