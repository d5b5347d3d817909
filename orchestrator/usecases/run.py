"""Run a pipeline file, and read the run records it leaves."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from orchestrator.artifacts.lineage import compare_records, list_run_ids, load_record
from orchestrator.artifacts.open import open_store
from orchestrator.config import setting
from orchestrator.pipeline.runner import RunResult, StageEvent, run_pipeline
from orchestrator.pipeline.spec import load_pipeline
from orchestrator.usecases.compute import compute_target, open_client


@dataclass(frozen=True)
class RunStarted:
    """What a run is about to do, for the caller to show once the client is up."""

    pipeline: str
    store: str
    cluster: str | None
    dashboard: str


def run_pipeline_file(
    path: Path,
    store: str | None = None,
    scheduler: str | None = None,
    cluster: str | None = None,
    on_start: Callable[[RunStarted], None] | None = None,
    on_event: StageEvent | None = None,
    on_progress: Callable[[int, int, float | None], None] | None = None,
    as_of: str | None = None,
    run_parameters: dict | None = None,
) -> RunResult:
    """Load ``path`` and run it on the chosen Dask target, with artifacts in the chosen store.

    Args:
        path: the pipeline file.
        store: the ``--store`` value (else the ``store`` setting).
        scheduler: a Dask scheduler address (else the ``scheduler`` setting, else a LocalCluster).
        cluster: a cluster made by ``dataops cluster create`` (exclusive with ``scheduler``).
        on_start: called once connected, with what is about to run.
        on_event: stage events, as for ``run_pipeline``.
        on_progress: the tuner's progress, as for ``run_pipeline``.
        as_of: the time the run is for (a schedule's slot, ISO 8601 UTC), recorded in the run record's parameters;
            a retried slot runs with the same one and finds its completed stages in the cache.
        run_parameters: more entries for the record's parameters (a retrain of the closed loop names its watch).

    Raises:
        SpecError: the pipeline file is malformed.
        DataopsError: the run failed (its record says which stage and why), or the target is not usable.
    """
    loaded = load_pipeline(path)
    artifact_store = open_store(setting("store", store))
    target = compute_target(scheduler, cluster, artifact_store)
    with open_client(target) as client:
        if on_start:
            on_start(RunStarted(loaded.spec.name, artifact_store.uri, cluster, client.dashboard_link))
        return run_pipeline(loaded, artifact_store, client, on_event=on_event, on_progress=on_progress, as_of=as_of,
                            run_parameters=run_parameters)


def run_records(store: str | None = None) -> list[dict]:
    """Every run record of the store, oldest first."""
    artifact_store = open_store(setting("store", store))
    return [load_record(artifact_store, run_id) for run_id in list_run_ids(artifact_store)]


def run_record(run_id: str, store: str | None = None) -> dict:
    """One run record (``latest`` names the newest)."""
    return load_record(open_store(setting("store", store)), run_id)


def compare_runs(first: str, second: str, store: str | None = None) -> dict:
    """What changed between two runs: parameters, recomputed stages, metrics."""
    artifact_store = open_store(setting("store", store))
    return compare_records(load_record(artifact_store, first), load_record(artifact_store, second))
