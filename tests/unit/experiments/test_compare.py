"""Comparisons: points best first in the metric's direction (points without a value last), a PNG with one panel
per parameter, and a scheduled pipeline's metric slot after slot, read from its slot history and run records."""

from __future__ import annotations

import struct
from datetime import UTC, datetime

import pytest

from orchestrator.artifacts.lineage import save_record
from orchestrator.artifacts.local import LocalStore
from orchestrator.errors import DataopsError
from orchestrator.experiments.compare import compare_points
from orchestrator.experiments.metrics import Metric
from orchestrator.experiments.record import ExperimentRecord, PointRecord, save_experiment
from orchestrator.scheduling.spec import ScheduleSpec
from orchestrator.scheduling.state import ScheduleState
from orchestrator.scheduling.tick import ExecutionResult, SlotRunFailed, tick
from orchestrator.usecases.experiments import compare_experiment, compare_schedule


def experiment(points: list[tuple[str, dict, dict]], metric=("roc_auc", "max")) -> ExperimentRecord:
    parameters = list(points[0][1]) if points else []
    return ExperimentRecord(
        id="shop-0123456789", name="shop", pipeline={"name": "shop", "path": "/p.yaml", "sha256": "0" * 64},
        grid={"parameters": {p: [] for p in parameters}}, grid_path="/grid.yaml",
        metric={"name": metric[0], "direction": metric[1]}, created_at="2027-06-01T00:00:00Z",
        points=[PointRecord(n, params, status, f"run-{n}" if status != "pending" else None, metrics)
                for n, (status, params, metrics) in enumerate(points, 1)],
    )


POINTS = [
    ("succeeded", {"model.params.C": 0.01, "model.params.penalty": "l2"}, {"roc_auc": 0.70, "log_loss": 0.61}),
    ("failed", {"model.params.C": 0.1, "model.params.penalty": "l2"}, {}),
    ("succeeded", {"model.params.C": 1.0, "model.params.penalty": "l1"}, {"roc_auc": 0.80, "log_loss": 0.52}),
    ("pending", {"model.params.C": 10.0, "model.params.penalty": "l1"}, {}),
    ("succeeded", {"model.params.C": 100.0, "model.params.penalty": "l2"}, {"roc_auc": 0.75, "log_loss": 0.50}),
]


def test_points_are_ranked_best_first_by_a_metric_that_grows_and_points_without_a_value_come_last():
    comparison = compare_points(experiment(POINTS))
    assert [(row.rank, row.point, row.value) for row in comparison.rows] == [
        (1, 3, 0.80), (2, 5, 0.75), (3, 1, 0.70), (None, 2, None), (None, 4, None)]
    assert comparison.best.point == 3
    assert comparison.parameters == ["model.params.C", "model.params.penalty"]


def test_a_metric_that_shrinks_ranks_its_smallest_value_first():
    comparison = compare_points(experiment(POINTS), Metric("log_loss", "min"))
    assert [row.point for row in comparison.rows] == [5, 3, 1, 2, 4]


def test_equal_values_keep_the_order_of_their_points():
    tied = [("succeeded", {"x": n}, {"roc_auc": 0.5}) for n in range(3)]
    assert [row.point for row in compare_points(experiment(tied)).rows] == [1, 2, 3]


def test_nothing_succeeded_means_no_best_point():
    comparison = compare_points(experiment([("failed", {"x": 1}, {}), ("pending", {"x": 2}, {})]))
    assert comparison.best is None
    assert [row.rank for row in comparison.rows] == [None, None]


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


def test_the_comparison_plot_has_one_panel_per_parameter(tmp_path):
    store = LocalStore(tmp_path / "store")
    save_experiment(store, experiment(POINTS))
    one = experiment([(status, {"model.params.C": params["model.params.C"]}, metrics)
                      for status, params, metrics in POINTS])
    one.id = "shop-one"
    save_experiment(store, one)

    comparison = compare_experiment("shop-0123456789", str(tmp_path / "store"), tmp_path / "plots" / "two.png")
    compare_experiment("shop-one", str(tmp_path / "store"), tmp_path / "plots" / "one.png")

    assert comparison.best.point == 3
    two_wide, two_high = png_size(tmp_path / "plots" / "two.png")
    one_wide, one_high = png_size(tmp_path / "plots" / "one.png")
    assert two_high == one_high
    assert 1.9 < two_wide / one_wide < 2.1, "two parameters, two panels side by side"


def test_ranking_by_a_metric_the_evaluate_stage_does_not_write_is_refused_with_a_suggestion(tmp_path):
    store = LocalStore(tmp_path / "store")
    save_experiment(store, experiment(POINTS))
    with pytest.raises(DataopsError, match=r"--metric: the evaluate stage writes no metric 'logloss' "
                                           r"\(did you mean 'log_loss'\?\)"):
        compare_experiment("shop-0123456789", str(tmp_path / "store"), metric="logloss")


def at(hhmm: str) -> datetime:
    return datetime.fromisoformat(f"2027-06-01T{hhmm}:10").replace(tzinfo=UTC)


def test_a_schedules_metric_follows_its_slots_with_the_succeeded_attempts_runs(tmp_path):
    store = LocalStore(tmp_path / "store")
    spec = ScheduleSpec.model_validate({"name": "hourly-shop", "pipeline": "shop/pipeline.yaml", "cron": "0 * * * *",
                                        "retries": {"max": 1, "backoff": "1m"}})
    ScheduleState(store, spec.name).save(spec, "hourly-shop.yaml", at("00:00"))
    scores = iter([0.71, None, 0.69, 0.74])  # the second slot's first attempt fails, its retry succeeds

    def execute(schedule, slot):
        run_id = f"run-{slot:%H%M}-{len(list(store.list('runs')))}"
        score = next(scores)
        save_record(store, {"run_id": run_id, "status": "succeeded" if score else "failed",
                            "parameters": {"model": {"task": "classification"}, "as_of": f"{slot:%Y-%m-%dT%H:%M:%SZ}"},
                            "metrics": {"roc_auc": score, "accuracy": 0.6} if score else {}})
        if score is None:
            raise SlotRunFailed("the train stage failed", run_id, retryable=True)
        return ExecutionResult(run_id)

    for when in ("01:00", "02:00", "02:03", "03:00"):
        tick(store, at(when), "runner", execute, heartbeat_s=None)

    series = compare_schedule("hourly-shop", str(tmp_path / "store"), tmp_path / "schedule.png")

    assert series.metric == Metric("roc_auc", "max")
    assert [(run.as_of, run.status, run.value) for run in series.runs] == [
        ("2027-06-01T01:00:00Z", "succeeded", 0.71), ("2027-06-01T02:00:00Z", "succeeded", 0.69),
        ("2027-06-01T03:00:00Z", "succeeded", 0.74)]
    assert png_size(tmp_path / "schedule.png")[0] > 0


def test_a_schedule_of_a_job_has_no_metric_to_follow(tmp_path):
    store = LocalStore(tmp_path / "store")
    spec = ScheduleSpec.model_validate({"name": "sweep", "job": "cluster-sweep", "cron": "0 * * * *"})
    ScheduleState(store, spec.name).save(spec, "sweep.yaml", at("00:00"))
    with pytest.raises(DataopsError, match="schedule 'sweep' runs the job 'cluster-sweep', not a pipeline"):
        compare_schedule("sweep", str(tmp_path / "store"))
