"""The reference profile: what a model's training data (and its outputs) looked like, frozen at training time.

Everything a drift check compares against is decided here, once, from the reference alone: the quantile edges of
the PSI bins, the fine equal-width grid for Wasserstein distances, the categories counted apart. A current window
is counted on these frozen edges (``counts.py``), so counts from shards, hours and servers add up exactly, and the
raw reference is never needed again.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

PROFILE_FORMAT = 1
PSI_BINS = 10
GRID_BINS = 1000
TAIL_BINS = 48
# The fine grid spans the reference between these quantiles; the rare values beyond go to an under- or overflow
# bin that also keeps their sum, so a current window far outside the reference still gets its true distance.
GRID_QUANTILES = (0.001, 0.999)
TOP_CATEGORIES = 50
# Categories seen in training beyond the top ones are "other"; beyond this many, a category is not remembered at
# all and counts as unseen (a free-text column is not a categorical feature).
KNOWN_CATEGORIES = 10_000


@dataclass
class NumericReference:
    """One numeric column of the reference."""

    name: str
    psi_edges: list[float]
    grid_low: float
    grid_high: float
    grid_bins: int
    counts: "NumericCounts"
    mean: float | None = None
    std: float | None = None
    role: str = "feature"
    kind: str = "numeric"

    @property
    def width(self) -> float:
        return (self.grid_high - self.grid_low) / self.grid_bins


@dataclass
class CategoricalReference:
    """One categorical column of the reference: its top categories, and every category seen (when few enough)."""

    name: str
    categories: list[str]
    known: list[str]
    counts: "CategoricalCounts"
    role: str = "feature"
    kind: str = "categorical"


@dataclass
class NumericCounts:
    """A numeric column counted on frozen edges: integers only, so windows merge by addition exactly.

    ``grid`` holds the fine grid's bins; values below or above it go to ``under`` and ``over``, whose bins grow
    geometrically away from the grid (bin k >= 1 holds values between 2^(k-1) and 2^k grid widths beyond its
    edge, bin 0 those within one width), so a window far outside the reference still gets a close distance.
    """

    rows: int = 0
    missing: int = 0
    psi: list[int] = field(default_factory=list)
    grid: list[int] = field(default_factory=list)
    under: list[int] = field(default_factory=list)
    over: list[int] = field(default_factory=list)
    low: float | None = None
    high: float | None = None

    @property
    def present(self) -> int:
        return self.rows - self.missing


@dataclass
class CategoricalCounts:
    """A categorical column counted on the reference's categories, then "other" (known, not top) and "unseen"."""

    rows: int = 0
    missing: int = 0
    buckets: list[int] = field(default_factory=list)

    @property
    def present(self) -> int:
        return self.rows - self.missing


Reference = NumericReference | CategoricalReference


@dataclass
class ReferenceProfile:
    """Every monitored column of a model's reference, in input order, then the model's outputs."""

    columns: list[Reference]
    importance: dict[str, float] = field(default_factory=dict)
    format: int = PROFILE_FORMAT

    def column(self, name: str) -> Reference:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    def to_dict(self) -> dict:
        return {"format": self.format, "importance": self.importance, "columns": [asdict(c) for c in self.columns]}

    @classmethod
    def from_dict(cls, data: dict) -> "ReferenceProfile":
        columns: list[Reference] = []
        for raw in data["columns"]:
            raw = dict(raw)
            if raw["kind"] == "numeric":
                raw["counts"] = NumericCounts(**raw["counts"])
                columns.append(NumericReference(**raw))
            else:
                raw["counts"] = CategoricalCounts(**raw["counts"])
                columns.append(CategoricalReference(**raw))
        return cls(columns, dict(data.get("importance", {})), data.get("format", PROFILE_FORMAT))


def numeric_reference(name: str, values, role: str = "feature", psi_bins: int = PSI_BINS,
                      grid_bins: int = GRID_BINS) -> NumericReference:
    """Freeze the edges of one numeric column from its reference values, and count the reference on them."""
    from orchestrator.monitoring.counts import count_numeric

    array = _floats(values)
    present = array[~np.isnan(array)]
    if present.size:
        interior = np.quantile(present, np.linspace(0, 1, psi_bins + 1)[1:-1])
        # Ties (a column with few distinct values) would give empty bins: one edge per distinct cut.
        psi_edges = sorted(set(float(e) for e in interior))
        low, high = (float(v) for v in np.quantile(present, GRID_QUANTILES))
    else:
        psi_edges, low, high = [], 0.0, 1.0
    if not high > low:
        # A (nearly) constant column: a unit-wide grid around it still measures how far a window moves.
        low, high = low - 0.5, low + 0.5
    column = NumericReference(name, psi_edges, low, high, grid_bins, NumericCounts(), role=role)
    column.counts = count_numeric(column, array)
    if present.size:
        # Exact moments of the reference: the scale that Wasserstein distances are measured in.
        column.mean, column.std = float(present.mean()), float(present.std())
    return column


def categorical_reference(name: str, values, role: str = "feature", top: int = TOP_CATEGORIES) -> CategoricalReference:
    """The reference's categories, most frequent first (ties by name, for a stable profile), counted."""
    from orchestrator.monitoring.counts import count_categorical

    series = pd.Series(values)
    present = series[series.notna()].astype(str)
    frequencies = present.value_counts()
    ordered = sorted(frequencies.items(), key=lambda item: (-item[1], item[0]))
    names = [str(k) for k, _ in ordered]
    known = sorted(names) if len(names) <= KNOWN_CATEGORIES else sorted(names[:KNOWN_CATEGORIES])
    column = CategoricalReference(name, names[:top], known, CategoricalCounts(), role)
    column.counts = count_categorical(column, series)
    return column


def build_profile(frame: pd.DataFrame, numeric: list[str], categorical: list[str],
                  outputs: pd.DataFrame | None = None, output_kinds: dict[str, str] | None = None,
                  importance: dict[str, float] | None = None) -> ReferenceProfile:
    """The reference profile of a model.

    Args:
        frame: the reference rows (the training partition).
        numeric: numeric feature columns.
        categorical: categorical feature columns.
        outputs: the model's outputs on reference rows (the validation partition), one column per output
            (``label``, ``proba_<class>`` or ``prediction``).
        output_kinds: ``numeric`` or ``categorical`` per output column (default: numeric for numbers, categorical
            for anything else, such as predicted labels).
        importance: importance of each feature (the model card's permutation importance), for the verdict.
    """
    columns: list[Reference] = [numeric_reference(name, frame[name]) for name in numeric]
    columns += [categorical_reference(name, frame[name]) for name in categorical]
    if outputs is not None:
        kinds = output_kinds or {}
        for name in outputs.columns:
            numbers = pd.api.types.is_numeric_dtype(outputs[name]) and not pd.api.types.is_bool_dtype(outputs[name])
            kind = kinds.get(name, "numeric" if numbers else "categorical")
            if kind == "numeric":
                columns.append(numeric_reference(name, outputs[name], role="prediction"))
            else:
                columns.append(categorical_reference(name, outputs[name], role="prediction"))
    return ReferenceProfile(columns, dict(importance or {}))


def _floats(values) -> np.ndarray:
    if isinstance(values, pd.Series):
        return pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return np.asarray(values, dtype=np.float64)
