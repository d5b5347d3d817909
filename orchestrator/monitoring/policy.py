"""The drift policy: which statistic gates which column, at what threshold, and when a whole window has drifted.

Set per model in the pipeline file's ``monitoring:`` section (per column where it matters); the defaults are the
effect-size bands that stay quiet on large samples and on windows of at least ``min_rows`` rows.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


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

    psi_warn: float | None = Field(None, ge=0)
    psi_drift: float | None = Field(None, ge=0)
    wasserstein_drift: float | None = Field(None, ge=0)
    js_drift: float | None = Field(None, ge=0, le=1)
    linf_drift: float | None = Field(None, ge=0, le=1)
    unseen_drift: float | None = Field(None, ge=0, le=1)
    missing_drift: float | None = Field(None, ge=0, le=1)
    ignore: bool = Field(False, description="Report the column, never let it decide.")


class DriftPolicy(_Strict):
    """When a column, and a whole window, has drifted."""

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
