"""The inference playbook, run for real with ansible-runner over SSH against a namespace host: it installs the
inference server alone, fetches models checked against their sha256, serves them behind a bearer token, rolls a
new version out, refuses a version whose card examples it cannot reproduce (the served version stays), rolls back,
and changes nothing when run again."""

from __future__ import annotations

import hashlib
import json
import secrets
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from orchestrator.ansible.inventory import Node, SshAccess, build_inventory
from orchestrator.ansible.playbook import run_playbook
from orchestrator.clusters.wheelhouse import pack_wheelhouse
from orchestrator.deploy.server_package import server_wheelhouse
from orchestrator.errors import ConfigurationFailed

from support.tiny_models import build_model_folder

pytestmark = [pytest.mark.integration, pytest.mark.netns]

NETNS_HOSTS = {"test-inference-0": "inference"}
PORT = 8000


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    """Versions 1 and 2 of a model, and a version 3 whose card records outputs the model does not give."""
    root = tmp_path_factory.mktemp("published")
    build_model_folder(root / "tiny" / "1", name="tiny", version=1, seed=0)
    build_model_folder(root / "tiny" / "2", name="tiny", version=2, seed=1)
    broken = shutil.copytree(root / "tiny" / "2", root / "tiny" / "3")
    card = json.loads((broken / "model_card.json").read_text())
    card["version"] = 3
    card["examples"]["outputs"]["label"] = [1 - v for v in card["examples"]["outputs"]["label"]]
    (broken / "model_card.json").write_text(json.dumps(card))
    return root


@pytest.fixture(scope="module")
def endpoint(netns_hosts, ssh_key, models, tmp_path_factory):
    """The inference host, a file server on our side of the bridge publishing the models, and the run settings."""
    host = netns_hosts["test-inference-0"]
    bridge_address = host.bridge.address
    files = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", bridge_address, "8765",
                              "--directory", str(models)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wheelhouse, packages = server_wheelhouse(tmp_path_factory.getbasetemp().parent / "dataops-server-wheelhouse")
    token = secrets.token_urlsafe(24)
    inventory = build_inventory([Node("test-inference-0", "inference", host.address)], SshAccess(private_key=ssh_key))
    yield {"host": host, "inventory": inventory, "token": token, "base": f"http://{bridge_address}:8765",
           "extravars": {"common_python_packages": packages, "common_wheelhouse_archive": str(pack_wheelhouse(wheelhouse)),
                         "onnx_server_token": token, "onnx_server_port": PORT,
                         # The role's plain-HTTP mode; its TLS mode is the deploy tests' (tests/integration/deploy/).
                         "onnx_server_insecure_http": True}}
    files.terminate()
    files.wait()


def _deploy(endpoint, models: Path, *versions: int):
    entries = [{"name": "tiny", "version": v,
                "model_url": f"{endpoint['base']}/tiny/{v}/model.onnx",
                "model_sha256": _sha256(models / "tiny" / str(v) / "model.onnx"),
                "card_url": f"{endpoint['base']}/tiny/{v}/model_card.json",
                "card_sha256": _sha256(models / "tiny" / str(v) / "model_card.json")} for v in versions]
    return run_playbook("inference.yml", endpoint["inventory"], {**endpoint["extravars"], "onnx_server_models": entries})


def _served_version(endpoint) -> str:
    request = urllib.request.Request(f"http://{endpoint['host'].address}:{PORT}/v2/models/tiny",
                                     headers={"Authorization": f"Bearer {endpoint['token']}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["versions"]


def test_the_first_deploy_serves_the_model_behind_the_token(endpoint, models):
    result = _deploy(endpoint, models, 1)
    assert result.total_changed > 0
    assert _served_version(endpoint) == ["1"]
    anonymous = urllib.request.Request(f"http://{endpoint['host'].address}:{PORT}/v2/models/tiny")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(anonymous, timeout=10)
    assert refused.value.code == 401


def test_deploying_the_same_version_again_changes_nothing(endpoint, models):
    assert _deploy(endpoint, models, 1).total_changed == 0


def test_a_new_version_replaces_the_old_one(endpoint, models):
    _deploy(endpoint, models, 2)
    assert _served_version(endpoint) == ["2"]


def test_a_version_that_fails_its_smoke_test_is_refused_and_the_served_version_stays(endpoint, models):
    with pytest.raises(ConfigurationFailed) as failure:
        _deploy(endpoint, models, 3)
    assert "example output 'label'" in str(failure.value), str(failure.value)
    assert "2" in _served_version(endpoint)


def test_rolling_back_serves_the_previous_version_again(endpoint, models):
    _deploy(endpoint, models, 1)
    assert _served_version(endpoint) == ["1"]
