"""``python -m orchestrator.serving.follow CONFIG``: the node's follower, which keeps the node serving what the
store's ``desired.json`` names for it (``orchestrator.serving.desired``), so that a machine holding neither the
endpoint's SSH key nor a path to its network (a schedule runner's watch) can roll a new version out.

Every few seconds it reads ``desired.json`` through its signed URL (a conditional GET: unchanged costs a 304). On a
``pull`` generation it has not acted on, it fetches the version named for its node (checked against the registry's
sha256), places it in the server's repository folder in place of the other versions of that model, and asks the
server to load it: the server loads it beside what it serves and switches only once the version reproduces its
card's examples, so no request waits or fails. A version the server refuses is taken out again and the earlier
folders put back; either way the follower writes what came of it to its own status object, and remembers the
generation in its state file so that a restart does not act twice. A ``push`` generation (the operator's rollout
over SSH) is noted and left alone.

The signed URLs are secrets: they are read from the 0600 config file and never logged.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import ssl
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

from orchestrator.serving.admin import error_message, server_request
from orchestrator.serving.desired import (
    PUSH,
    REFUSED,
    SERVED,
    Desired,
    DesiredStateError,
    NodeStatus,
    parse_desired,
)
from orchestrator.serving.repository import place_folder

log = logging.getLogger("dataops.follow")
CARD, ONNX = "model_card.json", "model.onnx"
REQUEST_TIMEOUT_S = 30.0
LOAD_TIMEOUT_S = 600.0
FETCH_TRIES = 3


class FollowError(RuntimeError):
    """The store or the server could not be reached; the step is tried again at the next poll."""


@dataclass(frozen=True)
class FollowConfig:
    """What the role writes to the node's 0600 follower file."""

    endpoint: str
    node: str
    desired_url: str
    status_url: str
    server_url: str
    token_file: Path
    repository_dir: Path
    stash_dir: Path
    state_file: Path
    ca_file: Path | None = None
    every_s: float = 5.0

    @classmethod
    def read(cls, path: Path) -> FollowConfig:
        try:
            document = json.loads(Path(path).read_text(encoding="utf-8"))
            paths = {k: Path(document[k]) for k in ("token_file", "repository_dir", "stash_dir", "state_file")}
            return cls(str(document["endpoint"]), str(document["node"]), str(document["desired_url"]),
                       str(document["status_url"]), str(document["server_url"]), **paths,
                       ca_file=Path(document["ca_file"]) if document.get("ca_file") else None,
                       every_s=float(document.get("every_s", 5.0)))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise SystemExit(f"{path}: not a follower configuration ({type(exc).__name__}: {exc})") from None


class Channel(Protocol):
    """Where the follower reads what to serve and writes what it did."""

    def desired(self) -> Desired | None:
        """The latest desired state; None when none was written yet."""

    def report(self, status: NodeStatus) -> None:
        """Publish the node's status."""


class Server(Protocol):
    """The node's inference server, through its repository API."""

    def serving(self, name: str) -> int | None:
        """The version answering requests that name none; None when the model is not served."""

    def load(self, name: str) -> str | None:
        """(Re)load every version of ``name`` in the repository folder; None on success, else the server's reason."""


def _context(ca_file: Path | None) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)


def _reason(exc: BaseException) -> str:
    # Never the URL: it carries a signature.
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code}"
    return str(getattr(exc, "reason", exc))


class UrlChannel:
    """The store through the two URLs signed for this node."""

    def __init__(self, desired_url: str, status_url: str, timeout_s: float = REQUEST_TIMEOUT_S):
        self.desired_url, self.status_url, self.timeout_s = desired_url, status_url, timeout_s
        self._etag: str | None = None
        self._last: Desired | None = None

    def desired(self) -> Desired | None:
        headers = {"If-None-Match": self._etag} if self._etag and self._last else {}
        request = urllib.request.Request(self.desired_url, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                body, etag = response.read(), response.headers.get("ETag")
        except urllib.error.HTTPError as exc:
            if exc.code == 304:
                return self._last
            if exc.code == 404:
                return None
            raise FollowError(f"reading desired.json: {_reason(exc)}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise FollowError(f"reading desired.json: {_reason(exc)}") from None
        self._last, self._etag = parse_desired(body), etag
        return self._last

    def report(self, status: NodeStatus) -> None:
        request = urllib.request.Request(self.status_url, data=status.to_json(), method="PUT",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s):
                pass
        except (urllib.error.URLError, OSError) as exc:
            raise FollowError(f"writing the node's status: {_reason(exc)}") from None


class HttpServer:
    """The node's server at ``url``, with its bearer token, verified against the endpoint's CA."""

    def __init__(self, url: str, token_file: Path, ca_file: Path | None = None):
        self.url, self.token_file, self.context = url.rstrip("/"), token_file, _context(ca_file)

    def _call(self, method: str, path: str, timeout: float) -> tuple[int, str]:
        token = self.token_file.read_text(encoding="utf-8").strip()
        status, body = server_request(self.url + path, token, method, self.context, timeout)
        if status == 0:  # unreachable: tried again at the next poll
            raise FollowError(body)
        return status, body

    def serving(self, name: str) -> int | None:
        status, body = self._call("GET", f"/v2/models/{quote(name)}", REQUEST_TIMEOUT_S)
        try:
            versions = json.loads(body).get("versions") if status == 200 else None
        except (ValueError, AttributeError):
            versions = None
        return int(versions[0]) if versions else None

    def load(self, name: str) -> str | None:
        status, body = self._call("POST", f"/v2/repository/models/{quote(name)}/load", LOAD_TIMEOUT_S)
        return None if status == 200 else f"HTTP {status}: {error_message(body)}"


def fetch(url: str, dest: Path, sha256: str, tries: int = FETCH_TRIES) -> None:
    """Download ``url`` to ``dest``, checked against ``sha256``; a failed try is retried, a mismatch is not.

    Raises:
        FollowError: every try failed, or the file is not the one the registry recorded.
    """
    for attempt in range(1, tries + 1):
        digest = hashlib.sha256()
        try:
            with urllib.request.urlopen(url, timeout=REQUEST_TIMEOUT_S) as response, open(dest, "wb") as out:
                while chunk := response.read(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
            break
        except (urllib.error.URLError, OSError) as exc:
            if attempt == tries:
                raise FollowError(f"fetching {dest.name}: {_reason(exc)}") from None
            time.sleep(attempt)
    if digest.hexdigest() != sha256:
        raise FollowError(f"{dest.name} has sha256 {digest.hexdigest()}, the registry recorded {sha256}")


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


class Follower:
    """One node's follower: ``step`` acts on the latest desired state once; ``run`` steps forever."""

    def __init__(self, config: FollowConfig, channel: Channel, server: Server, fetcher=fetch):
        self.config, self.channel, self.server, self.fetch = config, channel, server, fetcher

    def applied(self) -> int:
        """The last generation this node acted on (0: none)."""
        try:
            return int(json.loads(self.config.state_file.read_text(encoding="utf-8"))["generation"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0

    def _remember(self, generation: int) -> None:
        self.config.state_file.parent.mkdir(parents=True, exist_ok=True)
        staging = self.config.state_file.with_name(f".{self.config.state_file.name}.tmp")
        staging.write_text(json.dumps({"generation": generation}), encoding="utf-8")
        os.replace(staging, self.config.state_file)

    def step(self) -> NodeStatus | None:
        """Act on the latest desired state if this node has not yet; return the status reported, if any.

        Raises:
            FollowError: the store or the server could not be reached (nothing is remembered: tried again later).
            DesiredStateError: ``desired.json`` is malformed.
        """
        desired = self.channel.desired()
        if desired is None or desired.generation <= self.applied():
            return None
        target = desired.serves(self.config.node)
        if desired.mode == PUSH or target is None:
            self._remember(desired.generation)
            return None
        name, version = target
        if self.server.serving(name) == version:
            status = NodeStatus(self.config.node, desired.generation, SERVED, name, version, at=_now())
        else:
            status = self._apply(desired, name, version)
        self.channel.report(status)
        self._remember(desired.generation)
        return status

    def _apply(self, desired: Desired, name: str, version: int) -> NodeStatus:
        """Serve ``name:version`` instead of the model's other versions, or put them back and say why not."""
        entry = desired.nodes[self.config.node]
        before = self.server.serving(name) or 0
        models = self.config.repository_dir / name
        folder = models / str(version)
        log.info("generation %d: serving %s:%s instead of version %s", desired.generation, name, version, before)
        try:
            self._place(entry, folder)
        except FollowError as exc:
            return NodeStatus(self.config.node, desired.generation, REFUSED, name, before, str(exc), _now())
        stash = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=_ensure(self.config.stash_dir)))
        others = [p for p in models.iterdir() if p.is_dir() and not p.name.startswith(".") and p != folder]
        for other in others:
            os.rename(other, stash / other.name)
        refusal = self.server.load(name)
        if refusal is None and (answering := self.server.serving(name)) != version:
            refusal = f"version {answering} still answers after loading {version}"
        if refusal is None:
            shutil.rmtree(stash, ignore_errors=True)
            log.info("generation %d: serving %s:%s", desired.generation, name, version)
            return NodeStatus(self.config.node, desired.generation, SERVED, name, version, at=_now())
        log.warning("generation %d: the server refused %s:%s: %s", desired.generation, name, version, refusal)
        shutil.rmtree(folder, ignore_errors=True)
        for other in stash.iterdir():
            os.rename(other, models / other.name)
        shutil.rmtree(stash, ignore_errors=True)
        self.server.load(name)  # the repository folder matches what is served again
        return NodeStatus(self.config.node, desired.generation, REFUSED, name, self.server.serving(name) or 0,
                          refusal, _now())

    def _place(self, entry: dict, folder: Path) -> None:
        """Fetch the version's two files into ``folder``, whole or not at all."""
        if (folder / CARD).is_file() and (folder / ONNX).is_file():
            return

        def fetch_both(staging: Path) -> None:
            self.fetch(entry["model_url"], staging / ONNX, entry["model_sha256"])
            self.fetch(entry["card_url"], staging / CARD, entry["card_sha256"])

        place_folder(folder, fetch_both)

    def run(self) -> None:
        while True:
            try:
                self.step()
            except (FollowError, DesiredStateError) as exc:
                log.warning("%s (trying again in %.0f s)", exc, self.config.every_s)
            time.sleep(self.config.every_s)


def _ensure(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m orchestrator.serving.follow CONFIG", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = FollowConfig.read(Path(args[0]))
    Follower(config, UrlChannel(config.desired_url, config.status_url),
             HttpServer(config.server_url, config.token_file, config.ca_file)).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
