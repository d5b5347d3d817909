"""What a watch is bound to, and how a new version reaches it: an inference endpoint (its rolling deploy, node by
node, smoke-tested) or a local inference server (its repository API: the version's folder is placed in the server's
repository folder, loaded beside the one serving, and checked ready).

A target answers two questions, which version it serves (and since when) and how to serve another, and describes
itself for the loop's records, so that a person approving a waiting challenger later deploys it the same way.
"""

from __future__ import annotations

import json
import shutil
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import quote, urlparse

from orchestrator.artifacts.store import ArtifactStore
from orchestrator.errors import DataopsError
from orchestrator.registry.models import ModelRegistry
from orchestrator.scheduling.state import parse_instant
from orchestrator.serving.repository import place_folder

ENDPOINT, SERVER = "endpoint", "server"
# Loading builds a session per version and scores the card's examples: seconds, a minute for a big forest.
LOAD_TIMEOUT_S = 600.0
REQUEST_TIMEOUT_S = 30.0


class WatchTargetError(DataopsError):
    """The watched endpoint or server cannot be read or updated from this machine; the message says why."""

    exit_code = 25


@dataclass(frozen=True)
class ServedModel:
    """The version a target serves.

    Attributes:
        model: The model's name.
        version: Its version.
        since: When it started serving, if the target knows (an endpoint's deploy); else None.
        store: The store it was deployed from, if the target knows (an endpoint's record).
    """

    model: str
    version: int
    since: datetime | None = None
    store: str | None = None


class Target(Protocol):
    """What a watch needs of whatever serves the model."""

    kind: str

    def served(self) -> ServedModel:
        """The version serving now."""

    def deploy(self, store: ArtifactStore, store_location: str, model: str, version: int) -> dict:
        """Serve ``model:version`` instead; return the deploy record (``model``, ``version``, ``deployed_at``...)."""

    def not_deployable_here(self) -> str | None:
        """None when this machine can deploy to the target; else why not and where it can be done."""

    def describe(self) -> dict:
        """The target as the loop's records keep it (never a secret: a token file is kept by its path)."""


# ---- an endpoint ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EndpointTarget:
    """An inference endpoint made by ``dataops deploy``."""

    endpoint: str
    kind: str = ENDPOINT

    def served(self) -> ServedModel:
        """The endpoint's last successful deploy (from this machine's record, else the cloud's shared one).

        Raises:
            EndpointNotFound: no record of the endpoint here nor in the shared records.
            DataopsError: the endpoint serves nothing yet.
        """
        from orchestrator.deploy.state import endpoint_state
        from orchestrator.usecases.drift import served_by

        model, version, store = served_by(self.endpoint)
        state = endpoint_state(self.endpoint)
        if state.exists():
            history = state.history()
        else:
            from orchestrator.usecases.deploy import shared_endpoint

            history = (shared_endpoint(self.endpoint) or {}).get("history", [])
        done = [e for e in history if e.get("status") == "succeeded" and (e["model"], int(e["version"])) ==
                (model, version)]
        return ServedModel(model, version, parse_instant(done[-1].get("deployed_at")) if done else None, store)

    def deploy(self, store: ArtifactStore, store_location: str, model: str, version: int) -> dict:
        """The endpoint's rolling deploy of ``model:version``: over SSH from the machine that deployed it, else
        through the endpoint's store, which each node's follower reads.

        Raises:
            WatchTargetError: the endpoint can be deployed from neither.
            DeployFailed: a node refused the version; the one serving before keeps serving.
        """
        from orchestrator.clusters.provision import Progress
        from orchestrator.deploy.state import endpoint_state
        from orchestrator.usecases.deploy import deploy_model, pull_deploy_model

        if why := self.not_deployable_here():
            raise WatchTargetError(why)
        if endpoint_state(self.endpoint).exists():
            return deploy_model(f"{model}:{version}", self.endpoint, None, store_location, Progress())
        return pull_deploy_model(self.endpoint, model, version, Progress())

    def not_deployable_here(self) -> str | None:
        from orchestrator.deploy.state import endpoint_state
        from orchestrator.usecases.deploy import nodes_follow_the_store

        state = endpoint_state(self.endpoint)
        if state.exists() or nodes_follow_the_store(self.endpoint):
            return None
        return (f"endpoint {self.endpoint} is not held by this machine, and its nodes do not follow its store "
                f"(deployed by an earlier version): its rolling deploy needs the endpoint's state (its SSH key and "
                f"token, in {state.directory}) on the machine that ran `dataops deploy`; deploy it once more from "
                f"there to install the nodes' followers, or approve the challenger there "
                f"(`dataops approve {self.endpoint}`)")

    def describe(self) -> dict:
        return {"kind": ENDPOINT, "endpoint": self.endpoint}


# ---- a local server -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ServerTarget:
    """An inference server reached at ``url`` (``dataops serve``), serving ``model``.

    Attributes:
        url: The server's base URL, ``http://127.0.0.1:8080``.
        model: The model the watch follows.
        token_file: The server's bearer token file, if it asks for one.
        repository_dir: The server's ``--repository-dir``: where a new version's folder is placed for it to load.
    """

    url: str
    model: str
    token_file: Path | None = None
    repository_dir: Path | None = None
    kind: str = SERVER

    def __post_init__(self) -> None:
        parsed = urlparse(self.url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise WatchTargetError(f"--server {self.url!r}: expected the server's base URL, such as "
                                   "http://127.0.0.1:8080")

    def _headers(self) -> dict:
        if self.token_file is None:
            return {}
        try:
            token = Path(self.token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise WatchTargetError(f"cannot read the server's token file {self.token_file}: {exc.strerror}") from None
        return {"Authorization": f"Bearer {token}"}

    def _call(self, method: str, path: str, timeout: float = REQUEST_TIMEOUT_S) -> tuple[int, dict]:
        request = urllib.request.Request(self.url.rstrip("/") + path, method=method, headers=self._headers(),
                                         data=b"" if method == "POST" else None)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status, body = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, body = exc.code, exc.read()
        except (urllib.error.URLError, OSError) as exc:
            raise WatchTargetError(f"cannot reach the inference server at {self.url}: "
                                   f"{getattr(exc, 'reason', exc)}") from None
        try:
            return status, json.loads(body) if body else {}
        except ValueError:
            return status, {"error": body.decode("utf-8", "replace")[:200]}

    def served(self) -> ServedModel:
        """The version the server answers with when none is asked for (its metadata API).

        Raises:
            WatchTargetError: the server cannot be reached, refuses the token, or does not serve the model.
        """
        status, body = self._call("GET", f"/v2/models/{quote(self.model)}")
        if status == 401:
            raise WatchTargetError(f"the server at {self.url} refused the token: give its --token-file")
        if status != 200 or not body.get("versions"):
            raise WatchTargetError(f"the server at {self.url} does not serve {self.model}: HTTP {status}: "
                                   f"{body.get('error', body)}")
        return ServedModel(self.model, int(body["versions"][0]))

    def deploy(self, store: ArtifactStore, store_location: str, model: str, version: int) -> dict:
        """Place the version's folder in the server's repository folder, load it, and check it answers.

        The server loads the new version beside the one serving and switches only once it reproduces its card's
        examples: requests never wait and never fail meanwhile.

        Raises:
            WatchTargetError: no repository folder was given, the server refused the version, or another one still
                answers.
        """
        if why := self.not_deployable_here():
            raise WatchTargetError(why)
        started = time.monotonic()
        source = ModelRegistry(store).folder(f"{model}:{version}")
        place(source, Path(self.repository_dir) / model / str(version))
        status, body = self._call("POST", f"/v2/repository/models/{quote(model)}/load", LOAD_TIMEOUT_S)
        if status != 200:
            raise WatchTargetError(f"the server at {self.url} refused {model}:{version}: HTTP {status}: "
                                   f"{body.get('error', body)}")
        status, body = self._call("GET", f"/v2/models/{quote(model)}/versions/{version}/ready")
        if status != 200:
            raise WatchTargetError(f"{model}:{version} is not ready on {self.url}: HTTP {status}")
        answering = self.served().version
        if answering != version:
            raise WatchTargetError(f"{model}:{version} is loaded on {self.url}, but version {answering} still answers "
                                   "requests that name no version")
        return {"model": model, "version": version, "server": self.url, "status": "succeeded",
                "deployed_at": datetime.now(UTC).isoformat(), "seconds": round(time.monotonic() - started, 3)}

    def not_deployable_here(self) -> str | None:
        if self.repository_dir is None:
            return (f"the server at {self.url} loads new versions from its --repository-dir: give the watch the "
                    "same folder (--repository-dir)")
        return None

    def describe(self) -> dict:
        return {"kind": SERVER, "server": self.url, "model": self.model,
                "token_file": str(self.token_file) if self.token_file else None,
                "repository_dir": str(self.repository_dir) if self.repository_dir else None}


def place(source: Path, folder: Path) -> None:
    """Copy a model folder to ``folder`` whole or not at all (a server scanning meanwhile never sees half of it)."""
    if (folder / "model_card.json").is_file():
        return
    place_folder(folder, lambda staging: shutil.copytree(source, staging, dirs_exist_ok=True))


def target_from_record(described: dict) -> Target:
    """The target a retrain record describes (for an approval given later, maybe on another machine).

    Raises:
        WatchTargetError: the record names no known kind of target.
    """
    if described.get("kind") == ENDPOINT:
        return EndpointTarget(described["endpoint"])
    if described.get("kind") == SERVER:
        return ServerTarget(described["server"], described["model"],
                            Path(described["token_file"]) if described.get("token_file") else None,
                            Path(described["repository_dir"]) if described.get("repository_dir") else None)
    raise WatchTargetError(f"the retrain record names no target this version knows: {described!r}")
