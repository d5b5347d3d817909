"""A drift check: every column's statistics against the policy's thresholds, and one verdict for the window.

The result is plain data in a documented, versioned shape (``RESULT_FORMAT``): the CLI prints it as a table,
the store keeps it as JSON, reports and the retrain loop read it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from orchestrator.monitoring import statistics as st
from orchestrator.monitoring.counts import WindowCounts
from orchestrator.monitoring.policy import DriftPolicy
from orchestrator.monitoring.profile import CategoricalReference, NumericReference, ReferenceProfile

RESULT_FORMAT = "dataops.drift/1"
NO_DRIFT, WARNING, DRIFT, INSUFFICIENT = "no_drift", "warning", "drift", "insufficient_data"


@dataclass
class Statistic:
    """One statistic of one column: its value, the threshold it is held to (None: reported only), the verdict."""

    name: str
    value: float | None
    threshold: float | None = None
    verdict: str = NO_DRIFT


@dataclass
class ColumnResult:
    name: str
    kind: str
    role: str
    rows: int
    verdict: str
    statistics: list[Statistic] = field(default_factory=list)
    importance: float | None = None

    def statistic(self, name: str) -> Statistic:
        return next(s for s in self.statistics if s.name == name)


@dataclass
class DriftResult:
    """A window's verdict (``drift``, ``no_drift`` or ``insufficient_data``), why, and every column's figures."""

    verdict: str
    rows: int
    reasons: list[str]
    columns: list[ColumnResult]
    policy: dict
    format: str = RESULT_FORMAT

    def to_dict(self) -> dict:
        return _clean(asdict(self))

    @property
    def drifted(self) -> list[str]:
        return [c.name for c in self.columns if c.verdict == DRIFT]


def _gate(name: str, value: float, threshold: float, verdict: str = DRIFT) -> Statistic:
    crossed = value is not None and not math.isnan(value) and value >= threshold
    return Statistic(name, value, threshold, verdict if crossed else NO_DRIFT)


def _unless_noise(gates: list[Statistic], p_value: float, significance: float) -> list[Statistic]:
    """Distribution distances over their thresholds drift only if the shift is also significant."""
    if not math.isnan(p_value) and p_value < significance:
        return gates
    return [Statistic(g.name, g.value, g.threshold, WARNING) if g.verdict == DRIFT else g for g in gates]


def _numeric(column: NumericReference, current, policy: DriftPolicy) -> list[Statistic]:
    reference = column.counts
    psi = st.psi(reference.psi, current.psi)
    warn = policy.threshold(column.name, "psi_warn")
    stats = [
        _gate("psi", psi, policy.threshold(column.name, "psi_drift")),
        _gate("wasserstein_std", st.wasserstein(column, reference, current),
              policy.threshold(column.name, "wasserstein_drift")),
    ]
    if stats[0].verdict == NO_DRIFT and psi >= warn:
        stats[0] = Statistic("psi", psi, stats[0].threshold, WARNING)
    d, p = st.ks_test(reference, current)
    return _unless_noise(stats, p, policy.significance) + [Statistic("ks_statistic", d), Statistic("ks_p_value", p)]


def _categorical(column: CategoricalReference, current, policy: DriftPolicy) -> list[Statistic]:
    reference = column.counts.buckets
    buckets = current.buckets
    unseen = buckets[-1] / current.present if current.present else float("nan")
    p = st.chi_square_p(reference, buckets)
    distances = [
        _gate("js_distance", st.js_distance(reference, buckets), policy.threshold(column.name, "js_drift")),
        _gate("largest_share_change", st.largest_share_change(reference, buckets),
              policy.threshold(column.name, "linf_drift")),
    ]
    # Categories never seen in training need no test: the reference has none of them.
    return _unless_noise(distances, p, policy.significance) + [
        _gate("unseen_share", unseen, policy.threshold(column.name, "unseen_drift")),
        Statistic("chi_square_p_value", p),
    ]


def check_column(column, current, policy: DriftPolicy, importance: float | None = None) -> ColumnResult:
    """One column's statistics and verdict; a column with fewer than ``min_rows`` values is insufficient."""
    present = current.present
    if column.kind == "numeric":
        stats = _numeric(column, current, policy) if present else []
    else:
        stats = _categorical(column, current, policy) if present else []
    change = abs(st.missing_share(current) - st.missing_share(column.counts))
    stats.append(_gate("missing_share_change", change, policy.threshold(column.name, "missing_drift")))
    if current.rows < policy.min_rows:
        verdict = INSUFFICIENT
    elif any(s.verdict == DRIFT for s in stats):
        verdict = DRIFT
    elif any(s.verdict == WARNING for s in stats):
        verdict = WARNING
    else:
        verdict = NO_DRIFT
    return ColumnResult(column.name, column.kind, column.role, current.rows, verdict, stats, importance)


def check_drift(profile: ReferenceProfile, window: WindowCounts, policy: DriftPolicy | None = None) -> DriftResult:
    """Hold a window's counts against the reference profile.

    The window has drifted when at least ``drift_share`` of the features drifted, or any of the
    ``top_features`` most important ones, or any of the model's outputs. A window below ``min_rows`` rows is
    ``insufficient_data`` whatever its figures, and the columns it lacks are left out.
    """
    policy = policy or DriftPolicy()
    results = [check_column(column, window.columns[column.name], policy, profile.importance.get(column.name))
               for column in profile.columns if column.name in window.columns]
    if window.rows < policy.min_rows:
        return DriftResult(INSUFFICIENT, window.rows,
                           [f"the window has {window.rows:,} rows, fewer than the {policy.min_rows:,} a verdict needs"],
                           results, policy.model_dump())
    deciding = [r for r in results if not policy.ignored(r.name)]
    features = [r for r in deciding if r.role == "feature"]
    drifted = [r for r in features if r.verdict == DRIFT]
    reasons = []
    if features and len(drifted) / len(features) >= policy.drift_share:
        reasons.append(f"{len(drifted)} of {len(features)} features drifted (at least {policy.drift_share:.0%})")
    ranked = sorted((r for r in features if r.importance is not None), key=lambda r: -r.importance)
    important = [r.name for r in ranked[: policy.top_features] if r.verdict == DRIFT]
    if important:
        reasons.append(f"important feature(s) drifted: {', '.join(important)}")
    outputs = [r.name for r in deciding if r.role == "prediction" and r.verdict == DRIFT]
    if outputs:
        reasons.append(f"the model's predictions drifted: {', '.join(outputs)}")
    return DriftResult(DRIFT if reasons else NO_DRIFT, window.rows, reasons, results, policy.model_dump())


def _clean(value):
    """JSON has no NaN: a statistic that cannot be computed is null."""
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value
