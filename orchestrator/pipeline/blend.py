"""Joining sources onto a base frame: key joins and time-aligned (as-of) joins, each saying what it matched.

Lookup tables (weather, planes, airlines...) are small next to the fact table, so they are broadcast to every
partition of the base instead of shuffling both sides: no shuffle, and the base keeps its partitioning and order.

Every join marks the base rows that found a match; the marks are counted per partition (with the range of the base's
time column for a time join) from the blended frame. The counts are lazy: the blend stage computes them in the pass
that writes its output, so knowing the joins' match rates costs no second read of the data.
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass

import dask.dataframe as dd
import numpy as np
import pandas as pd

from orchestrator.errors import SpecError
from orchestrator.pipeline.spec import Join

# Above this many rows the right side is joined with a distributed (shuffling) merge instead of a broadcast.
BROADCAST_ROWS = 5_000_000
# Join i sets the column MATCHED + i on the rows it matched; the columns are dropped once counted (no source names a
# column so).
MATCHED = "__dataops_matched__"


def _marker(index: int) -> str:
    return f"{MATCHED}{index}"


def _marked(right: pd.DataFrame, marker: str) -> pd.DataFrame:
    # A small integer, not a boolean: with unmatched rows a boolean column becomes objects, slow to merge and take.
    return right.assign(**{marker: np.ones(len(right), dtype=np.int8)})


@dataclass(frozen=True)
class _Counted:
    """What the count pass needs of one join: its marker, whether it drops unmatched rows, its base time column."""

    marker: str
    inner: bool
    time_column: str | None


@dataclass
class Blended:
    """The blend, lazily: the joined frame and the counts of every join, to compute in one pass.

    Attributes:
        frame: the base with every join's columns (rows an inner join did not match are left out).
        counts: one row per partition with, for join ``i``, ``rows_i`` (base rows entering the join), ``matched_i``
            and, for a time join, ``time_min_i`` and ``time_max_i`` of the base's time column on those rows.
        joins: the declared joins, in order.
        right_times: per join, the joined source's first and last time (a time join), known before the pass.
    """

    frame: dd.DataFrame
    counts: dd.DataFrame
    joins: list[Join]
    right_times: list[tuple[pd.Timestamp, pd.Timestamp] | None]

    def reports(self, counts: pd.DataFrame) -> list[dict]:
        """What each join matched, from the computed ``counts``: the entries of the blend stage's ``joins``.

        Returns:
            Per join: ``join`` (where it is declared), ``source``, ``rows``, ``matched``, ``match_rate`` (None on an
            empty base), ``min_match_fraction`` and, for a time join, ``base_time`` and ``source_time`` (first and
            last, ISO 8601).
        """
        reports = []
        for index, (join, right_times) in enumerate(zip(self.joins, self.right_times)):
            rows, matched = int(counts[f"rows_{index}"].sum()), int(counts[f"matched_{index}"].sum())
            report = {"join": f"blend.joins[{index}]", "source": join.source, "rows": rows, "matched": matched,
                      "match_rate": matched / rows if rows else None, "min_match_fraction": join.min_match_fraction}
            if join.time:
                report["base_time"] = _span(counts[f"time_min_{index}"].min(), counts[f"time_max_{index}"].max())
                report["source_time"] = _span(*right_times) if right_times else None
            reports.append(report)
        return reports


def blend_frames(base: dd.DataFrame, joins: list[tuple[Join, dd.DataFrame, int]]) -> Blended:
    """Join each source onto ``base`` in order, lazily, with the counts that say what every join matched.

    Every row goes through every join with a marker per join; the counts are taken from the last frame and the rows
    an inner join did not match are dropped only then, so the whole blend stays one chain of tasks per partition
    and counting adds a single small task beside it.

    Args:
        base: the base source's frame.
        joins: per join, in order: the declared join, the joined source's frame and its number of rows (above
            ``BROADCAST_ROWS`` a key join shuffles instead of broadcasting).

    Returns:
        The blend, its per-partition counts and the joined sources' time ranges.

    Raises:
        SpecError: a key or time column is missing on one side, or the time columns differ in type.
    """
    frame, counted, right_times, inner_types = base, [], [], {}
    for index, (join, right, right_rows) in enumerate(joins):
        before = set(frame.columns)
        frame, times = _join(frame, right, join, right_rows, _marker(index))
        counted.append(_Counted(_marker(index), join.how == "inner", join.time.left if join.time else None))
        right_times.append(times)
        if join.how == "inner":
            inner_types.update({c: frame._meta[c].dtype for c in frame.columns
                                if c not in before and c != _marker(index)})
    counts = frame.map_partitions(_count, counted, meta=_count(frame._meta, counted), enforce_metadata=False)
    inner = [frame[c.marker] for c in counted if c.inner]
    if inner:
        # Unmatched rows made the joined integer columns floats; on the matched rows left they take back their type.
        frame = frame[functools.reduce(operator.and_, inner)].astype(inner_types)
    return Blended(frame.drop(columns=[c.marker for c in counted]), counts, [j for j, _, _ in joins], right_times)


def _count(frame: pd.DataFrame, counted: list[_Counted]) -> pd.DataFrame:
    """Per join: the rows entering it (those every earlier inner join matched), the matched ones among them and
    (a time join) their first and last base time, for one partition."""
    entering = np.ones(len(frame), dtype=bool)
    counts = {}
    for index, join in enumerate(counted):
        matched = frame[join.marker].to_numpy(dtype=bool)
        counts[f"rows_{index}"] = [int(entering.sum())]
        counts[f"matched_{index}"] = [int((matched & entering).sum())]
        if join.time_column is not None:
            times = frame[join.time_column][entering]
            # In the column's own type (zone included): an empty partition's NaT must not turn it into objects.
            counts[f"time_min_{index}"] = pd.Series([times.min()], dtype=times.dtype)
            counts[f"time_max_{index}"] = pd.Series([times.max()], dtype=times.dtype)
        if join.inner:
            entering &= matched
    return pd.DataFrame(counts)


def _by(columns: list[str] | None) -> list[str] | None:
    return list(columns) if columns else None


def _right_columns(join: Join, right: dd.DataFrame) -> list[str]:
    keys = join.right_on or join.keys
    wanted = list(join.columns) if join.columns else [c for c in right.columns]
    time = [join.time.right] if join.time else []
    return list(dict.fromkeys([*keys, *time, *wanted]))


def _key_merge(left: pd.DataFrame, right: pd.DataFrame, join: Join) -> pd.DataFrame:
    # Always a left merge: an inner join keeps the matched rows afterwards, once they are counted.
    return left.merge(
        right,
        how="left",
        on=_by(join.keys),
        left_on=join.left_on,
        right_on=join.right_on,
        suffixes=("", join.suffix),
    )


def _asof_merge(left: pd.DataFrame, right: pd.DataFrame, join: Join) -> pd.DataFrame:
    """Every left row once, in its order, with the right row its time aligns with (null columns where none is)."""
    time = join.time
    tolerance = pd.Timedelta(seconds=time.tolerance_seconds)
    stamps = left[time.left]
    if stamps.isna().any():
        return _asof_merge_with_missing_times(left, right, join, tolerance)
    # merge_asof needs both sides sorted by time and keeps the order of its left side, so sorting by position and
    # taking the inverse permutation afterwards restores the left order without any index lookup.
    # Series.argsort sorts the int64 view of the timestamps (to_numpy() on a zoned column would make objects).
    order = stamps.argsort(kind="stable").to_numpy()
    merged = _merge_asof(left.take(order).reset_index(drop=True), right, join, tolerance)
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    merged = merged.take(inverse)
    merged.index = left.index
    return merged


def _merge_asof(left: pd.DataFrame, right: pd.DataFrame, join: Join, tolerance: pd.Timedelta) -> pd.DataFrame:
    time = join.time
    return pd.merge_asof(
        left,
        right,
        left_on=time.left,
        right_on=time.right,
        left_by=_by(join.left_on or join.keys),
        right_by=_by(join.right_on or join.keys),
        direction=time.direction,
        tolerance=tolerance,
        suffixes=("", join.suffix),
        allow_exact_matches=True,
    )


def _asof_merge_with_missing_times(left: pd.DataFrame, right: pd.DataFrame, join: Join,
                                   tolerance: pd.Timedelta) -> pd.DataFrame:
    time = join.time
    order = left.index
    left_sorted = left.reset_index(drop=False, names="_row").sort_values(time.left, kind="stable")
    left_sorted = left_sorted[left_sorted[time.left].notna()]
    merged = _merge_asof(left_sorted, right, join, tolerance)
    merged = merged.set_index("_row").reindex(order)
    merged.index = order
    missing_time = left[left[time.left].isna()]
    if len(missing_time):
        merged.loc[missing_time.index, left.columns] = missing_time
    return merged


def _joined_partition(left: pd.DataFrame, right: pd.DataFrame, join: Join, marker: str) -> pd.DataFrame:
    """One partition of the base joined with the whole (broadcast) right side, its matched rows marked."""
    merged = _asof_merge(left, right, join) if join.time else _key_merge(left, right, join)
    merged[marker] = merged[marker].notna()
    return merged


def _join(left: dd.DataFrame, right: dd.DataFrame, join: Join, right_rows: int,
          marker: str) -> tuple[dd.DataFrame, tuple[pd.Timestamp, pd.Timestamp] | None]:
    """``right`` joined onto ``left`` as declared, every row kept and marked, and the right side's time range."""
    left_keys = join.left_on or join.keys
    for column in [*left_keys, *([join.time.left] if join.time else [])]:
        if column not in left.columns:
            raise SpecError(f"blend join with {join.source!r}: column {column!r} is not in the blended frame")
    columns = _right_columns(join, right)
    missing = [c for c in columns if c not in right.columns]
    if missing:
        raise SpecError(f"blend join with {join.source!r}: columns {missing} are not in source {join.source!r}")
    right = right[columns]
    if join.time:
        right_pd = right.compute().sort_values(join.time.right, kind="stable")
        right_pd = right_pd[right_pd[join.time.right].notna()]
        right_pd = _marked(_align_time_dtypes(left, right_pd, join), marker)
        stamps = right_pd[join.time.right]
        meta = _joined_partition(left._meta_nonempty.head(0), right_pd.head(0), join, marker)
        joined = left.map_partitions(_joined_partition, right_pd, join, marker, meta=meta, align_dataframes=False)
        return joined, ((stamps.iloc[0], stamps.iloc[-1]) if len(stamps) else None)
    if right_rows <= BROADCAST_ROWS:
        right_pd = right.compute()
        right_keys = join.right_on or join.keys
        # Duplicate keys on a lookup table would multiply base rows silently.
        dupes = right_pd.duplicated(subset=right_keys).sum()
        if dupes:
            right_pd = right_pd.drop_duplicates(subset=right_keys, keep="first")
        right_pd = _marked(right_pd, marker)
        meta = _joined_partition(left._meta, right_pd.head(0), join, marker)
        return left.map_partitions(_joined_partition, right_pd, join, marker, meta=meta, align_dataframes=False), None
    merged = left.merge(right.assign(**{marker: 1}), how="left", on=_by(join.keys), left_on=join.left_on,
                        right_on=join.right_on, suffixes=("", join.suffix))
    return merged.assign(**{marker: ~merged[marker].isna()}), None


def _span(first, last) -> list[str] | None:
    if pd.isna(first) or pd.isna(last):
        return None
    return [pd.Timestamp(first).isoformat(), pd.Timestamp(last).isoformat()]


def match_failure(report: dict, join: Join) -> str | None:
    """Why the join fails its ``min_match_fraction``, or None when it does not.

    The message names the join, its match rate and, for a time join, the time ranges of both sides (two ranges that
    do not overlap, or overlap only in another time zone, are the usual reason an as-of join matches nothing).
    """
    rate = report["match_rate"]
    if rate is None or rate >= join.min_match_fraction:
        return None
    what = f"{report['join']} ({join.source!r}"
    if join.keys:
        what += f", keys {', '.join(join.keys)}"
    elif join.left_on:
        what += f", keys {', '.join(join.left_on)} = {', '.join(join.right_on)}"
    if join.time:
        what += f", {join.time.direction} on {join.time.left} / {join.time.right} within {join.time.tolerance}"
    message = (f"{what}) matched {report['matched']:,} of {report['rows']:,} base rows ({rate:.1%}), less than "
               f"min_match_fraction {join.min_match_fraction:.1%}")
    if join.time:
        message += (f"; base {join.time.left} spans {_range_text(report['base_time'])}, source {join.source!r} "
                    f"{join.time.right} spans {_range_text(report['source_time'])}")
    return message + "; set `min_match_fraction` on the join to accept it"


def _range_text(span: list[str] | None) -> str:
    return f"{span[0]} .. {span[1]}" if span else "nothing (no times)"


def _align_time_dtypes(left: dd.DataFrame, right: pd.DataFrame, join: Join) -> pd.DataFrame:
    """Both time columns must be datetimes; the right one takes the left one's unit and zone."""
    left_type, right_type = left.dtypes[join.time.left], right.dtypes[join.time.right]
    both_datetimes = pd.api.types.is_datetime64_any_dtype(left_type) and pd.api.types.is_datetime64_any_dtype(right_type)
    if both_datetimes and (getattr(left_type, "tz", None) is None) == (getattr(right_type, "tz", None) is None):
        right = right.copy()
        right[join.time.right] = right[join.time.right].astype(left_type)
        return right
    raise SpecError(
        f"blend join with {join.source!r}: time columns differ in type ({join.time.left}: {left_type}, "
        f"{join.time.right}: {right_type}); declare both as `type: datetime` in their sources' validation"
    )
