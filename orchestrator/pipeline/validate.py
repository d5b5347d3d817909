"""Row validation: every row that breaks a rule keeps its values and gains a reason, for the quarantine artifact.

Datetimes are read as their column's rule says (``format``: a strftime format, ``unix_s``, ``unix_ms`` or ISO 8601;
``timezone``: the zone of values written without an offset) and always end up as instants in UTC, so that sources
written in different zones compare and join on the same clock. A local time that does not exist in its zone, or
exists twice (the hour skipped or repeated when clocks change), names no single instant: its row is quarantined
rather than guessed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from orchestrator.pipeline.spec import ColumnRule

REASON = "_reason"
# Every parsed datetime column has this resolution, whatever its values hold, so that an empty partition and a full
# one (and two sources written differently) have the same column type.
DATETIME_UNIT = "us"
# An ISO 8601 value carries its own offset when its time part ends in Z or +hh[:mm] / -hh[:mm]; a date alone never
# does (the -05 of 2024-01-05 is its day).
_ISO_OFFSET = r"(?i)[T\s]\d{1,2}(?::?\d{2}){0,2}(?:[.,]\d+)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)\s*$"


def _convert(values: pd.Series, kind: str) -> pd.Series:
    # Columns the reader already typed (Parquet) need no parsing: skipping it saves a full pass per column.
    if kind == "float" and pd.api.types.is_float_dtype(values.dtype):
        return values.astype("float64", copy=False)
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
    return values.astype("string")


def parse_datetimes(values: pd.Series, rule: ColumnRule) -> tuple[pd.Series, pd.Series]:
    """Read a column's values as the instants in UTC they denote, as ``rule`` says they are written.

    Args:
        values: the raw values (strings, numbers, or datetimes a typed reader already made).
        rule: the column's rule: its ``format`` and ``timezone``.

    Returns:
        The UTC datetimes (missing where a value does not parse), and a mask of the values that parsed as a local
        time the rule's zone skips or repeats when its clocks change.
    """
    zone = rule.timezone or "UTC"
    fmt = rule.format or "iso8601"
    if pd.api.types.is_datetime64_any_dtype(values.dtype):  # typed by the reader (Parquet): nothing to parse
        if str(getattr(values.dtype, "tz", None)) == "UTC":  # already instants in UTC: no pass over the column
            return values, _none(values)
        if getattr(values.dtype, "tz", None) is not None:
            return values.dt.tz_convert("UTC").dt.as_unit(DATETIME_UNIT), _none(values)
        return _localize(values, zone)
    if fmt in ("unix_s", "unix_ms"):
        numbers = pd.to_numeric(values, errors="coerce")
        parsed = pd.to_datetime(numbers, unit=fmt.removeprefix("unix_"), utc=True, errors="coerce")
        return parsed.dt.as_unit(DATETIME_UNIT), _none(values)
    if fmt == "iso8601":
        parsed = pd.to_datetime(values, errors="coerce", utc=True, format="ISO8601").dt.as_unit(DATETIME_UNIT)
        if zone == "UTC":
            return parsed, _none(values)
        # Values without an offset were read as UTC wall clocks: read them again as the zone's wall clocks.
        naive = ~values.astype("string").str.contains(_ISO_OFFSET, regex=True).fillna(False).astype(bool)
        local, not_in_zone = _localize(parsed.dt.tz_convert(None), zone)
        return parsed.where(~naive, local), not_in_zone & naive
    if "%z" in fmt or "%Z" in fmt:  # every value says its own offset
        return pd.to_datetime(values, errors="coerce", utc=True, format=fmt).dt.as_unit(DATETIME_UNIT), _none(values)
    return _localize(pd.to_datetime(values, errors="coerce", format=fmt), zone)


def _localize(wall_clocks: pd.Series, zone: str) -> tuple[pd.Series, pd.Series]:
    """Naive wall-clock times read in ``zone``, as UTC instants; those the zone skips or repeats become missing."""
    local = wall_clocks.dt.tz_localize(zone, ambiguous="NaT", nonexistent="NaT")
    return local.dt.tz_convert("UTC").dt.as_unit(DATETIME_UNIT), local.isna() & wall_clocks.notna()


def _none(values: pd.Series) -> pd.Series:
    return pd.Series(False, index=values.index)


def expected_format(rule: ColumnRule) -> str:
    """How a rule's datetimes are written, for quarantine reasons (``'%d/%m/%Y'``, ``unix seconds``, ``ISO 8601``)."""
    named = {"iso8601": "ISO 8601", "unix_s": "unix seconds", "unix_ms": "unix milliseconds"}
    fmt = rule.format or "iso8601"
    return named.get(fmt, repr(fmt))


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
        if rule.type == "datetime":
            values, not_in_zone = parse_datetimes(raw, rule)
            unparsable = values.isna() & raw.notna() & ~not_in_zone
            expected = f"{column}: expected a datetime as {expected_format(rule)}"
            reasons = _add_reason(reasons, unparsable, expected, raw)
            skipped = f"{column}: no such time in {rule.timezone} (a wall clock skipped or repeated when clocks change)"
            reasons = _add_reason(reasons, not_in_zone, skipped, raw)
            frame[column] = values
        elif rule.type:
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
