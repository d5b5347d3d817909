"""The store's side of the nodes' followers (``orchestrator.serving.follow``): what ``desired.json`` names, the two
URLs each node is signed, and the rollout a machine without the endpoint's SSH key or network runs through the store
(a schedule runner's watch).

A pull rollout moves one node at a time: generation by generation it names the new version for one more node, and
waits until that node's follower reports it served. The first refusal (or a node that does not answer in time)
ends it: a last generation names the version served before for every node, and the rollout waits for the nodes it
touched to report it again.
"""

from __future__ import annotations

import getpass
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from orchestrator.artifacts.store import MANIFEST, ArtifactStore
from orchestrator.clusters.provision import Progress
from orchestrator.deploy.state import now
from orchestrator.errors import ArtifactNotFound, DataopsError, DeployFailed
from orchestrator.registry.models import PREFIX, ModelRegistry
from orchestrator.serving.desired import (
    PULL,
    SERVED,
    Desired,
    NodeStatus,
    desired_key,
    parse_desired,
    parse_status,
    status_key,
)

# Long enough for the slowest node of a rollout to fetch its files; the URLs are never logged.
MODEL_URL_SECONDS = 3600
# A follower polls every few seconds, then fetches and loads (a big forest takes a minute to check its examples).
NODE_TIMEOUT_S = 900.0
POLL_S = 1.0


class NodesDoNotFollow(DataopsError):
    """The endpoint's nodes were deployed without followers: only the operator's rollout over SSH reaches them."""


def model_entry(store: ArtifactStore, name: str, version: int) -> dict:
    """What a node needs to fetch one model version: short-lived URLs and the registry's sha256s."""
    signer = store.url_signer()
    if signer is None:
        raise DataopsError(
            f"deploying needs a Swift store (--store swift://CONTAINER): inference servers fetch models through "
            f"TempURLs, and {store.uri} cannot make them"
        )
    key = f"{PREFIX}/{name}/{version}"
    files = json.loads(store.get_bytes(f"{key}/{MANIFEST}"))["files"]
    return {
        "name": name, "version": version,
        "model_url": signer.temp_url(f"{key}/model.onnx", MODEL_URL_SECONDS),
        "model_sha256": files["model.onnx"]["sha256"],
        "card_url": signer.temp_url(f"{key}/model_card.json", MODEL_URL_SECONDS),
        "card_sha256": files["model_card.json"]["sha256"],
    }


def follower_urls(store: ArtifactStore, endpoint: str, node: str, seconds: int) -> dict:
    """The node's two URLs: read ``desired.json``, write its own status (each that one object alone)."""
    signer = store.url_signer()
    return {"desired_url": signer.temp_url(desired_key(endpoint), seconds, check=False),
            "status_url": signer.temp_url(status_key(endpoint, node), seconds, "PUT")}


def read_desired(store: ArtifactStore, endpoint: str) -> Desired | None:
    try:
        return parse_desired(store.get_bytes(desired_key(endpoint)), f"{store.uri}/{desired_key(endpoint)}")
    except ArtifactNotFound:
        return None


def write_desired(store: ArtifactStore, endpoint: str, mode: str, nodes: dict[str, dict], by: str) -> Desired:
    """Write the next generation. (The watch retrains one challenger at a time; an operator deploying by hand at
    the same moment is the one race left, and the later write wins.)"""
    current = read_desired(store, endpoint)
    desired = Desired(endpoint, (current.generation if current else 0) + 1, mode, nodes, now(), by)
    store.put_bytes(desired_key(endpoint), desired.to_json())
    return desired


def read_status(store: ArtifactStore, endpoint: str, node: str) -> NodeStatus | None:
    try:
        return parse_status(store.get_bytes(status_key(endpoint, node)), f"{store.uri}/{status_key(endpoint, node)}")
    except ArtifactNotFound:
        return None


@dataclass
class PullRollout:
    """A rollout through the store.

    Attributes:
        store: The endpoint's store (the one its nodes were signed URLs for).
        endpoint: The endpoint.
        nodes: Its nodes, in rollout order.
        progress: Step messages.
        node_timeout_s: Longest wait for one node's answer.
        poll_s: How often the nodes' statuses are read.
        sleep: The pause between reads (None: ``time.sleep``; tests pass a fake clock's).
    """

    store: ArtifactStore
    endpoint: str
    nodes: list[str]
    progress: Progress
    node_timeout_s: float = NODE_TIMEOUT_S
    poll_s: float = POLL_S
    sleep: Callable[[float], None] | None = None

    def deploy(self, name: str, version: int, previous: tuple[str, int], record: Callable[[dict], None]) -> dict:
        """Serve ``name:version`` on every node, one after the other; ``record`` keeps the deploy's entry (also
        when it fails). Returns the entry.

        Raises:
            NodesDoNotFollow: the endpoint was deployed before its nodes had followers.
            DeployFailed: a node refused the version or did not answer; every node is back on ``previous``.
        """
        if read_desired(self.store, self.endpoint) is None:
            raise NodesDoNotFollow(
                f"endpoint {self.endpoint}'s nodes do not follow {self.store.uri} (no "
                f"{desired_key(self.endpoint)}: it was deployed by an earlier version): deploy it once from the "
                f"operator's machine (`dataops deploy`), whose rollout installs the followers")
        started = time.monotonic()
        card = ModelRegistry(self.store).card(f"{name}:{version}")
        new, old = model_entry(self.store, name, version), model_entry(self.store, *previous)
        entry = {"model": name, "version": version, "run_id": card.get("lineage", {}).get("run_id"),
                 "deployed_by": f"{getpass.getuser()} (through the store)", "deployed_at": now(),
                 "nodes": list(self.nodes), "mode": PULL}
        for index, node in enumerate(self.nodes):
            self.progress.on_step(f"Naming {name}:{version} for {node} in {desired_key(self.endpoint)}")
            generation = self._write({n: new if i <= index else old for i, n in enumerate(self.nodes)})
            status, why = self._answer(node, generation)
            if status is None or status.state != SERVED or (status.name, status.version) != (name, version):
                kept = self._put_back(old, self.nodes[:index + 1])
                record({**entry, "status": "failed", "failed_on": node})
                raise DeployFailed(f"deploy of {name}:{version} to {self.endpoint} stopped on {node}: {why}\n{kept}")
        entry.update(status="succeeded", seconds=round(time.monotonic() - started, 1))
        record(entry)
        return entry

    def _write(self, nodes: dict[str, dict]) -> int:
        return write_desired(self.store, self.endpoint, PULL, nodes, getpass.getuser()).generation

    def _answer(self, node: str, generation: int) -> tuple[NodeStatus | None, str]:
        """The node's status for ``generation`` (or a later one), and what it says in words."""
        waited = 0.0
        while waited <= self.node_timeout_s:
            status = read_status(self.store, self.endpoint, node)
            if status is not None and status.generation >= generation:
                if status.state == SERVED:
                    return status, f"serves {status.name}:{status.version}"
                return status, f"refused it: {status.reason}"
            (self.sleep or time.sleep)(self.poll_s)
            waited += self.poll_s
        return None, (f"no answer for generation {generation} within {self.node_timeout_s:.0f} s (its follower is "
                      "not running, or cannot reach the store)")

    def _put_back(self, old: dict, touched: list[str]) -> str:
        """Name ``old`` for every node again and wait for the touched ones; say what serves where."""
        what = f"{old['name']}:{old['version']}"
        self.progress.on_step(f"Putting {', '.join(touched)} back on {what}")
        generation = self._write(dict.fromkeys(self.nodes, old))
        stuck = [node for node in touched if self._answer(node, generation)[0] is None]
        if stuck:
            return (f"{what} keeps serving on the nodes not yet rolled; {', '.join(stuck)} did not confirm it is "
                    "back on it")
        return f"{what} keeps serving on every node"
