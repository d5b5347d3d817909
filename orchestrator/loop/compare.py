"""Champion against challenger: whether a retrained model may replace the one serving.

Both are scored on the same fresh labelled holdout, which neither trained on; the challenger wins only if it is
better on the primary metric by at least the margin, and passed ONNX parity and the model card's smoke test. A tie,
a metric that is missing or not a finite number (on either side), or a holdout that is not the same for both keeps
the champion: the loop never deploys a model it cannot show to be better.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

from orchestrator.errors import SpecError
from orchestrator.monitoring.policy import METRIC_DIRECTIONS, ChallengerRule
from orchestrator.yaml_files import suggest

HIGHER, LOWER = "higher", "lower"
CHALLENGER, CHAMPION = "challenger", "champion"

# Why the comparison came out as it did.
BETTER = "better"
BELOW_MARGIN = "below_margin"
TIE = "tie"
WORSE = "worse"
CHALLENGER_METRIC_UNUSABLE = "challenger_metric_unusable"
CHAMPION_METRIC_UNUSABLE = "champion_metric_unusable"
PARITY_FAILED = "parity_failed"
SMOKE_FAILED = "smoke_failed"
HOLDOUT_MISMATCH = "holdout_mismatch"

# What a comparison leads to, under the policy's approval.
DEPLOY, AWAIT_APPROVAL, KEEP_CHAMPION = "deploy", "await_approval", "keep_champion"

# The metric of each scikit-learn scorer a pipeline may tune on, as the evaluation names it.
SCORER_METRICS = {
    "roc_auc": "roc_auc", "roc_auc_ovr": "roc_auc", "average_precision": "pr_auc", "f1": "f1", "f1_macro": "f1",
    "accuracy": "accuracy", "neg_log_loss": "log_loss", "neg_root_mean_squared_error": "rmse",
    "neg_mean_absolute_error": "mae", "r2": "r2",
}


def metric_direction(metric: str, direction: str | None = None) -> str:
    """Whether larger values of ``metric`` are better: ``direction`` when given, else known from the name.

    Raises:
        SpecError: no direction given and the metric is not one the evaluation writes.
    """
    if direction is not None:
        if direction not in (HIGHER, LOWER):
            raise SpecError(f"monitoring.retrain.challenger.direction: expected 'higher' or 'lower', got "
                            f"{direction!r}")
        return direction
    if metric not in METRIC_DIRECTIONS:
        raise SpecError(f"monitoring.retrain.challenger: metric {metric!r} has no known direction"
                        f"{suggest(metric, METRIC_DIRECTIONS)}; give `direction: higher` or `lower`")
    return METRIC_DIRECTIONS[metric]


def primary_metric(rule: ChallengerRule, task: str, classes: int | None = None,
                   scoring: str | None = None) -> tuple[str, str]:
    """The metric a comparison uses and its direction: the rule's, else the pipeline's own.

    The pipeline's own metric is the one its tuning optimises (``model.tuning.scoring``), else the tuning's default:
    roc_auc for two classes, accuracy for more, rmse for regression.

    Args:
        rule: ``monitoring.retrain.challenger``.
        task: ``classification`` or ``regression``.
        classes: How many classes (classification).
        scoring: The pipeline's ``model.tuning.scoring``, if it tunes.

    Returns:
        ``(metric, direction)``.

    Raises:
        SpecError: the pipeline tunes on a scorer the evaluation writes no metric for, and the rule names none.
    """
    if rule.metric is not None:
        return rule.metric, metric_direction(rule.metric, rule.direction)
    if scoring is not None:
        if scoring not in SCORER_METRICS:
            raise SpecError(f"the pipeline tunes on {scoring!r}, which the evaluation writes no metric for: set "
                            f"monitoring.retrain.challenger.metric (one of {', '.join(METRIC_DIRECTIONS)})")
        metric = SCORER_METRICS[scoring]
    elif task == "regression":
        metric = "rmse"
    else:
        metric = "roc_auc" if classes in (None, 2) else "accuracy"
    return metric, METRIC_DIRECTIONS[metric]


@dataclass(frozen=True)
class Comparison:
    """The outcome of champion against challenger, with every number it used.

    Attributes:
        winner: ``challenger`` or ``champion``.
        code: Why (``better``, ``below_margin``, ``tie``, ``worse``, ``parity_failed``, ...).
        reason: The same, in a sentence.
        metric: The metric compared, and ``direction`` whether higher or lower is better.
        champion_value: The champion's value on the holdout (None: missing or not a number).
        challenger_value: The challenger's.
        delta: How much better the challenger is, in the metric's units (negative: worse); None when unusable.
        margin: How much better it had to be.
        parity_passed: Whether the challenger passed ONNX parity (None: not run, which fails).
        smoke_passed: Whether it passed the model card's smoke test (None: not run, which fails).
        champion: The champion (``name:version``), when given.
        challenger: The challenger, when given.
        holdout: What the holdout was (rows, time span, fingerprint), when given.
        id: Set when the comparison is recorded.
    """

    winner: str
    code: str
    reason: str
    metric: str
    direction: str
    champion_value: float | None
    challenger_value: float | None
    delta: float | None
    margin: float
    parity_passed: bool | None
    smoke_passed: bool | None
    champion: str | None = None
    challenger: str | None = None
    holdout: dict = field(default_factory=dict)
    id: str | None = None

    @property
    def challenger_wins(self) -> bool:
        return self.winner == CHALLENGER

    def to_dict(self) -> dict:
        return asdict(self)


def _value(metrics: Mapping, metric: str) -> float | None:
    value = metrics.get(metric)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def compare_models(champion_metrics: Mapping, challenger_metrics: Mapping, *, metric: str, margin: float,
                   parity_passed: bool | None, smoke_passed: bool | None, direction: str | None = None,
                   champion: str | None = None, challenger: str | None = None,
                   holdout: Mapping | None = None) -> Comparison:
    """Hold the challenger against the champion on one holdout.

    Args:
        champion_metrics: The champion's metrics on the holdout (as the evaluation writes them).
        challenger_metrics: The challenger's, on the same holdout.
        metric: The metric compared.
        margin: How much better the challenger must be, in the metric's units (at least 0).
        parity_passed: The challenger's ONNX parity result.
        smoke_passed: The challenger's smoke test result.
        direction: ``higher`` or ``lower``; default known from the metric's name.
        champion: The champion's reference, for the record.
        challenger: The challenger's reference, for the record.
        holdout: The holdout's description, for the record.

    Returns:
        The comparison: the challenger wins only when every condition holds.

    Raises:
        SpecError: the metric's direction is neither given nor known.
        ValueError: the margin is negative or not a number.
    """
    if not (isinstance(margin, (int, float)) and math.isfinite(margin) and margin >= 0):
        raise ValueError(f"the margin must be a number of at least 0, got {margin!r}")
    direction = metric_direction(metric, direction)
    old, new = _value(champion_metrics, metric), _value(challenger_metrics, metric)
    delta = None if old is None or new is None else (new - old if direction == HIGHER else old - new)
    made = {"metric": metric, "direction": direction, "champion_value": old, "challenger_value": new, "delta": delta,
            "margin": float(margin), "parity_passed": parity_passed, "smoke_passed": smoke_passed,
            "champion": champion, "challenger": challenger, "holdout": dict(holdout or {})}

    def keep(code: str, reason: str) -> Comparison:
        return Comparison(CHAMPION, code, reason, **made)

    if parity_passed is not True:
        return keep(PARITY_FAILED, "the challenger's ONNX graph does not predict what its scikit-learn model does"
                    if parity_passed is False else "the challenger's ONNX parity was not checked")
    if smoke_passed is not True:
        return keep(SMOKE_FAILED, "the challenger failed the model card's smoke test"
                    if smoke_passed is False else "the challenger's smoke test was not run")
    rows = champion_metrics.get("rows"), challenger_metrics.get("rows")
    if None not in rows and rows[0] != rows[1]:
        return keep(HOLDOUT_MISMATCH, f"the champion was scored on {rows[0]} rows and the challenger on {rows[1]}: "
                                      f"not the same holdout")
    if new is None:
        return keep(CHALLENGER_METRIC_UNUSABLE, f"the challenger's {metric} is missing or not a number")
    if old is None:
        return keep(CHAMPION_METRIC_UNUSABLE, f"the champion's {metric} is missing or not a number, so the "
                                              f"challenger cannot be shown to be better")
    figures = f"{metric} {new:.6g} against {old:.6g} ({direction} is better)"
    if delta == 0:
        return keep(TIE, f"a tie: {figures}")
    if delta < 0:
        return keep(WORSE, f"the challenger is worse: {figures}")
    # A challenger better by exactly the margin meets it, even when the subtraction rounds a hair below.
    if delta < margin and not math.isclose(delta, margin, rel_tol=1e-9, abs_tol=1e-12):
        return keep(BELOW_MARGIN, f"the challenger is better by {delta:.6g}, less than the margin {margin:g}: "
                                  f"{figures}")
    return Comparison(CHALLENGER, BETTER, f"the challenger is better by {delta:.6g} (margin {margin:g}): {figures}",
                      **made)


def compare_by_rule(rule: ChallengerRule, champion_metrics: Mapping, challenger_metrics: Mapping, *, task: str,
                    classes: int | None = None, scoring: str | None = None, parity_passed: bool | None,
                    smoke_passed: bool | None, **record) -> Comparison:
    """:func:`compare_models` with the metric, direction and margin of the policy's challenger rule.

    Args:
        rule: ``monitoring.retrain.challenger``.
        task, classes, scoring: The pipeline's task, class count and tuning scorer (see :func:`primary_metric`).
        record: ``champion``, ``challenger`` and ``holdout``, for the record.
    """
    metric, direction = primary_metric(rule, task, classes, scoring)
    return compare_models(champion_metrics, challenger_metrics, metric=metric, direction=direction,
                          margin=rule.margin, parity_passed=parity_passed, smoke_passed=smoke_passed, **record)


def next_step(comparison: Comparison, approval: str) -> str:
    """What follows a comparison: ``deploy`` the winning challenger (approval ``auto``), ``await_approval``
    (``manual``), or ``keep_champion``, a losing challenger staying registered but never deployed."""
    if approval not in ("auto", "manual"):
        raise ValueError(f"approval must be 'auto' or 'manual', got {approval!r}")
    if not comparison.challenger_wins:
        return KEEP_CHAMPION
    return DEPLOY if approval == "auto" else AWAIT_APPROVAL
