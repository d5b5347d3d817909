"""A real inference server and its real follower process, which holds no cloud credential, only two URLs signed by
the Swift store of the control plane: a pull rollout through the store moves the server from version 1 to version
2 while a client keeps sending requests (none fails), refuses a version whose card examples the server cannot
reproduce (version 2 keeps serving), and rolls back to version 1. No signed URL reaches the follower's log."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time

import pytest
from support.live_server import TOKEN, RunningServer, free_port
from support.tiny_models import build_model_folder, valid_row

from orchestrator.artifacts.swift import SwiftStore
from orchestrator.clusters.provision import Progress
from orchestrator.deploy.pull import PullRollout, follower_urls, model_entry, read_status, write_desired
from orchestrator.errors import DeployFailed
from orchestrator.registry.models import ModelRegistry
from orchestrator.serving.desired import PUSH, SERVED

pytestmark = [pytest.mark.integration, pytest.mark.openstack]
ENDPOINT, NODE, MODEL = "followed", "followed-0", "flights-delay"


@pytest.fixture()
def node(models, swift_container, tmp_path):
    """Versions 1, 2 and a broken 3 in a Swift registry; a server on loopback serving version 1 as a push left it,
    and its follower, started with the URLs a deploy signs."""
    store = SwiftStore(swift_container)
    registry = ModelRegistry(store)
    broken = build_model_folder(tmp_path / "broken", MODEL, 3, seed=7)
    card = json.loads((broken / "model_card.json").read_text())
    card["examples"]["outputs"]["label"] = [1 - v for v in card["examples"]["outputs"]["label"]]
    (broken / "model_card.json").write_text(json.dumps(card))
    for folder in (models["v1"], models["v2"], broken):
        registry.register(folder, MODEL)
    repository = tmp_path / "models"
    shutil.copytree(models["v1"], repository / MODEL / "1")
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    server = RunningServer([sys.executable, "-m", "orchestrator.serving", "--repository-dir", str(repository),
                            "--token-file", str(token_file)], free_port(), tmp_path / "server.log").wait_ready()
    write_desired(store, ENDPOINT, PUSH, {NODE: model_entry(store, MODEL, 1)}, "operator")
    config = tmp_path / "onnx-follow.json"  # its name on a node: a credential by purpose
    config.write_text(json.dumps({"endpoint": ENDPOINT, "node": NODE, "every_s": 1, "server_url": server.base_url,
                                  "token_file": str(token_file), "repository_dir": str(repository),
                                  "stash_dir": str(tmp_path / "stash"), "state_file": str(tmp_path / "state"),
                                  **follower_urls(store, ENDPOINT, NODE, 600)}))
    config.chmod(0o600)
    log = tmp_path / "follow.log"
    with open(log, "wb") as out:
        follower = subprocess.Popen([sys.executable, "-m", "orchestrator.serving.follow", str(config)], stdout=out,
                                    stderr=subprocess.STDOUT)
    try:
        yield store, server, log
    finally:
        follower.terminate()
        follower.wait(15)
        server.stop()


class Client(threading.Thread):
    def __init__(self, server):
        super().__init__(daemon=True)
        self.server, self.stop, self.versions, self.failures = server, threading.Event(), {}, []

    def run(self):
        headers = {"Authorization": f"Bearer {TOKEN}"}
        while not self.stop.is_set():
            try:
                status, body = self.server.json("POST", f"/v2/models/{MODEL}/predict", {"records": [valid_row()]},
                                                headers)
            except OSError as exc:
                self.failures.append(repr(exc))
                continue
            if status != 200:
                self.failures.append(f"HTTP {status}: {body}")
            else:
                self.versions[body["model_version"]] = self.versions.get(body["model_version"], 0) + 1


def serving(server) -> int:
    status, body = server.json("GET", f"/v2/models/{MODEL}", headers={"Authorization": f"Bearer {TOKEN}"})
    return int(body["versions"][0])


def test_a_pull_rollout_through_the_store_moves_refuses_and_rolls_back_a_live_server(node):
    store, server, log = node
    rollout = PullRollout(store, ENDPOINT, [NODE], Progress(), node_timeout_s=120, poll_s=0.5)
    client = Client(server)
    client.start()
    started = time.monotonic()
    entry = rollout.deploy(MODEL, 2, (MODEL, 1), lambda entry: None)
    took = time.monotonic() - started
    time.sleep(0.5)
    client.stop.set()
    client.join(30)

    assert entry["status"] == "succeeded" and serving(server) == 2
    assert client.failures == [], client.failures[:3]
    assert client.versions.get(1) and client.versions.get(2), client.versions
    assert read_status(store, ENDPOINT, NODE).state == SERVED
    print(f"pull rollout of one node: {took:.1f} s, {sum(client.versions.values())} requests answered meanwhile")

    with pytest.raises(DeployFailed, match="refused it: .*example"):
        rollout.deploy(MODEL, 3, (MODEL, 2), lambda entry: None)
    assert serving(server) == 2 and read_status(store, ENDPOINT, NODE).state == SERVED, "put back and confirmed"

    rollout.deploy(MODEL, 1, (MODEL, 2), lambda entry: None)
    assert serving(server) == 1
    assert "the server refused flights-delay:3" in log.read_text()
    assert "temp_url_sig" not in log.read_text() and "temp_url_sig" not in server.log_text()
