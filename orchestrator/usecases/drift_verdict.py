"""The latest drift verdict of a model version, as ``model show`` gives it.

Drift checks write ``monitoring/<model>/<version>/checks/<check_id>/result.json`` (``dataops.drift-check/1``:
``check_id``, ``checked_at``, ``window``, ``lineage`` and the ``dataops.drift/1`` result under ``result``) and name
the newest in ``monitoring/<model>/<version>/latest.json`` (``{"check_id", "checked_at", "verdict", "result": KEY}``).
This module only reads them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from orchestrator.artifacts.store import ArtifactStore
from orchestrator.errors import ArtifactError
from orchestrator.monitoring.keys import monitoring_prefix

DRIFT = "drift"


@dataclass(frozen=True)
class DriftVerdict:
    """One check's verdict, in brief."""

    check_id: str
    verdict: str
    checked_at: str | None
    rows: int | None
    drifted: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    key: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def latest_json_key(name: str, version: int) -> str:
    return f"{monitoring_prefix(name, version)}/latest.json"


def result_key(name: str, version: int, check_id: str) -> str:
    return f"{monitoring_prefix(name, version)}/checks/{check_id}/result.json"


def latest_drift_verdict(store: ArtifactStore, name: str, version: int) -> DriftVerdict | None:
    """The latest check's verdict for ``name:version``, or None when the version was never checked.

    Raises:
        ArtifactError: ``latest.json`` names a check whose result is missing or unreadable.
    """
    pointer = latest_json_key(name, version)
    if not store.exists(pointer):
        return None
    latest = json.loads(store.get_bytes(pointer))
    check_id = latest.get("check_id") if isinstance(latest, dict) else None
    if not check_id:
        raise ArtifactError(f"{pointer} in {store.uri} names no check (expected {{\"check_id\": ...}})")
    key = latest.get("result") or result_key(name, version, check_id)
    if not store.exists(key):
        raise ArtifactError(f"{pointer} names check {check_id}, whose result {key} is missing from {store.uri}")
    document = json.loads(store.get_bytes(key))
    result = document["result"]
    window = document.get("window") if isinstance(document.get("window"), dict) else {}
    when = document.get("checked_at") or window.get("until")
    drifted = [c["name"] for c in result.get("columns", []) if c.get("verdict") == DRIFT]
    return DriftVerdict(check_id, result.get("verdict", "unknown"), when, result.get("rows"), drifted,
                        list(result.get("reasons", [])), key)
