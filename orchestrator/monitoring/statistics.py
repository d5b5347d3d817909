"""Drift statistics between a reference and a window, computed from their counts alone.

Effect sizes decide (PSI, Wasserstein distance in reference standard deviations, Jensen–Shannon distance, the
largest change in a category's share, changes in missing and unseen shares); p-values are reported beside them,
because on large windows they call harmless shifts significant.
"""

from __future__ import annotations

import numpy as np
from scipy import special as scipy_special
from scipy import stats as scipy_stats
from scipy.spatial.distance import jensenshannon

from orchestrator.monitoring.profile import CategoricalCounts, NumericCounts, NumericReference

# Empty bins would make PSI's logarithm infinite: shares are floored at this.
PSI_EPSILON = 1e-4
# A (nearly) constant reference column: distances are measured in this many units instead of its zero spread.
MIN_STD = 1e-3


def shares(counts) -> np.ndarray:
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    return counts / total if total else counts


def psi(reference: list[int], current: list[int]) -> float:
    """Population stability index over the same bins: sum of (q - p) * ln(q / p)."""
    p = np.maximum(shares(reference), PSI_EPSILON)
    q = np.maximum(shares(current), PSI_EPSILON)
    return float(np.sum((q - p) * np.log(q / p)))


def support(column: NumericReference) -> np.ndarray:
    """Where each counted bin's mass sits: far tail bins first, then the grid's bin centres, then the upper tail."""
    width = column.width
    from orchestrator.monitoring.profile import TAIL_BINS

    # Tail bin 0 lies within one width of the edge; bin k >= 1 between 2^(k-1) and 2^k widths: its middle.
    offsets = np.concatenate([[0.5], 1.5 * 2.0 ** np.arange(TAIL_BINS - 1)]) * width
    centres = column.grid_low + (np.arange(column.grid_bins) + 0.5) * width
    return np.concatenate([(column.grid_low - offsets)[::-1], centres, column.grid_high + offsets])


def binned_masses(counts: NumericCounts) -> np.ndarray:
    """The counts in ``support`` order."""
    return np.concatenate([np.asarray(counts.under)[::-1], counts.grid, counts.over]).astype(np.float64)


def wasserstein(column: NumericReference, reference: NumericCounts, current: NumericCounts) -> float:
    """Wasserstein-1 distance between the two binned distributions, in the reference's standard deviations."""
    points = support(column)
    gap = np.abs(np.cumsum(shares(binned_masses(reference))) - np.cumsum(shares(binned_masses(current))))
    distance = float(np.sum(gap[:-1] * np.diff(points)))
    return distance / max(column.std or 0.0, MIN_STD)


def ks_test(reference: NumericCounts, current: NumericCounts) -> tuple[float, float]:
    """Kolmogorov–Smirnov statistic from the binned distributions, and its asymptotic p-value (report only)."""
    d = float(np.max(np.abs(np.cumsum(shares(binned_masses(reference))) - np.cumsum(shares(binned_masses(current))))))
    n, m = reference.present, current.present
    if not n or not m:
        return d, float("nan")
    # The limiting distribution: the exact one (kstwo) costs up to a second per column at a million rows, for a
    # figure that is only reported, and agrees with this to three digits at such sizes.
    return d, float(scipy_special.kolmogorov(d * np.sqrt(n * m / (n + m))))


def js_distance(reference: list[int], current: list[int]) -> float:
    """Jensen–Shannon distance in base 2 (0: the same shares, 1: disjoint)."""
    p, q = shares(reference), shares(current)
    if not p.sum() or not q.sum():
        return float("nan")
    return float(jensenshannon(p, q, base=2))


def largest_share_change(reference: list[int], current: list[int]) -> float:
    """L-infinity: the largest absolute change in any bucket's share."""
    return float(np.max(np.abs(shares(reference) - shares(current))))


def chi_square_p(reference: list[int], current: list[int]) -> float:
    """Chi-square test of the window's counts against the reference's shares (report only)."""
    expected = shares(reference) * sum(current)
    keep = expected > 0
    observed = np.asarray(current, dtype=np.float64)
    if keep.sum() < 2 or not observed.sum():
        return float("nan")
    # Counts in buckets the reference never had (unseen categories) make the difference as plain as it gets.
    if observed[~keep].sum():
        return 0.0
    return float(scipy_stats.chisquare(observed[keep], expected[keep]).pvalue)


def missing_share(counts: NumericCounts | CategoricalCounts) -> float:
    return counts.missing / counts.rows if counts.rows else float("nan")
