"""Nodes' followers without nodes: the real ``Follower`` reading and writing the store directly (as its signed URLs
let it), fetching by the key its URL names, beside a stand-in server that loads the repository folder as the real
server's repository API does (highest version answers; a refused load leaves what was served)."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlparse

from orchestrator.artifacts.local import LocalStore
from orchestrator.registry.models import PREFIX
from orchestrator.serving.desired import desired_key, parse_desired, status_key
from orchestrator.errors import ArtifactError
from orchestrator.serving.follow import FollowConfig, FollowError, Follower


class TempUrlStore(LocalStore):
    """A local store that can hand out (fake) TempURLs, as the Swift store does: it is its own URL signer."""

    def url_signer(self):
        return self

    signed: list[tuple] = []

    def temp_url(self, key, expires_in, method="GET", *, prefix=False, check=True):
        assert not check or method != "GET" or prefix or self.exists(key)
        self.signed.append((key, expires_in, method, prefix))
        return f"https://swift.test/{key}?temp_url_sig=x"


class StoreChannel:
    def __init__(self, store, endpoint: str, node: str):
        self.store, self.endpoint, self.node = store, endpoint, node

    def desired(self):
        key = desired_key(self.endpoint)
        return parse_desired(self.store.get_bytes(key)) if self.store.exists(key) else None

    def report(self, status):
        assert status.node == self.node, "a node writes its own status alone"
        self.store.put_bytes(status_key(self.endpoint, self.node), status.to_json())


class FolderServer:
    """Loads what the repository folder holds; refuses the versions in ``refuse`` (their card's examples fail)."""

    def __init__(self, repository_dir: Path, refuse=()):
        self.repository_dir, self.refuse = repository_dir, set(refuse)
        self.loaded: dict[str, list[int]] = {}
        self.loads = 0

    def serving(self, name):
        return max(self.loaded[name]) if self.loaded.get(name) else None

    def load(self, name):
        self.loads += 1
        versions = sorted(int(p.name) for p in (self.repository_dir / name).iterdir()
                          if (p / "model_card.json").is_file()) if (self.repository_dir / name).is_dir() else []
        refused = self.refuse.intersection(versions)
        if refused:
            return f"version {min(refused)}: example 0 output 'label' differs"
        self.loaded[name] = versions
        return None


def store_fetcher(store):
    """Fetch by the key a URL names; like the real fetch, a file that is not the registry's is a FollowError."""
    def fetch(url, dest, sha256):
        try:
            store.get_file(urlparse(url).path.lstrip("/"), dest, sha256)
        except ArtifactError as exc:
            raise FollowError(f"fetching {dest.name}: {exc}") from None
    return fetch


def follower(store, endpoint: str, node: str, folder: Path, serving: tuple[str, int] | None = None,
             refuse=()) -> Follower:
    """A node's follower; with ``serving``, the node already serves that version (a push installed it)."""
    folder.mkdir(parents=True, exist_ok=True)
    config = FollowConfig(endpoint, node, "", "", "", folder / "token", folder / "models", folder / "stash",
                          folder / "follow.state")
    server = FolderServer(config.repository_dir, refuse)
    if serving:
        name, version = serving
        target = config.repository_dir / name / str(version)
        target.mkdir(parents=True)
        for file in ("model.onnx", "model_card.json"):
            store.get_file(f"{PREFIX}/{name}/{version}/{file}", target / file)
        assert server.load(name) is None
    return Follower(config, StoreChannel(store, endpoint, node), server, store_fetcher(store))


def status_of(store, endpoint, node) -> dict:
    return json.loads(store.get_bytes(status_key(endpoint, node)))
