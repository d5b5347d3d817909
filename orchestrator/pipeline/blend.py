"""Joining sources onto a base frame: key joins and time-aligned (as-of) joins.

Lookup tables (weather, planes, airlines...) are small next to the fact table, so they are broadcast to every
partition of the base instead of shuffling both sides: no shuffle, and the base keeps its partitioning and order.
"""

from __future__ import annotations

import dask.dataframe as dd
import numpy as np
import pandas as pd

from orchestrator.errors import SpecError
from orchestrator.pipeline.spec import Join

# Above this many rows the right side is joined with a distributed (shuffling) merge instead of a broadcast.
BROADCAST_ROWS = 5_000_000


def _right_columns(join: Join, right: dd.DataFrame) -> list[str]:
    keys = join.right_on or join.keys
    wanted = list(join.columns) if join.columns else [c for c in right.columns]
    time = [join.time.right] if join.time else []
    return list(dict.fromkeys([*keys, *time, *wanted]))


def _key_merge(left: pd.DataFrame, right: pd.DataFrame, join: Join) -> pd.DataFrame:
    return left.merge(
        right,
        how=join.how,
        on=join.keys or None,
        left_on=join.left_on,
        right_on=join.right_on,
        suffixes=("", join.suffix),
    )


def _asof_merge(left: pd.DataFrame, right: pd.DataFrame, join: Join) -> pd.DataFrame:
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
    if join.how == "inner":
        added = [c for c in merged.columns if c not in left.columns]
        merged = merged.dropna(subset=added, how="all")
    return merged


def _merge_asof(left: pd.DataFrame, right: pd.DataFrame, join: Join, tolerance: pd.Timedelta) -> pd.DataFrame:
    time = join.time
    return pd.merge_asof(
        left,
        right,
        left_on=time.left,
        right_on=time.right,
        left_by=join.left_on or join.keys,
        right_by=join.right_on or join.keys,
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
    if join.how == "inner":
        added = [c for c in merged.columns if c not in left.columns]
        merged = merged.dropna(subset=added, how="all")
    missing_time = left[left[time.left].isna()]
    if len(missing_time) and join.how == "left":
        merged.loc[missing_time.index, left.columns] = missing_time
    return merged


def join_frames(left: dd.DataFrame, right: dd.DataFrame, join: Join, right_rows: int) -> dd.DataFrame:
    """Join ``right`` onto ``left`` as declared.

    Raises:
        SpecError: a key or time column is missing on one side.
    """
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
        right_pd = _align_time_dtypes(left, right_pd, join)
        meta = _asof_merge(left._meta_nonempty.head(0), right_pd.head(0), join)
        return left.map_partitions(_asof_merge, right_pd, join, meta=meta, align_dataframes=False)
    if right_rows <= BROADCAST_ROWS:
        right_pd = right.compute()
        right_keys = join.right_on or join.keys
        # Duplicate keys on a lookup table would multiply base rows silently.
        dupes = right_pd.duplicated(subset=right_keys).sum()
        if dupes:
            right_pd = right_pd.drop_duplicates(subset=right_keys, keep="first")
        meta = _key_merge(left._meta, right_pd.head(0), join)
        return left.map_partitions(_key_merge, right_pd, join, meta=meta, align_dataframes=False)
    return left.merge(
        right, how=join.how, on=join.keys or None, left_on=join.left_on, right_on=join.right_on, suffixes=("", join.suffix)
    )


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
