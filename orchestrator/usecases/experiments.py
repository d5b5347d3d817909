"""Experiments: run a pipeline file at every point of a grid file on one Dask client, and read, rank and plot them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from orchestrator.artifacts.open import open_store
from orchestrator.atomic import write_atomically
from orchestrator.config import setting
from orchestrator.errors import DataopsError
from orchestrator.experiments.compare import Comparison, ScheduleSeries, compare_points, schedule_series
from orchestrator.experiments.grid import grid_from_record, load_grid
from orchestrator.experiments.metrics import metric_for
from orchestrator.experiments.overrides import read_pipeline_file
from orchestrator.experiments.plot import comparison_png, schedule_png
from orchestrator.experiments.record import ExperimentRecord, list_experiments, load_experiment
from orchestrator.experiments.sweep import (
    PointEvent,
    PointStageEvent,
    plan_experiment,
    reusable_points,
    run_experiment,
)
from orchestrator.scheduling.state import ScheduleState
from orchestrator.usecases.compute import compute_target, open_client


@dataclass(frozen=True)
class ExperimentStarted:
    """What an experiment is about to run, for the caller to show once the client is up."""

    id: str
    name: str
    metric: str
    points: int
    store: str
    dashboard: str | None  # None when every point is reused and no cluster starts


def run_experiment_files(
    pipeline: Path | None,
    grid: Path | None,
    store: str | None = None,
    scheduler: str | None = None,
    cluster: str | None = None,
    max_parallel: int = 1,
    resume: str | None = None,
    on_start: Callable[[ExperimentStarted], None] | None = None,
    on_point: PointEvent | None = None,
    on_stage: PointStageEvent | None = None,
) -> ExperimentRecord:
    """Run ``pipeline`` at every point of ``grid`` (those not yet succeeded), all on one Dask client.

    Args:
        pipeline: the pipeline file (with ``resume``: default, the experiment's).
        grid: the grid file (with ``resume``: default, the grid the experiment keeps).
        store: the ``--store`` value (else the ``store`` setting).
        scheduler: a Dask scheduler address (else the ``scheduler`` setting, else a LocalCluster).
        cluster: a cluster made by ``dataops cluster create`` (exclusive with ``scheduler``).
        max_parallel: how many points run at once.
        resume: an experiment id to continue; the pipeline file and the grid must still give that id.
        on_start: called once connected.
        on_point: called as each point starts, is reused, succeeds or fails.
        on_stage: every point's stage events.

    Returns:
        The experiment record.

    Raises:
        SpecError: the pipeline or grid file is malformed, or a point makes an invalid pipeline.
        ArtifactNotFound: ``resume`` names no experiment of the store.
        DataopsError: the files no longer give the resumed experiment, or the target is not usable.
    """
    artifact_store = open_store(setting("store", store))
    kept = load_experiment(artifact_store, resume) if resume else None
    if kept is None and (pipeline is None or grid is None):
        raise DataopsError("an experiment needs a pipeline file and --grid FILE (or --resume ID)")
    source = read_pipeline_file(pipeline or Path(kept.pipeline["path"]))
    loaded_grid = load_grid(grid) if grid else grid_from_record(kept.grid, kept.grid_path)
    plan = plan_experiment(source, loaded_grid)
    if kept is not None and plan.id != kept.id:
        changed = ("the pipeline file has changed since" if source.pipeline.sha256 != kept.pipeline["sha256"]
                   else "the grid's parameters differ from its")
        raise DataopsError(f"cannot resume experiment {kept.id}: {changed} (it ran {kept.pipeline['path']}, sha256 "
                           f"{kept.pipeline['sha256'][:12]}); run without --resume to start a new experiment")
    target = compute_target(scheduler, cluster, artifact_store)

    def started(dashboard: str | None) -> None:
        if on_start:
            on_start(ExperimentStarted(plan.id, plan.name, plan.metric.name, len(plan.points), artifact_store.uri,
                                       dashboard))

    if len(reusable_points(plan, artifact_store)) == len(plan.points):  # nothing to compute: no cluster to start
        started(None)
        return run_experiment(plan, source, loaded_grid, artifact_store, None, max_parallel, on_point, on_stage)
    with open_client(target) as client:
        started(client.dashboard_link)
        return run_experiment(plan, source, loaded_grid, artifact_store, client, max_parallel, on_point, on_stage)


def experiment_records(store: str | None = None) -> list[ExperimentRecord]:
    """Every experiment of the store, oldest first."""
    return list_experiments(open_store(setting("store", store)))


def experiment_record(exp_id: str, store: str | None = None) -> ExperimentRecord:
    """One experiment (``latest``: the one updated last).

    Raises:
        ArtifactNotFound: no such experiment.
    """
    return load_experiment(open_store(setting("store", store)), exp_id)


def compare_experiment(exp_id: str, store: str | None = None, plot: Path | None = None,
                       metric: str | None = None) -> Comparison:
    """An experiment's points ranked by its metric (or ``metric``), and with ``plot`` a PNG of the metric against
    each parameter.

    Raises:
        ArtifactNotFound: no such experiment.
        DataopsError: ``metric`` is not a metric the evaluate stage writes.
    """
    record = load_experiment(open_store(setting("store", store)), exp_id)
    comparison = compare_points(record, _metric(metric))
    if plot is not None:
        _write_png(plot, comparison_png(comparison))
    return comparison


def compare_schedule(name: str, store: str | None = None, plot: Path | None = None,
                     metric: str | None = None) -> ScheduleSeries:
    """A scheduled pipeline's metric over its runs (from the schedule's slot history and the runs' records), and
    with ``plot`` a PNG of it over time.

    Raises:
        ScheduleNotFound: no such schedule.
        DataopsError: the schedule runs a job, or ``metric`` is not one of its model's.
    """
    schedules = open_store(setting("store", store))
    spec = ScheduleState(schedules, name).load().spec
    runs = open_store(spec.store) if spec.store else schedules
    series = schedule_series(schedules, runs, name, metric)
    if plot is not None:
        _write_png(plot, schedule_png(series))
    return series


def _metric(name: str | None):
    if name is None:
        return None
    try:
        return metric_for(None, name)
    except ValueError as exc:
        raise DataopsError(f"--metric: {exc}") from None


def _write_png(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, data)
