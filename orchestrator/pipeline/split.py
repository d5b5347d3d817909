"""Assigning rows to train / validation / test / serve, by time or by a deterministic hash of a key."""

from __future__ import annotations

import numpy as np
import pandas as pd

from orchestrator.errors import SpecError
from orchestrator.pipeline.isolation import PARTITION
from orchestrator.pipeline.spec import PARTITIONS, Split

_BUCKETS = 10_000


def _boundary(value: str, column: pd.Series) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    tz = getattr(column.dtype, "tz", None)
    if tz is not None and stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC").tz_convert(tz)
    return stamp


def label_partition(frame: pd.DataFrame, split: Split) -> pd.DataFrame:
    """Add the ``_partition`` column (train, validation, test or serve) to one pandas partition."""
    values = frame[split.column]
    if split.by == "time":
        if not pd.api.types.is_datetime64_any_dtype(values):
            raise SpecError(
                f"split.column {split.column!r} must be a datetime column for by: time, it is {values.dtype}; "
                f"declare `type: datetime` for it in its source's validation"
            )
        edges = [_boundary(split.boundaries[name], values) for name in ("train", "validation", "test")]
        conditions = [values < edges[0], values < edges[1], values < edges[2]]
        labels = np.select(conditions, ["train", "validation", "test"], default="serve")
        labels = np.where(values.isna(), "serve", labels)
    else:
        hashed = pd.util.hash_pandas_object(values, index=False).to_numpy() % _BUCKETS
        cuts = np.cumsum([split.fractions.get(name, 0.0) for name in PARTITIONS]) * _BUCKETS
        labels = np.asarray(PARTITIONS)[np.searchsorted(cuts, hashed, side="right").clip(max=len(PARTITIONS) - 1)]
    frame = frame.copy()
    frame[PARTITION] = pd.Series(labels, index=frame.index, dtype="string")
    return frame
