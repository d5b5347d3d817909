"""The drift policy: which statistic gates which column, at what threshold, and when a whole window has drifted.

Set per model in the pipeline file's ``monitoring:`` section (per column where it matters); the defaults are the
effect-size bands that stay quiet on large samples and on windows of at least ``min_rows`` rows.

The same section says what the closed loop does with the verdicts: ``watch`` (one window per interval; how many of
the last windows must have drifted) and ``retrain`` (cooldown, a cap per period, what a challenger must show to
replace the champion, and who approves). ``orchestrator/loop`` applies them.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from orchestrator.durations import parse_duration
from orchestrator.yaml_files import suggest


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NumericThresholds(_Strict):
    """Numeric columns: PSI on the reference's quantile bins, Wasserstein distance in reference deviations."""

    psi_warn: float = Field(0.1, ge=0, description="PSI from which a column is reported as a warning.")
    psi_drift: float = Field(0.25, ge=0, description="PSI from which a column has drifted.")
    wasserstein_drift: float = Field(0.1, ge=0, description="Wasserstein distance / reference std from which a "
                                                               "column has drifted.")


class CategoricalThresholds(_Strict):
    """Categorical columns: Jensen–Shannon distance (base 2), largest share change, share of unseen categories."""

    js_drift: float = Field(0.1, ge=0, le=1, description="Jensen–Shannon distance from which a column has drifted.")
    linf_drift: float = Field(0.1, ge=0, le=1, description="Largest change of a category's share that is drift.")
    unseen_drift: float = Field(0.1, ge=0, le=1, description="Share of categories never seen in training that is "
                                                              "drift.")


class ColumnThresholds(_Strict):
    """Overrides for one column (only the fields given change)."""

    psi_warn: float | None = Field(None, ge=0, description="This column's `numeric.psi_warn`.")
    psi_drift: float | None = Field(None, ge=0, description="This column's `numeric.psi_drift`.")
    wasserstein_drift: float | None = Field(None, ge=0, description="This column's `numeric.wasserstein_drift`.")
    js_drift: float | None = Field(None, ge=0, le=1, description="This column's `categorical.js_drift`.")
    linf_drift: float | None = Field(None, ge=0, le=1, description="This column's `categorical.linf_drift`.")
    unseen_drift: float | None = Field(None, ge=0, le=1, description="This column's `categorical.unseen_drift`.")
    missing_drift: float | None = Field(None, ge=0, le=1, description="This column's `missing_drift`.")
    ignore: bool = Field(False, description="Report the column, never let it decide.")


# Whether a larger value of a metric is better, for every metric the evaluation writes (orchestrator/ml/evaluate.py).
METRIC_DIRECTIONS = {
    "roc_auc": "higher", "pr_auc": "higher", "f1": "higher", "accuracy": "higher", "r2": "higher",
    "log_loss": "lower", "rmse": "lower", "mae": "lower",
}
_CAP = re.compile(r"\s*(?P<count>\d+)\s+per\s+(?P<period>.+?)\s*")


def _duration(value: str, what: str) -> str:
    parse_duration(value, what)
    return value


class WatchPolicy(_Strict):
    """How windows are taken and how many of them must have drifted before a retrain is even considered.

    A window smaller than the policy's ``min_rows`` is insufficient data and never counts as drift.
    """

    every: str = Field("1d", description="One window per interval: its length and how often the watch decides.")
    windows: int = Field(3, ge=1, le=100, description="The decision looks at the newest this many windows...")
    drifted: int = Field(3, ge=1, le=100, description="...and retrains only if at least this many of them drifted.")

    @field_validator("every")
    @classmethod
    def _every_is_duration(cls, value: str) -> str:
        return _duration(value, "the watch interval")

    @model_validator(mode="after")
    def _drifted_within_windows(self) -> WatchPolicy:
        if self.drifted > self.windows:
            raise ValueError(f"drifted ({self.drifted}) cannot exceed windows ({self.windows}): a retrain needs "
                             f"`drifted` of the last `windows` windows to have drifted")
        return self

    @property
    def every_s(self) -> float:
        return parse_duration(self.every, "the watch interval")


class ChallengerRule(_Strict):
    """What a retrained model (the challenger) must show, on the same fresh labelled holdout as the model it would
    replace (the champion), to be deployed. ONNX parity and the model card's smoke test are always required."""

    metric: str | None = Field(None, description="The metric compared; default: the pipeline's own (its tuning "
                                                 "scoring, else roc_auc, accuracy or rmse by task).")
    direction: Literal["higher", "lower"] | None = Field(None, description="Whether larger values are better; "
                                                                           "default: known from the metric's name.")
    margin: float = Field(0.005, ge=0, allow_inf_nan=False,
                          description="How much better the challenger must be, in the metric's own units (absolute: "
                                      "0.005 of AUC); a tie never wins.")

    @model_validator(mode="after")
    def _direction_known(self) -> ChallengerRule:
        if self.direction is not None and self.metric is None:
            raise ValueError("`direction` is the direction of `metric`: name the metric too")
        if self.metric is not None and self.direction is None and self.metric not in METRIC_DIRECTIONS:
            raise ValueError(f"metric {self.metric!r} is not one the evaluation writes"
                             f"{suggest(self.metric, METRIC_DIRECTIONS)}; known: {', '.join(METRIC_DIRECTIONS)} "
                             f"(for another, give `direction: higher` or `lower`)")
        return self


class RetrainPolicy(_Strict):
    """When a sustained drift may start a retrain, and what deploys its result.

    One retrain at a time, always: a retrain in flight (running, or waiting for approval) blocks the next.
    """

    cooldown: str = Field("7d", description="After a retrain finishes (whatever its outcome), no other starts for "
                                            "this long.")
    max: str = Field("2 per 30d", description="At most this many retrains start in any such period: 'N per "
                                              "DURATION'.")
    approval: Literal["auto", "manual"] = Field("auto", description="auto: a winning challenger is deployed; "
                                                                    "manual: it waits for `dataops approve`.")
    challenger: ChallengerRule = Field(default_factory=ChallengerRule)
    run_deadline: str = Field("12h", description="A retrain still running this long after it started lost its "
                                                 "process (killed, its host gone): it is recorded failed.")

    @field_validator("cooldown")
    @classmethod
    def _cooldown_is_duration(cls, value: str) -> str:
        return _duration(value, "the retrain cooldown")

    @field_validator("run_deadline")
    @classmethod
    def _run_deadline_is_duration(cls, value: str) -> str:
        return _duration(value, "the retrain run deadline")

    @property
    def run_deadline_s(self) -> float:
        return parse_duration(self.run_deadline, "the retrain run deadline")

    @field_validator("max", mode="before")
    @classmethod
    def _max_is_count_per_period(cls, value) -> str:
        # Before pydantic's own type check, so that `max: 2` is told the whole form, not just "a valid string".
        match = _CAP.fullmatch(value) if isinstance(value, str) else None
        if match is None or int(match["count"]) < 1:
            raise ValueError(f"expected 'N per DURATION' with N at least 1, such as '2 per 30d', got {value!r}")
        parse_duration(match["period"], "the period of the retrain cap")
        return value

    @property
    def cooldown_s(self) -> float:
        return parse_duration(self.cooldown, "the retrain cooldown")

    @property
    def max_count(self) -> int:
        return int(_CAP.fullmatch(self.max)["count"])

    @property
    def max_period_s(self) -> float:
        return parse_duration(_CAP.fullmatch(self.max)["period"], "the period of the retrain cap")


class DriftPolicy(_Strict):
    """When a column, and a whole window, has drifted; and what the closed loop does about it (``watch``,
    ``retrain``)."""

    min_rows: int = Field(1000, ge=1, description="Smaller windows are 'insufficient data', never drift.")
    drift_share: float = Field(0.5, gt=0, le=1, description="The window drifted when this share of features did.")
    top_features: int = Field(3, ge=0, description="...or when any of this many most important features did.")
    missing_drift: float = Field(0.1, ge=0, le=1, description="Change of the missing share that is drift.")
    # An effect size over its threshold on a small window can be sampling noise: the shift must also be
    # significant (KS for numbers, chi-square for categories). The p-value never decides alone: on large windows
    # it calls everything significant, and the effect size then decides.
    significance: float = Field(0.001, gt=0, le=1, description="A distribution shift counts only when its p-value "
                                                                  "is below this (1: effect sizes alone decide).")
    numeric: NumericThresholds = Field(default_factory=NumericThresholds)
    categorical: CategoricalThresholds = Field(default_factory=CategoricalThresholds)
    columns: dict[str, ColumnThresholds] = Field(default_factory=dict, description="Per-column overrides.")
    watch: WatchPolicy = Field(default_factory=WatchPolicy, description="Windows, and how many must drift.")
    retrain: RetrainPolicy = Field(default_factory=RetrainPolicy, description="Cooldown, cap, challenger, approval.")

    def threshold(self, column: str, name: str) -> float:
        """The threshold ``name`` (e.g. ``psi_drift``) for ``column``, its override first."""
        override = self.columns.get(column)
        if override is not None and getattr(override, name) is not None:
            return getattr(override, name)
        if name == "missing_drift":
            return self.missing_drift
        group = self.numeric if name in NumericThresholds.model_fields else self.categorical
        return getattr(group, name)

    def ignored(self, column: str) -> bool:
        override = self.columns.get(column)
        return bool(override and override.ignore)
