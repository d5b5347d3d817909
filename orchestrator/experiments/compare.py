"""Comparisons: an experiment's points ranked by its metric (best first, in the metric's direction), and a
scheduled pipeline's metric over its runs, slot after slot."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from orchestrator.artifacts.lineage import load_record
from orchestrator.artifacts.store import ArtifactStore
from orchestrator.errors import ArtifactNotFound, DataopsError
from orchestrator.experiments.metrics import Metric, headline_metrics, metric_for
from orchestrator.experiments.record import SUCCEEDED, ExperimentRecord
from orchestrator.scheduling.state import ScheduleState


@dataclass(frozen=True)
class PointRow:
    """One point of a comparison: its rank (None when it has no value of the metric), parameters and metrics."""

    rank: int | None
    point: int
    parameters: dict[str, Any]
    status: str
    run_id: str | None
    value: float | None
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Comparison:
    """An experiment's points, best first by ``metric``; points without a value (failed, not run) last."""

    experiment: str
    name: str
    metric: Metric
    parameters: list[str]
    rows: list[PointRow]

    @property
    def best(self) -> PointRow | None:
        return self.rows[0] if self.rows and self.rows[0].rank == 1 else None

    def to_dict(self) -> dict:
        return {"experiment": self.experiment, "name": self.name, "metric": self.metric.to_dict(),
                "parameters": self.parameters, "rows": [asdict(row) for row in self.rows]}


def _value(metrics: dict, name: str) -> float | None:
    value = metrics.get(name)
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def compare_points(record: ExperimentRecord, metric: Metric | None = None) -> Comparison:
    """Rank an experiment's points.

    Args:
        record: the experiment.
        metric: rank by this one instead of the experiment's.

    Returns:
        Every point: those that succeeded with a value of the metric first, best first (ties keep point order),
        then the others in point order.
    """
    metric = metric or Metric(**record.metric)
    valued = [(p, _value(p.metrics, metric.name)) for p in record.points]
    ranked = sorted(((p, v) for p, v in valued if p.status == SUCCEEDED and v is not None),
                    key=lambda pv: (-pv[1] if metric.direction == "max" else pv[1], pv[0].point))
    rest = [(p, v) for p, v in valued if not (p.status == SUCCEEDED and v is not None)]
    rows = [PointRow(rank, p.point, p.parameters, p.status, p.run_id, v, p.metrics)
            for rank, (p, v) in enumerate(ranked, 1)]
    rows += [PointRow(None, p.point, p.parameters, p.status, p.run_id, None, p.metrics) for p, _ in rest]
    parameters = list(record.grid.get("parameters", {}))
    return Comparison(record.id, record.name, metric, parameters, rows)


@dataclass(frozen=True)
class ScheduledRun:
    """One slot's run of a scheduled pipeline: when it was for (``as_of``), how it went, and its metric."""

    slot: str
    as_of: str
    run_id: str
    status: str
    value: float | None
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ScheduleSeries:
    """A scheduled pipeline's metric over its runs, oldest slot first."""

    schedule: str
    pipeline: str
    metric: Metric
    runs: list[ScheduledRun]

    def to_dict(self) -> dict:
        return {"schedule": self.schedule, "pipeline": self.pipeline, "metric": self.metric.to_dict(),
                "runs": [asdict(run) for run in self.runs]}


def schedule_series(schedules: ArtifactStore, runs: ArtifactStore, name: str,
                    metric_name: str | None = None) -> ScheduleSeries:
    """The metric of every run a schedule's slots made (each slot's succeeded attempt, else its last), read from
    the run records that carry the slot as ``parameters.as_of``.

    Args:
        schedules: the store the schedule is kept in (its slot history).
        runs: the store its runs went to (the schedule's own ``store``, else the same).
        name: the schedule.
        metric_name: the metric to follow; default: the primary metric of the pipeline's model.

    Raises:
        ScheduleNotFound: no such schedule.
        DataopsError: the schedule runs a job, not a pipeline; or the metric is not one its model has.
    """
    state = ScheduleState(schedules, name)
    schedule = state.load()
    if schedule.spec.pipeline is None:
        raise DataopsError(f"schedule {name!r} runs the job {schedule.spec.job!r}, not a pipeline: it has no metric")
    found: list[tuple[str, dict]] = []
    for slot in state.history():
        succeeded = [a["run_id"] for a in slot.attempts if a.get("run_id") and a.get("outcome") == SUCCEEDED]
        run_id = (succeeded or slot.run_ids or [None])[-1]
        if run_id is None:
            continue  # skipped or missed: no run
        try:
            record = load_record(runs, run_id)
        except ArtifactNotFound:
            continue  # removed from the store since
        if record.get("parameters", {}).get("as_of"):
            found.append((slot.slot, record))
    task = next((r["parameters"]["model"]["task"] for _, r in found if r["parameters"].get("model")), None)
    try:
        metric = metric_for(task, metric_name)
    except ValueError as exc:
        raise DataopsError(f"schedule {name!r}: {exc}") from None
    series = []
    for slot, record in found:
        metrics = headline_metrics(record.get("metrics", {}))
        series.append(ScheduledRun(slot, record["parameters"]["as_of"], record["run_id"], record.get("status", "?"),
                                   _value(metrics, metric.name), metrics))
    series.sort(key=lambda run: (run.as_of, run.slot))
    return ScheduleSeries(name, schedule.spec.pipeline, metric, series)
