"""Which metric ranks an experiment's points, and which way is better.

The evaluate stage writes the run's metrics (``orchestrator/ml/evaluate.py``); a pipeline's primary metric is ROC AUC
for a classifier and RMSE for a regressor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from orchestrator.yaml_files import suggest

Direction = Literal["max", "min"]
MetricName = Literal["roc_auc", "pr_auc", "accuracy", "f1", "log_loss", "rmse", "mae", "r2"]

# Every headline metric the evaluate stage writes, by task, with the direction in which it improves.
TASK_METRICS: dict[str, dict[str, Direction]] = {
    "classification": {"roc_auc": "max", "pr_auc": "max", "accuracy": "max", "f1": "max", "log_loss": "min"},
    "regression": {"rmse": "min", "mae": "min", "r2": "max"},
}
PRIMARY = {"classification": "roc_auc", "regression": "rmse"}
METRIC_NAMES = tuple(dict.fromkeys(name for metrics in TASK_METRICS.values() for name in metrics))
assert set(METRIC_NAMES) == set(get_args(MetricName)), "every task metric is a name a grid file may give"


@dataclass(frozen=True)
class Metric:
    """The metric points are ranked by: its name and whether larger (``max``) or smaller (``min``) is better."""

    name: str
    direction: Direction

    def to_dict(self) -> dict:
        return {"name": self.name, "direction": self.direction}


def metric_for(task: str | None, name: str | None = None) -> Metric:
    """The metric named ``name`` (else the task's primary one) with its direction.

    Args:
        task: ``classification`` or ``regression`` (None: a pipeline without a model, ranked by the named metric).
        name: a metric the evaluate stage writes; None for the task's primary metric.

    Raises:
        ValueError: the task writes no such metric (the message lists the ones it writes), or neither is known.
    """
    if task is None:
        if name is None:
            raise ValueError("the pipeline declares no model, so it has no primary metric: name one with `metric:`")
        directions = {n: d for metrics in TASK_METRICS.values() for n, d in metrics.items()}
    else:
        directions = TASK_METRICS[task]
    name = name or PRIMARY[task]
    if name not in directions:
        whose = f"a {task} model has" if task else "the evaluate stage writes"
        raise ValueError(f"{whose} no metric {name!r}{suggest(name, directions)}; it has: {', '.join(directions)}")
    return Metric(name, directions[name])


def headline_metrics(metrics: dict) -> dict[str, float]:
    """The numeric headline metrics of a run record's ``metrics`` (baselines, matrices and importances left out)."""
    return {name: float(value) for name, value in metrics.items()
            if name in METRIC_NAMES and isinstance(value, (int, float)) and not isinstance(value, bool)}
