"""Run an experiment's points on one Dask client, reusing every stage they share.

Each point is a run of the pipeline with the point's values (``run_pipeline``, into the same store, so its stage
cache is shared): a stage whose configuration does not depend on the varied fields has the same cache key at every
point and is computed once. Points run ``max_parallel`` at a time, and a point starts only once the stages it shares
with an earlier point are in the cache: the earliest point with a stage computes it, the others find it there. A
grid over model parameters thus ingests, blends, derives features and splits once, then trains every point at once.
A split window (boundaries that follow the run's time) is resolved once, at the experiment's ``as_of``, for all points.

Each run's record carries the experiment's id and the point's number in its parameters (``experiment``, ``point``),
and the experiment record is saved after each point, so an interrupted experiment resumes with its missing and failed
points only.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from distributed import Client

from orchestrator.artifacts.lineage import list_run_ids, load_record, now
from orchestrator.artifacts.lineage import record_key as run_record_key
from orchestrator.artifacts.store import ArtifactStore
from orchestrator.errors import DataopsError, SpecError
from orchestrator.experiments.expand import expand
from orchestrator.experiments.grid import LoadedGrid
from orchestrator.experiments.metrics import Metric, headline_metrics, metric_for
from orchestrator.experiments.overrides import PipelineFile, parameter_locations, point_pipeline
from orchestrator.experiments.record import (
    FAILED,
    INTERRUPTED,
    PENDING,
    RUNNING,
    SUCCEEDED,
    ExperimentRecord,
    PointRecord,
    experiment_id,
    find_experiment,
    save_experiment,
)
from orchestrator.pipeline.cache import stage_key
from orchestrator.pipeline.graph import build_graph
from orchestrator.pipeline.runner import run_pipeline
from orchestrator.pipeline.spec import LoadedPipeline

# How far back a failed point's run record is looked for (newest first): a run writes its record as it starts.
RECENT_RUNS = 50

PointEvent = Callable[[PointRecord, str], None]  # (the point, "start" | "reused" | "succeeded" | "failed")
PointStageEvent = Callable[[int, str, str, dict], None]  # (point number, stage, event, info), as run_pipeline's


@dataclass(frozen=True)
class ExperimentPlan:
    """What an experiment runs: its id, its metric, and each point's parameters and pipeline."""

    id: str
    name: str
    metric: Metric
    points: list[dict[str, Any]]
    pipelines: list[LoadedPipeline]


def plan_experiment(source: PipelineFile, grid: LoadedGrid) -> ExperimentPlan:
    """Expand the grid and make (and validate) every point's pipeline before anything runs.

    Raises:
        SpecError: a parameter path is not a field of the pipeline file, a point makes an invalid pipeline, or the
            metric is not one the pipeline's model has; the message names the grid file's line.
    """
    pipeline = source.pipeline
    task = pipeline.spec.model.task if pipeline.spec.model else None
    try:
        metric = metric_for(task, grid.spec.metric)
    except ValueError as exc:
        raise SpecError(f"{grid.path}:{grid.line('metric')}: metric: {exc}") from None
    locations = parameter_locations(grid, source)
    points = expand(grid.spec)
    pipelines = [point_pipeline(source, locations, point, number, grid) for number, point in enumerate(points, 1)]
    exp_id = experiment_id(pipeline.spec.name, pipeline.sha256, grid.spec.defining())
    return ExperimentPlan(exp_id, grid.spec.name or pipeline.spec.name, metric, points, pipelines)


def run_experiment(
    plan: ExperimentPlan,
    source: PipelineFile,
    grid: LoadedGrid,
    store: ArtifactStore,
    client: Client | None,
    max_parallel: int = 1,
    on_point: PointEvent | None = None,
    on_stage: PointStageEvent | None = None,
) -> ExperimentRecord:
    """Run the plan's points that have not succeeded yet (all of them the first time) and keep the record.

    Args:
        plan: from :func:`plan_experiment`.
        source: the pipeline file.
        grid: the grid file.
        store: where the runs, their shared stage cache and the experiment record go.
        client: the one Dask client every point computes on (None when every point is reused).
        max_parallel: how many points run at once.
        on_point: called as each point starts, is reused from an earlier run, succeeds or fails.
        on_stage: every point's stage events.

    Returns:
        The experiment record; a point that failed is recorded failed (with its error), the others still run.

    Raises:
        BaseException: whatever interrupted the sweep (Ctrl-C); the record says which points finished.
    """
    record = _record(plan, source, grid, store)
    todo = [p for p in record.points if p.status != SUCCEEDED]
    for point in record.points:
        if point.status == SUCCEEDED and on_point:
            on_point(point, "reused")
    record.status = RUNNING
    save_experiment(store, record)
    if todo:
        if client is None:
            raise ValueError(f"{len(todo)} points of experiment {plan.id} are to run, and no Dask client was given")
        # A split window is resolved once, at the experiment's as_of: each run would otherwise resolve it at the
        # time it starts, and the points would split different rows (and share no split).
        pipelines = [p.at(record.as_of) for p in plan.pipelines] if record.as_of else plan.pipelines
        _Sweep(pipelines, record, store, client, on_point, on_stage).run(todo, max(1, max_parallel))
    record.finish()
    save_experiment(store, record)
    return record


def reusable_points(plan: ExperimentPlan, store: ArtifactStore) -> dict[int, PointRecord]:
    """The points of the plan an earlier sweep of the same experiment finished: succeeded, with the same
    parameters, and their run record still in the store."""
    kept = find_experiment(store, plan.id)
    reusable = {}
    for old in kept.points if kept else []:
        if (old.status == SUCCEEDED and 0 < old.point <= len(plan.points)
                and old.parameters == plan.points[old.point - 1] and old.run_id
                and store.exists(run_record_key(old.run_id))):
            reusable[old.point] = old
    return reusable


def _record(plan: ExperimentPlan, source: PipelineFile, grid: LoadedGrid, store: ArtifactStore) -> ExperimentRecord:
    """The experiment's record: the one kept under its id, with its finished points; else a new one."""
    pipeline = source.pipeline
    kept = find_experiment(store, plan.id)
    reused = reusable_points(plan, store)
    points = [reused.get(number) or PointRecord(number, point) for number, point in enumerate(plan.points, 1)]
    created = kept.created_at if kept else now()
    windowed = any(p.spec.split.window is not None for p in plan.pipelines)
    return ExperimentRecord(
        id=plan.id, name=plan.name,
        pipeline={"name": pipeline.spec.name, "path": str(pipeline.path.resolve()), "sha256": pipeline.sha256},
        grid=grid.spec.to_yaml(), grid_path=str(grid.path.resolve()), metric=plan.metric.to_dict(),
        created_at=created, points=points, as_of=((kept.as_of if kept else None) or created) if windowed else None,
    )


def stage_signatures(pipeline: LoadedPipeline) -> dict[str, str]:
    """Each cached stage's identity within one experiment: its cache key without the sources' fingerprints (the
    same files for every point), so two points' stages with the same signature are the same cache entry."""
    signatures: dict[str, str] = {}
    cached = set()
    for stage in build_graph(pipeline):
        signatures[stage.name] = stage_key(stage.name, stage.config, stage.code,
                                           {name: signatures[name] for name in stage.depends})
        if stage.cached:
            cached.add(stage.name)
    return {name: signature for name, signature in signatures.items() if name in cached}


class _Sweep:
    """The points of one sweep on a thread pool, each waiting for the shared stages earlier points compute."""

    def __init__(self, pipelines, record, store, client, on_point, on_stage):
        self.pipelines, self.record, self.store, self.client = pipelines, record, store, client
        self.on_point, self.on_stage = on_point or (lambda *_: None), on_stage or (lambda *_: None)
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.ready: dict[str, threading.Event] = {}  # stage signature -> in the cache (or its computing point ended)
        self.owned: dict[int, dict[str, str]] = {}  # point -> stage name -> signature it computes for the others
        self.waits: dict[int, list[str]] = {}  # point -> signatures it waits for

    def run(self, todo: list[PointRecord], max_parallel: int) -> None:
        self._share(todo)
        # The pool takes points in order, so a point's earlier points have all started: no point waits for one
        # that cannot start.
        pool = ThreadPoolExecutor(max_parallel, thread_name_prefix="experiment-point")
        futures = [pool.submit(self._run_point, point) for point in todo]
        try:
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            for future in done:
                future.result()
        except BaseException:
            self._interrupt()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()

    def _share(self, todo: list[PointRecord]) -> None:
        owner: dict[str, int] = {}
        for point in todo:
            signatures = stage_signatures(self.pipelines[point.point - 1])
            self.owned[point.point] = {}
            self.waits[point.point] = []
            for stage, signature in signatures.items():
                first = owner.setdefault(signature, point.point)
                if first == point.point:
                    self.owned[point.point][stage] = signature
                    self.ready[signature] = threading.Event()
                else:
                    self.waits[point.point].append(signature)

    def _run_point(self, point: PointRecord) -> None:
        try:
            self._run(point)
        except BaseException:
            self.stopped.set()  # before this thread takes the next point from the pool
            raise

    def _run(self, point: PointRecord) -> None:
        number = point.point
        for signature in self.waits[number]:
            while not self.ready[signature].wait(0.5):
                if self.stopped.is_set():
                    return
        owned = self.owned[number]

        def stage_event(stage: str, event: str, info: dict) -> None:
            if event in ("done", "cached") and stage in owned:
                self.ready[owned[stage]].set()
            self.on_stage(number, stage, event, info)

        with self.lock:
            if self.stopped.is_set():
                return
            point.status, point.started_at, point.finished_at, point.error = RUNNING, now(), None, None
            point.run_id, point.metrics = None, {}
            save_experiment(self.store, self.record)
        self.on_point(point, "start")
        try:
            result = run_pipeline(self.pipelines[number - 1], self.store, self.client, on_event=stage_event,
                                  run_parameters={"experiment": self.record.id, "point": number})
        except DataopsError as exc:
            self._finish(point, FAILED, self._failed_run(number), {}, str(exc))
            return
        finally:
            for signature in owned.values():  # whatever happened, the points waiting on this one may go on
                self.ready[signature].set()
        self._finish(point, SUCCEEDED, result.run_id, headline_metrics(result.record.get("metrics", {})), None)

    def _finish(self, point: PointRecord, status: str, run_id: str | None, metrics: dict, error: str | None) -> None:
        with self.lock:
            if self.stopped.is_set():  # the sweep was interrupted: its record already says so
                return
            point.status, point.run_id, point.metrics, point.error = status, run_id, metrics, error
            point.finished_at = now()
            save_experiment(self.store, self.record)
        self.on_point(point, status)

    def _failed_run(self, number: int) -> str | None:
        """The run record a failed point's run left, if it got as far as writing one."""
        for run_id in reversed(list_run_ids(self.store)[-RECENT_RUNS:]):
            parameters = load_record(self.store, run_id).get("parameters", {})
            if parameters.get("experiment") == self.record.id and parameters.get("point") == number:
                return run_id
        return None

    def _interrupt(self) -> None:
        with self.lock:
            self.stopped.set()
            for point in self.record.points:
                if point.status == RUNNING:
                    point.status, point.finished_at = INTERRUPTED, now()
                elif point.status != SUCCEEDED and point.status != FAILED:
                    point.status = PENDING
            self.record.status = INTERRUPTED
            save_experiment(self.store, self.record)
