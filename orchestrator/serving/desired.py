"""What an endpoint's nodes should serve, as the store keeps it: the contract between whoever deploys (the operator's
push, a watch's pull) and each node's follower (``orchestrator.serving.follow``).

The store holds, under ``endpoints/ENDPOINT/``:

- ``desired.json``, written by the deployer only: a ``generation`` that grows with every write, the ``mode`` of that
  write, and per node the model version it should serve, with URLs signed for that version's two files and their
  registry sha256s. A ``push`` generation is the operator's rollout over SSH announcing itself: followers note it
  and leave the node alone. A ``pull`` generation is for the followers to apply, each to its own node.
- ``nodes/NODE.json``, written by that node's follower only, through a URL signed for that one object: the
  generation it last acted on and what came of it (``served``, or ``refused`` with the server's reason).

Nodes hold no cloud credential: one URL signed to read ``desired.json``, one to write their own status.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

PUSH, PULL = "push", "pull"
SERVED, REFUSED = "served", "refused"
ENTRY_FIELDS = ("name", "version", "model_url", "model_sha256", "card_url", "card_sha256")


class DesiredStateError(ValueError):
    """A desired-state or node-status document is not what this version writes; the message says which field."""


def endpoint_prefix(endpoint: str) -> str:
    return f"endpoints/{endpoint}"


def desired_key(endpoint: str) -> str:
    return f"{endpoint_prefix(endpoint)}/desired.json"


def status_key(endpoint: str, node: str) -> str:
    return f"{endpoint_prefix(endpoint)}/nodes/{node}.json"


@dataclass(frozen=True)
class Desired:
    """One write of ``desired.json``.

    Attributes:
        endpoint: The endpoint.
        generation: Grows by one with every write; a follower acts on a pull generation once.
        mode: ``push`` (the operator's rollout: followers stand aside) or ``pull`` (followers apply it).
        nodes: Per node, the version to serve: ``name``, ``version``, and its files' signed URLs and sha256s.
        written_at: When (ISO 8601, UTC).
        written_by: Who wrote it (a user, or ``watch``).
    """

    endpoint: str
    generation: int
    mode: str
    nodes: dict[str, dict] = field(default_factory=dict)
    written_at: str = ""
    written_by: str = ""

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=2, sort_keys=True).encode()

    def serves(self, node: str) -> tuple[str, int] | None:
        entry = self.nodes.get(node)
        return (entry["name"], int(entry["version"])) if entry else None


@dataclass(frozen=True)
class NodeStatus:
    """What a node's follower last did.

    Attributes:
        node: The node.
        generation: The desired generation it acted on.
        state: ``served`` (the node answers with ``name:version``) or ``refused`` (it kept what it served).
        name: The model.
        version: The version it serves now (after a refusal, still the earlier one; 0 when unknown).
        reason: Why it refused; empty otherwise.
        at: When (ISO 8601, UTC).
    """

    node: str
    generation: int
    state: str
    name: str
    version: int
    reason: str = ""
    at: str = ""

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()


def _object(data: bytes, what: str) -> dict:
    try:
        document = json.loads(data)
    except ValueError as exc:
        raise DesiredStateError(f"{what} is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise DesiredStateError(f"{what}: expected an object, got {type(document).__name__}")
    return document


def parse_desired(data: bytes, what: str = "desired.json") -> Desired:
    """Read a ``desired.json``.

    Raises:
        DesiredStateError: a field is missing or of the wrong type (named).
    """
    document = _object(data, what)
    try:
        desired = Desired(str(document["endpoint"]), int(document["generation"]), str(document["mode"]),
                          dict(document.get("nodes") or {}), str(document.get("written_at", "")),
                          str(document.get("written_by", "")))
    except (KeyError, TypeError, ValueError) as exc:
        raise DesiredStateError(f"{what}: field {exc} missing or not of the expected type") from None
    if desired.mode not in (PUSH, PULL):
        raise DesiredStateError(f"{what}: mode {desired.mode!r}: expected {PUSH!r} or {PULL!r}")
    for node, entry in desired.nodes.items():
        missing = [f for f in ENTRY_FIELDS if not isinstance(entry, dict) or f not in entry]
        if missing:
            raise DesiredStateError(f"{what}: nodes.{node} lacks {', '.join(missing)}")
    return desired


def parse_status(data: bytes, what: str = "node status") -> NodeStatus:
    """Read a node's status.

    Raises:
        DesiredStateError: a field is missing or of the wrong type (named).
    """
    document = _object(data, what)
    try:
        status = NodeStatus(str(document["node"]), int(document["generation"]), str(document["state"]),
                            str(document["name"]), int(document["version"]), str(document.get("reason", "")),
                            str(document.get("at", "")))
    except (KeyError, TypeError, ValueError) as exc:
        raise DesiredStateError(f"{what}: field {exc} missing or not of the expected type") from None
    if status.state not in (SERVED, REFUSED):
        raise DesiredStateError(f"{what}: state {status.state!r}: expected {SERVED!r} or {REFUSED!r}")
    return status
