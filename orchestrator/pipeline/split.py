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
        if split.boundaries is None:
            raise SpecError("split.window must be resolved for the run's as_of before rows are split")
        edges = [_boundary(split.boundaries[name], values) for name in ("train", "validation", "test")]
        # Codes into PARTITIONS (train, validation, test, serve): how many boundaries the row is at or after.
        codes = sum((values >= edge).to_numpy(dtype=np.int8) for edge in edges)
        codes[values.isna().to_numpy()] = PARTITIONS.index("serve")
        if split.start is not None:
            # Older than the window: in no partition (the model learns from recent data only).
            keep = (values >= _boundary(split.start, values)).to_numpy() | values.isna().to_numpy()
            frame, codes = frame[keep], codes[keep]
    else:
        hashed = pd.util.hash_pandas_object(values, index=False).to_numpy() % _BUCKETS
        cuts = np.cumsum([split.fractions.get(name, 0.0) for name in PARTITIONS]) * _BUCKETS
        codes = np.searchsorted(cuts, hashed, side="right").clip(max=len(PARTITIONS) - 1)
    # A categorical label costs one byte per row, and assign() does not copy the other columns.
    labels = pd.Categorical.from_codes(codes.astype(np.int8), categories=list(PARTITIONS))
    return frame.assign(**{PARTITION: pd.Series(labels, index=frame.index)})
