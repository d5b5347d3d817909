"""Content-addressed stage cache: a stage's output lives under a hash of its configuration, its code version and its
inputs' fingerprints, so an unchanged stage is never recomputed and a changed one invalidates exactly its dependants."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from orchestrator import __version__

STAGE_META = "_stage.json"


def stage_key(name: str, config: Any, code: str, inputs: dict[str, str]) -> str:
    """The cache key of one stage run.

    Args:
        name: stage name, e.g. ``ingest.flights``.
        config: the stage's declared configuration (JSON-serialisable).
        code: a hash of the code the stage runs (user functions, library versions that change results).
        inputs: fingerprint per input (upstream stage keys, source content hashes).
    """
    payload = json.dumps(
        {"stage": name, "config": config, "code": code, "inputs": inputs, "engine": __version__},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def cache_location(name: str, key: str) -> str:
    """Store key of a stage output dataset."""
    return f"cache/{name}/{key}"
