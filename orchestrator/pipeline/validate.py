"""Row validation: every row that breaks a rule keeps its values and gains a reason, for the quarantine artifact."""

from __future__ import annotations

import numpy as np
import pandas as pd

from orchestrator.pipeline.spec import ColumnRule

REASON = "_reason"


def _convert(values: pd.Series, kind: str) -> pd.Series:
    # Columns the reader already typed (Parquet) need no parsing: skipping it saves a full pass per column.
    if kind == "float" and pd.api.types.is_float_dtype(values.dtype):
        return values.astype("float64", copy=False)
    if kind == "datetime" and str(getattr(values.dtype, "tz", None)) == "UTC":
        return values
    if kind == "float":
        return pd.to_numeric(values, errors="coerce").astype("float64")
    if kind == "int":
        numbers = pd.to_numeric(values, errors="coerce")
        whole = numbers.where(numbers.isna() | (numbers == np.floor(numbers)))
        return whole.astype("Int64")
    if kind == "bool":
        text = values.astype("string").str.strip().str.lower()
        mapped = text.map({"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False})
        return mapped.astype("boolean")
    if kind == "datetime":
        return pd.to_datetime(values, errors="coerce", utc=True, format="ISO8601")
    return values.astype("string")


def _add_reason(reasons: pd.Series, mask: pd.Series, prefix: str, got: pd.Series | None = None) -> pd.Series:
    """Append ``prefix`` (and the offending value) to the reasons of masked rows; formats only the bad rows."""
    mask = mask.fillna(False).astype(bool)
    if not mask.any():
        return reasons
    piece = prefix if got is None else prefix + ", got " + got[mask].astype("string").fillna("<NA>").map(repr)
    previous = reasons[mask]
    reasons = reasons.copy()
    reasons[mask] = previous.where(previous.isna(), previous + "; ").fillna("") + piece
    return reasons


def check_partition(frame: pd.DataFrame, rules: dict[str, ColumnRule]) -> pd.DataFrame:
    """Convert typed columns and add a ``_reason`` column: missing for good rows, the broken rules for bad ones."""
    frame = frame.copy(deep=False)  # copy-on-write: replaced columns never touch the caller's frame
    reasons = pd.Series(pd.NA, index=frame.index, dtype="string")
    for column, rule in rules.items():
        raw = frame[column]
        values = raw
        if rule.type:
            values = _convert(raw, rule.type)
            unparsable = values.isna() & raw.notna()
            reasons = _add_reason(reasons, unparsable, f"{column}: expected {rule.type}", raw)
            frame[column] = values
        missing = values.isna()
        if rule.not_null:
            reasons = _add_reason(reasons, missing & raw.isna(), f"{column}: missing value")
        if rule.min is not None:
            reasons = _add_reason(reasons, values < rule.min, f"{column}: below min {rule.min}", values)
        if rule.max is not None:
            reasons = _add_reason(reasons, values > rule.max, f"{column}: above max {rule.max}", values)
        if rule.allowed is not None:
            outside = ~values.isin(rule.allowed) & ~missing
            reasons = _add_reason(reasons, outside, f"{column}: not one of {rule.allowed}", values)
    frame[REASON] = reasons
    return frame
