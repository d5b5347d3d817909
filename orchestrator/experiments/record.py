"""The experiment record, kept in the artifact store at ``experiments/<id>/experiment.json``: the pipeline file (path
and sha256), the grid, the metric, and each point's parameters, run id, status and metrics.

An experiment's id is made of the pipeline file's sha256 and what decides the points (the grid's parameters and
sample), so running the same command again finds the same record and reuses its finished points.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from orchestrator.artifacts.lineage import now
from orchestrator.artifacts.store import ArtifactStore
from orchestrator.errors import ArtifactNotFound
from orchestrator.yaml_files import suggest

PREFIX = "experiments"
RECORD = "experiment.json"

# A point's status; an experiment's is "running" while it runs, then "succeeded" when every point did, "failed"
# when one did not, or "interrupted".
PENDING, RUNNING, SUCCEEDED, FAILED, INTERRUPTED = "pending", "running", "succeeded", "failed", "interrupted"


def experiment_id(pipeline_name: str, pipeline_sha256: str, defining: dict) -> str:
    """``<pipeline name>-<10 hex>``: the same for the same pipeline file and the same points.

    Args:
        pipeline_name: the pipeline's name (only to make the id readable).
        pipeline_sha256: the pipeline file's sha256.
        defining: what decides the points (``GridSpec.defining()``).
    """
    payload = json.dumps({"pipeline": pipeline_sha256, "grid": defining}, sort_keys=True, default=str)
    slug = re.sub(r"[^a-z0-9]+", "-", pipeline_name.lower()).strip("-") or "experiment"
    return f"{slug}-{hashlib.sha256(payload.encode()).hexdigest()[:10]}"


def record_key(exp_id: str) -> str:
    return f"{PREFIX}/{exp_id}/{RECORD}"


@dataclass
class PointRecord:
    """One point: its number (from 1), its parameters, and how its run went."""

    point: int
    parameters: dict[str, Any]
    status: str = PENDING
    run_id: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    started_at: str | None = None
    finished_at: str | None = None

    @classmethod
    def from_dict(cls, data: dict) -> PointRecord:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass
class ExperimentRecord:
    """A whole experiment as kept in the store."""

    id: str
    name: str
    pipeline: dict[str, str]  # name, path, sha256
    grid: dict  # as a grid file writes it (GridSpec.to_yaml)
    grid_path: str
    metric: dict[str, str]  # name, direction
    created_at: str
    points: list[PointRecord]
    status: str = RUNNING
    updated_at: str | None = None
    # The time every point's split window is resolved at (the experiment's creation; None without a window), so
    # that all points, resumed ones too, split the same rows.
    as_of: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ExperimentRecord:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["points"] = [PointRecord.from_dict(p) for p in data.get("points", [])]
        return cls(**known)

    def point(self, number: int) -> PointRecord:
        return next(p for p in self.points if p.point == number)

    def finish(self) -> None:
        """Set the experiment's status from its points' once a sweep is over."""
        self.status = SUCCEEDED if all(p.status == SUCCEEDED for p in self.points) else FAILED

    def counts(self) -> dict[str, int]:
        """How many points are in each status."""
        counts: dict[str, int] = {}
        for point in self.points:
            counts[point.status] = counts.get(point.status, 0) + 1
        return counts


def save_experiment(store: ArtifactStore, record: ExperimentRecord) -> None:
    """Write the record (one atomic put: a reader sees the previous version or this one)."""
    record.updated_at = now()
    store.put_bytes(record_key(record.id), json.dumps(record.to_dict(), indent=1, default=str).encode())


def find_experiment(store: ArtifactStore, exp_id: str) -> ExperimentRecord | None:
    """The record of ``exp_id``, or None when the store has none."""
    if not store.exists(record_key(exp_id)):
        return None
    return ExperimentRecord.from_dict(json.loads(store.get_bytes(record_key(exp_id))))


def load_experiment(store: ArtifactStore, exp_id: str) -> ExperimentRecord:
    """The record of ``exp_id`` (``latest``: the one updated last).

    Raises:
        ArtifactNotFound: no such experiment; the message names the closest id and the latest ones.
    """
    ids = experiment_ids(store)
    if exp_id == "latest":
        records = list_experiments(store)
        if not records:
            raise ArtifactNotFound(f"no experiments in {store.uri}")
        return max(records, key=lambda r: r.updated_at or r.created_at)
    record = find_experiment(store, exp_id)
    if record is None:
        raise ArtifactNotFound(f"no experiment {exp_id!r} in {store.uri}{suggest(exp_id, ids)}; experiments: "
                               f"{', '.join(ids[-5:]) or 'none'}")
    return record


def experiment_ids(store: ArtifactStore) -> list[str]:
    """Every experiment id of the store, sorted."""
    return sorted({key.split("/")[1] for key in store.list(PREFIX) if key.endswith(f"/{RECORD}")
                   and key.count("/") == 2})


def list_experiments(store: ArtifactStore) -> list[ExperimentRecord]:
    """Every experiment of the store, oldest first."""
    records = [find_experiment(store, exp_id) for exp_id in experiment_ids(store)]
    return sorted((r for r in records if r is not None), key=lambda r: r.created_at)
