"""Run records: what ran, on what, with which code, producing which artifacts (each with its sha256).

A record is saved atomically after every stage, so an interrupted run still tells how far it got.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime, timezone
from importlib import metadata

from orchestrator.artifacts.run_liveness import observed_status
from orchestrator.artifacts.store import ArtifactStore
from orchestrator.errors import ArtifactNotFound

LIBRARIES = (
    "dataops", "dask", "distributed", "pandas", "pyarrow", "numpy", "scikit-learn", "skl2onnx", "onnx", "onnxruntime",
)


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_run_id() -> str:
    # Runs started in the same second (a sweep's points, two runners) must not share an id.
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(4)


def library_versions() -> dict[str, str]:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def record_key(run_id: str) -> str:
    return f"runs/{run_id}/record.json"


def save_record(store: ArtifactStore, record: dict) -> None:
    store.put_bytes(record_key(record["run_id"]), json.dumps(record, indent=1, default=str).encode())


def load_record(store: ArtifactStore, run_id: str) -> dict:
    """Load one run record; ``latest`` names the newest run. A run recorded as running whose process is gone is
    returned as ``interrupted`` (``orchestrator.artifacts.run_liveness``).

    Raises:
        ArtifactNotFound: no such run in the store.
    """
    if run_id == "latest":
        ids = list_run_ids(store)
        if not ids:
            raise ArtifactNotFound(f"no runs in {store.uri}")
        run_id = ids[-1]
    if not store.exists(record_key(run_id)):
        known = list_run_ids(store)[-5:]
        raise ArtifactNotFound(f"no run {run_id!r} in {store.uri}; latest runs: {', '.join(known) or 'none'}")
    return observed_status(json.loads(store.get_bytes(record_key(run_id))), store)


def list_run_ids(store: ArtifactStore) -> list[str]:
    return sorted({key.split("/")[1] for key in store.list("runs") if key.endswith("/record.json")})


def compare_records(left: dict, right: dict) -> dict:
    """Differences between two runs: parameters, stage keys (what was recomputed) and metrics."""

    def flatten(prefix: str, value, out: dict) -> dict:
        if isinstance(value, dict):
            for key, inner in value.items():
                flatten(f"{prefix}.{key}" if prefix else str(key), inner, out)
        else:
            out[prefix] = value
        return out

    diff: dict[str, dict] = {"parameters": {}, "stages": {}, "metrics": {}}
    for section in ("parameters", "metrics"):
        a, b = flatten("", left.get(section, {}), {}), flatten("", right.get(section, {}), {})
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                diff[section][key] = [a.get(key), b.get(key)]
    stages_a, stages_b = left.get("stages", {}), right.get("stages", {})
    for name in sorted(set(stages_a) | set(stages_b)):
        key_a, key_b = stages_a.get(name, {}).get("key"), stages_b.get(name, {}).get("key")
        if key_a != key_b:
            diff["stages"][name] = [key_a, key_b]
    return diff
