"""Counting a window of rows on a reference profile's frozen edges.

Counts are integers (and sums) per bin, so they merge by addition: the counts of 24 hourly windows, of several
servers or of a Dask DataFrame's partitions add up to exactly the counts of the concatenated rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from orchestrator.monitoring.profile import (
    CategoricalCounts,
    CategoricalReference,
    NumericCounts,
    NumericReference,
    ReferenceProfile,
    TAIL_BINS,
)

Counts = NumericCounts | CategoricalCounts


def count_numeric(column: NumericReference, values) -> NumericCounts:
    """Count one numeric column on the PSI bins and on the fine grid with its geometric tails."""
    array = values if isinstance(values, np.ndarray) and values.dtype == np.float64 else _floats(values)
    rows = int(array.size)
    missing_mask = np.isnan(array)
    missing = int(missing_mask.sum())
    present = array[~missing_mask] if missing else array
    bins = column.grid_bins
    if not present.size:
        return NumericCounts(rows, missing, [0] * (len(column.psi_edges) + 1), [0] * bins, [0] * TAIL_BINS,
                             [0] * TAIL_BINS)
    # Scaled by the grid's width and shifted by one, everything below the grid truncates (toward zero) to 0 or less
    # and everything at or above its high edge to bins + 1: after clipping, bins 0 and bins + 1 are the tails.
    # In place in one float buffer, clipped before the cast: a third of the time of the plain expression.
    scaled = present * (1.0 / column.width)
    scaled += 1.0 - column.grid_low / column.width
    np.clip(scaled, 0, bins + 1, out=scaled)
    index = scaled.astype(np.int32)
    grid = np.bincount(index, minlength=bins + 2)
    under = _tail(column.grid_low - present[index == 0], column.width) if grid[0] else [0] * TAIL_BINS
    over = _tail(present[index == bins + 1] - column.grid_high, column.width) if grid[-1] else [0] * TAIL_BINS
    return NumericCounts(rows, missing, _psi_counts(column, present, index, grid), grid[1:-1].tolist(), under, over,
                         float(present.min()), float(present.max()))


def _psi_counts(column: NumericReference, present: np.ndarray, index: np.ndarray, grid: np.ndarray) -> list[int]:
    """Counts on the PSI's quantile bins, through the grid: a grid bin that no PSI edge cuts lies wholly in one PSI
    bin, so only the values of the few bins an edge cuts are placed one by one (a binary search over every value
    would cost four times the grid's counting)."""
    edges = np.asarray(column.psi_edges)
    lookup, cut = _psi_lookup(column)
    counts = np.bincount(lookup[~cut], weights=grid[~cut], minlength=len(edges) + 1)
    if cut.any():
        counts += np.bincount(np.searchsorted(edges, present[cut[index]], side="right"), minlength=len(edges) + 1)
    return [int(c) for c in counts]


def _psi_lookup(column: NumericReference) -> tuple[np.ndarray, np.ndarray]:
    """Per grid bin (tails included): its PSI bin, and whether a PSI edge falls in (or on the bounds of) it."""
    edges = np.asarray(column.psi_edges)
    bounds = column.grid_low + np.arange(column.grid_bins + 1) * column.width
    lows = np.concatenate([[-np.inf], bounds])
    highs = np.concatenate([bounds, [np.inf]])
    # Closed on both sides: a value that rounding puts in a neighbouring bin is still placed exactly.
    first = np.searchsorted(edges, lows, side="left")
    last = np.searchsorted(edges, highs, side="right")
    cut = last > first
    return np.searchsorted(edges, lows, side="right"), cut


def _tail(distances: np.ndarray, width: float) -> list[int]:
    """Tail bins by distance from the grid's edge: bin 0 within one width, bin k in [2^(k-1), 2^k) widths."""
    _, exponent = np.frexp(distances / width)
    return np.bincount(np.clip(exponent, 0, TAIL_BINS - 1), minlength=TAIL_BINS).tolist()


def count_categorical(column: CategoricalReference, values) -> CategoricalCounts:
    """Count one categorical column on the reference's top categories, then "other" (known) and "unseen"."""
    series = values if isinstance(values, pd.Series) else pd.Series(values)
    rows = len(series)
    present = series[series.notna()]
    missing = rows - len(present)
    # Count the values as they are, then name the distinct ones as text: converting every row first costs ten
    # times as much on a category column.
    frequencies = present.value_counts(sort=False)
    frequencies.index = frequencies.index.astype(str)
    frequencies = frequencies.groupby(level=0, sort=False).sum()
    top = column.categories
    buckets = [int(frequencies.get(name, 0)) for name in top]
    rest = frequencies[~frequencies.index.isin(top)]
    known = int(rest[rest.index.isin(column.known)].sum())
    buckets += [known, int(rest.sum()) - known]
    return CategoricalCounts(rows, missing, buckets)


def count_column(column, values) -> Counts:
    return count_numeric(column, values) if column.kind == "numeric" else count_categorical(column, values)


def merge_counts(first: Counts, second: Counts) -> Counts:
    """The counts of both windows together (what counting their concatenation gives)."""
    if isinstance(first, NumericCounts):
        lows = [v for v in (first.low, second.low) if v is not None]
        highs = [v for v in (first.high, second.high) if v is not None]
        return NumericCounts(
            first.rows + second.rows, first.missing + second.missing,
            _add(first.psi, second.psi), _add(first.grid, second.grid),
            _add(first.under, second.under), _add(first.over, second.over),
            min(lows) if lows else None, max(highs) if highs else None,
        )
    return CategoricalCounts(first.rows + second.rows, first.missing + second.missing,
                             _add(first.buckets, second.buckets))


@dataclass
class WindowCounts:
    """Every monitored column of one window, counted; ``rows`` is the window's row count."""

    rows: int = 0
    columns: dict[str, Counts] = field(default_factory=dict)

    def merge(self, other: "WindowCounts") -> "WindowCounts":
        names = list(dict.fromkeys([*self.columns, *other.columns]))
        merged = {}
        for name in names:
            if name in self.columns and name in other.columns:
                merged[name] = merge_counts(self.columns[name], other.columns[name])
            else:
                merged[name] = self.columns.get(name) or other.columns[name]
        return WindowCounts(self.rows + other.rows, merged)


def count_window(profile: ReferenceProfile, frame: pd.DataFrame) -> WindowCounts:
    """Count the profile's columns present in ``frame`` (a window may lack the model's outputs, say)."""
    counted = {c.name: count_column(c, frame[c.name]) for c in profile.columns if c.name in frame.columns}
    return WindowCounts(len(frame), counted)


def merge_windows(windows) -> WindowCounts:
    """All windows' counts together."""
    total = WindowCounts()
    for window in windows:
        total = total.merge(window)
    return total


def count_dask(profile: ReferenceProfile, frame, client=None) -> WindowCounts:
    """Count a Dask DataFrame partition by partition on the workers, and merge the partitions' counts.

    Only the counts travel: a few kilobytes per partition, whatever the window's size.
    """
    import dask

    parts = [dask.delayed(count_window)(profile, part) for part in frame.to_delayed()]
    if client is not None:
        counted = client.gather(client.compute(parts))
    else:
        counted = dask.compute(*parts)
    return merge_windows(counted)


def _add(first: list, second: list) -> list:
    if not first:
        return list(second)
    if not second:
        return list(first)
    return [a + b for a, b in zip(first, second)]


def _floats(values) -> np.ndarray:
    if isinstance(values, pd.Series):
        return pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return np.asarray(values, dtype=np.float64)
