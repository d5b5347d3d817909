"""Window features: lags and rolling aggregates of each entity's past, in time order, on a Dask DataFrame.

What a row's features read (``Window`` in ``orchestrator.pipeline.spec``): the rows of its entity (its ``by`` values)
ordered by the ``order`` column, rows at the same time in the order they arrive in (the frame's row order).

- ``lag: {c: [k]}`` -> ``c_lag<k>``: the value of ``c`` k rows before the row.
- ``rolling`` with ``rows: N`` -> ``c_<stat>_<N>r``: over the N rows before the row (not the row itself).
- ``rolling`` with ``window: 7d`` -> ``c_<stat>_7d``: over the rows whose time is in ``[time - 7d, time)``, strictly
  earlier than the row (``closed: left``, the default), or in ``[time - 7d, time]`` with ``closed: both``: rows at
  the row's own time too, the row itself included, whatever their order.

mean, sum, min and max are of the values present (missing when there are none), count is how many are present.
A row whose key or time is missing is in no entity's series: its features are missing.

Only the past is read, so a time split cannot leak through a feature: a train row's window holds train rows only.

The frame's partitions follow its row order, not its entities, and one entity's past can lie in any earlier
partition, however far back: no fixed overlap between neighbouring partitions (``map_overlap``) can hold it. So the
narrow frame of the columns the step reads is shuffled by entity (every entity's rows in one partition), each
partition computes its entities' features with pandas, and the features are sent back to the partitions their rows
came from, to be put beside them in their original order. Only the step's own columns travel, twice; the frame's
other columns stay where they are, and the result keeps the input's partitions and row order exactly.
"""

from __future__ import annotations

import dask.dataframe as dd
import numpy as np
import pandas as pd
from pandas.api.indexers import BaseIndexer

from orchestrator.errors import SpecError
from orchestrator.pipeline.spec import Rolling, Window
from orchestrator.yaml_files import suggest

# A row's place in the frame: its partition's number in the high bits, its place in the partition in the low ones.
# Rows compare in frame order whatever the partitioning; 2**40 rows a partition is far more than any holds.
POSITION = "__dataops_position__"
_ROW_BITS = 40


def window_features(rows: pd.DataFrame, window: Window) -> pd.DataFrame:
    """The window's columns for the rows of a pandas frame holding every row of each of its entities.

    Args:
        rows: the step's input columns and ``POSITION`` (each row's place in the whole frame, for its order among
            rows at the same time).
        window: the step.

    Returns:
        One row per input row with a key and a time, indexed by its ``POSITION``, with the columns
        ``window.output_columns()``.
    """
    dtypes = output_dtypes(rows.dtypes, window)
    known = rows[[*window.by, window.order]].notna().all(axis=1)
    rows = rows[known].sort_values([*window.by, window.order, POSITION]).set_index(POSITION)
    if rows.empty:
        return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in dtypes.items()},
                            index=pd.Index([], dtype="int64", name=POSITION))
    keys = [rows[column] for column in window.by] or [pd.Series(0, index=rows.index)]
    # Sorted by key: each entity's rows are one run, numbered in order.
    entity = rows.groupby(keys, sort=False, observed=True).ngroup().to_numpy()
    firsts = np.flatnonzero(np.r_[True, entity[1:] != entity[:-1]])
    series = _Series(entity, firsts[entity], rows[window.order])
    columns = {}
    for column, lags in window.lag.items():
        values = rows[column].astype("boolean") if pd.api.types.is_bool_dtype(rows[column].dtype) else rows[column]
        for k in lags:
            columns[f"{column}_lag{k}"] = series.lag(values, k)
    for rolling in window.rolling:
        columns.update(series.aggregates(rows[rolling.column], rolling))
    return pd.DataFrame(columns, index=rows.index).astype(dtypes)


class _Bounds(BaseIndexer):
    """Each row's window as rows ``[start, end)`` of the sorted frame, for pandas' rolling aggregations."""

    def get_window_bounds(self, num_values=0, min_periods=None, center=None, closed=None, step=None):
        return self.start, self.end


class _Series:
    """The entities' series of one sorted partition: rows sorted by entity, time and position.

    Every window is a range of rows ``[start, end)`` computed at once for all rows (never a loop over entities),
    then aggregated by pandas' rolling kernels over those bounds. The bounds never decrease from one row to the
    next, as those kernels require: entities follow one another and times increase within each.
    """

    def __init__(self, entity: np.ndarray, first: np.ndarray, times: pd.Series):
        self.entity, self.first, self.times = entity, first, times
        self.place = np.arange(len(entity), dtype=np.int64)

    def lag(self, values: pd.Series, k: int) -> pd.Series:
        """The value ``k`` rows before each row in its entity, missing before the entity's ``k``-th row."""
        source = self.place - k
        inside = source >= self.first
        lagged = values.iloc[np.where(inside, source, 0)].set_axis(values.index)
        return lagged.where(pd.Series(inside, index=values.index))

    def aggregates(self, column: pd.Series, rolling: Rolling) -> dict[str, pd.Series]:
        """One rolling aggregate's columns: mean, sum, min and max of the values present (missing when there are
        none), count of those present."""
        if rolling.rows:  # the N rows before the row, never the row itself
            start, end = np.maximum(self.first, self.place - rolling.rows), self.place
        else:
            stamps = pd.DatetimeIndex(self.times).as_unit("us").asi8
            span = round(rolling.window_seconds * 1e6)
            start = self._first_at_or_after(stamps - span, stamps)
            # The rows of one entity at one time are a run: left ends the window at the run's first row (the
            # row's own time excluded), both after its last (included).
            new_run = np.r_[True, (self.entity[1:] != self.entity[:-1]) | (stamps[1:] != stamps[:-1])]
            runs = np.flatnonzero(new_run)
            run = np.cumsum(new_run) - 1
            end = runs[run] if rolling.closed != "both" else np.r_[runs[1:], len(stamps)][run]
        values = pd.Series(column.to_numpy(dtype="float64", na_value=np.nan), index=column.index)
        window = values.rolling(_Bounds(start=start, end=end), min_periods=0)
        present = window.count()
        return {name: present if stat == "count" else getattr(window, stat)().where(present > 0)
                for stat, name in zip(rolling.stats, rolling.output_columns())}

    def _first_at_or_after(self, targets: np.ndarray, stamps: np.ndarray) -> np.ndarray:
        """Per row, the first row of its entity whose time is at or after the row's target (the entity's end when
        there is none). A search within each entity, for all rows at once: the rows and the targets are sorted
        together by entity and time (a target before rows at its own time), and a target's answer is the number
        of rows before it."""
        count = len(stamps)
        is_row = np.r_[np.ones(count, dtype=bool), np.zeros(count, dtype=bool)]
        order = np.lexsort((is_row, np.r_[stamps, targets], np.r_[self.entity, self.entity]))
        rows_before = np.cumsum(is_row[order]) - is_row[order]
        found = np.empty(count, dtype=np.int64)
        target = order >= count
        found[order[target] - count] = rows_before[target]
        return found


def output_dtypes(input_dtypes: pd.Series, window: Window) -> dict[str, object]:
    """The type of each column the step adds: aggregates are floats; a lag keeps its column's type, able to be
    missing (integers become floats, booleans nullable booleans)."""
    dtypes: dict[str, object] = {}
    for column, lags in window.lag.items():
        dtype = input_dtypes[column]
        if pd.api.types.is_bool_dtype(dtype):
            dtype = pd.BooleanDtype()
        elif isinstance(dtype, np.dtype) and dtype.kind in "iu":
            dtype = np.dtype("float64")
        dtypes.update({f"{column}_lag{k}": dtype for k in lags})
    for rolling in window.rolling:
        dtypes.update({name: np.dtype("float64") for name in rolling.output_columns()})
    return dtypes


def add_window_features(frame: dd.DataFrame, window: Window, where: str) -> dd.DataFrame:
    """The frame with the window step's columns added, lazily; its partitions and row order are unchanged.

    Args:
        frame: the frame the step applies to.
        window: the step.
        where: where the step is declared (``features[0]``), for error messages.

    Raises:
        SpecError: the step names a column the frame does not have, aggregates a column that is not numeric,
            orders a time window by a column that is not a datetime, or adds a column the frame already has.
    """
    check_window(frame._meta, window, where)
    positioned = frame.map_partitions(_with_position, meta=_with_position(frame._meta))
    columns = [*window.input_columns(), POSITION]
    narrow = positioned[columns]
    meta = window_features(narrow._meta, window)
    out_meta = _attach(positioned._meta, meta)
    count = frame.npartitions
    if count == 1:  # the whole frame is one partition: every entity is already together
        return positioned.map_partitions(_own_features, columns, window, meta=out_meta)
    if window.by:
        # Task-based, as the isolation proof's: its pieces are ordinary results, spilled or kept in memory, where
        # the peer-to-peer shuffle writes its buffers to the worker's folder and fails the run when that disk is full.
        by_entity = narrow.shuffle(on=window.by, npartitions=count, shuffle_method="tasks")
    else:  # one series: all of it in one partition
        by_entity = narrow.repartition(npartitions=1)
    features = by_entity.map_partitions(window_features, window, meta=meta)
    # Partition i of the frame holds the positions [i << _ROW_BITS, (i + 1) << _ROW_BITS): cut there, the features
    # come back to the partition their rows are in.
    divisions = [i << _ROW_BITS for i in range(count)] + [(count << _ROW_BITS) - 1]
    returned = features.reset_index().set_index(POSITION, divisions=divisions, shuffle_method="tasks")
    return positioned.map_partitions(_attach, returned, meta=out_meta, align_dataframes=False)


def check_window(meta: pd.DataFrame, window: Window, where: str) -> None:
    """Check a window step against the columns and types of the frame it applies to.

    Raises:
        SpecError: as :func:`add_window_features` says.
    """
    missing = [c for c in window.input_columns() if c not in meta.columns]
    if missing:
        text = ", ".join(f"{c!r}{suggest(c, meta.columns)}" for c in missing)
        raise SpecError(f"{where}: window names unknown column {text}; columns are {list(meta.columns)}")
    order = meta[window.order].dtype
    if not (pd.api.types.is_datetime64_any_dtype(order) or pd.api.types.is_numeric_dtype(order)):
        raise SpecError(f"{where}: window orders rows by {window.order!r}, which is {order}; it must be a datetime "
                        f"(declare `type: datetime` for it in its source's validation) or a number")
    for rolling in window.rolling:
        dtype = meta[rolling.column].dtype
        if not pd.api.types.is_numeric_dtype(dtype):
            raise SpecError(f"{where}: window rolling aggregates {rolling.column!r}, which is {dtype}, not a number")
        if rolling.window and not pd.api.types.is_datetime64_any_dtype(order):
            raise SpecError(f"{where}: a time window ({rolling.window}) needs rows ordered by a datetime; "
                            f"{window.order!r} is {order}")
    clashes = [c for c in window.output_columns() if c in meta.columns]
    if clashes:
        raise SpecError(f"{where}: window adds column(s) {clashes}, which the frame already has; rename them first")


def _with_position(part: pd.DataFrame, partition_info: dict | None = None) -> pd.DataFrame:
    number = partition_info["number"] if partition_info else 0
    positions = (np.int64(number) << _ROW_BITS) | np.arange(len(part), dtype=np.int64)
    return part.assign(**{POSITION: positions})


def _attach(part: pd.DataFrame, features: pd.DataFrame) -> pd.DataFrame:
    """The partition without its positions, its rows' features beside them (missing for rows that have none)."""
    mine = features.reindex(part[POSITION].to_numpy()).set_axis(part.index)
    return pd.concat([part.drop(columns=[POSITION]), mine], axis=1)


def _own_features(part: pd.DataFrame, columns: list[str], window: Window) -> pd.DataFrame:
    return _attach(part, window_features(part[columns], window))
