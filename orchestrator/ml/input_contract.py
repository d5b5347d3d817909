"""The server's input contract, applied to a batch: each row is scored, flagged or refused exactly as
``dataops serve`` answers it sent alone to ``/predict``, with the same message.

The contract is written once, in the server (``orchestrator.serving.codecs``). Here a vectorized screen only
clears the rows that plainly keep it: every number inside the card's range in float64 and in float32 alike (or
missing where the card allows it), every category a training category (or missing where the card takes it). A row
the screen does not clear becomes a one-record request body, as ``DataFrame.to_json`` writes it (a missing value
is null), and passes through the server's own decoder and checks; their verdict and message are the row's.
"""

from __future__ import annotations

import json
import math
from typing import NamedTuple

import numpy as np
import pandas as pd

from orchestrator.serving.card import InputSpec, ModelCard, parse_card
from orchestrator.serving.codecs import FLAG, RANGE_POLICIES, REJECT, check_values, decode_records
from orchestrator.serving.codecs.columns import FP32_MAX
from orchestrator.serving.errors import BadRequest

__all__ = ["FLAG", "RANGE_POLICIES", "REJECT", "Verdicts", "holds_numbers", "judge_rows", "serving_card"]


def holds_numbers(dtype) -> bool:
    """Whether a column of ``dtype`` can feed a numeric (FP32) input: numbers, or booleans read as 0 and 1."""
    return pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)


class Verdicts(NamedTuple):
    """What the contract says of the rows of a frame that are not plainly fine, by position.

    Attributes:
        rows: how many rows were judged.
        refused: the server's message for each refused row (every other row is scored).
        flagged: under the "flag" policy, the columns outside the training range of each flagged row.
    """

    rows: int
    refused: dict[int, str]
    flagged: dict[int, list[str]]

    @property
    def accepted(self) -> np.ndarray:
        accepted = np.ones(self.rows, dtype=bool)
        accepted[list(self.refused)] = False
        return accepted


class _CardView:
    """What the server's decoder and checks read of a loaded model: its card and its outputs' names."""

    def __init__(self, card: ModelCard):
        self.card = card
        self.output_names = [output.name for output in card.outputs]


def serving_card(card: dict) -> ModelCard:
    """The model card as the server reads it (ONNX input names, ranges, categories, missing-value stand-ins)."""
    # A card not yet published by the registry has no version; the server serves it as version 1.
    return parse_card(card if card.get("version") is not None else {**card, "version": 1})


def judge_rows(frame: pd.DataFrame, card: ModelCard, policy: str) -> Verdicts:
    """The server's verdict on every row of ``frame`` sent alone.

    Args:
        frame: rows holding every input column of the card.
        card: the card, as ``serving_card`` reads it.
        policy: "reject" refuses a value outside the training range; "flag" scores it and names its column.

    Returns:
        One verdict per row, in ``frame``'s order.
    """
    if policy not in RANGE_POLICIES:
        raise ValueError(f"range policy must be one of {RANGE_POLICIES}, got {policy!r}")
    rows = len(frame)
    cleared = np.ones(rows, dtype=bool)
    for spec in card.inputs:
        column = frame[spec.column]
        cleared &= _numbers_cleared(column, spec) if spec.is_numeric else _categories_cleared(column, spec)
    refused: dict[int, str] = {}
    flagged: dict[int, list[str]] = {}
    if cleared.all():
        return Verdicts(rows, refused, flagged)
    view = _CardView(card)
    columns = {spec.name: spec.column for spec in card.inputs}
    positions = np.flatnonzero(~cleared)
    # The uncleared rows' values, taken once per column (not cell by cell), as JSON would carry them.
    values = {spec.column: [_json_value(value, spec) for value in frame[spec.column].iloc[positions].astype(object)]
              for spec in card.inputs}
    for index, position in enumerate(positions.tolist()):
        record = {column: values[column][index] for column in values}
        body = json.dumps({"records": [record]}, ensure_ascii=False).encode()
        try:
            flags = check_values(decode_records(body, view), view, policy)
        except BadRequest as refusal:
            refused[position] = str(refusal)
        else:
            if flags:
                flagged[position] = sorted(columns[name] for name in flags)
    return Verdicts(rows, refused, flagged)


def _bounds(spec: InputSpec) -> tuple[float, float]:
    return (-FP32_MAX if spec.min is None else max(spec.min, -FP32_MAX),
            FP32_MAX if spec.max is None else min(spec.max, FP32_MAX))


def _numbers_cleared(column: pd.Series, spec: InputSpec) -> np.ndarray:
    if not holds_numbers(column.dtype):
        # Text (or a column read as text because it holds no value): only its missing values may be clear.
        return column.isna().to_numpy() & spec.nullable
    values = column.to_numpy(dtype=np.float64, na_value=np.nan)
    low, high = _bounds(spec)
    with np.errstate(over="ignore", invalid="ignore"):
        values32 = values.astype(np.float32)
        inside = (values >= low) & (values <= high) & (values32 >= np.float32(low)) & (values32 <= np.float32(high))
    if spec.nullable:
        inside |= np.isnan(values)
    return inside


def _categories_cleared(column: pd.Series, spec: InputSpec) -> np.ndarray:
    values = column.astype(object)
    missing = column.isna().to_numpy()
    if pd.api.types.is_string_dtype(column.dtype) and not pd.api.types.is_object_dtype(column.dtype):
        text = ~missing  # a string column holds nothing but text and missing values
    else:
        text = values.map(lambda value: isinstance(value, str)).to_numpy(dtype=bool)
    if spec.allowed is None:
        known = text
        missing_ok = spec.nullable or spec.missing_value is not None
    else:
        known = text & (values.isin(spec.allowed).to_numpy() | (spec.nullable & (values == "").to_numpy()))
        stand_in = spec.missing_value if spec.missing_value is not None else ("" if spec.nullable else None)
        missing_ok = stand_in is not None and (stand_in in spec.allowed or (spec.nullable and stand_in == ""))
    return known | (missing & missing_ok)


def _json_value(value, spec: InputSpec):
    """A frame's value as ``DataFrame.to_json`` sends it: a missing value as null, numpy scalars as JSON's.

    A boolean stays a number for a numeric input (batch scoring reads a boolean column as 0 and 1)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (bool, np.bool_)):
        return int(value) if spec.is_numeric else bool(value)
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    return str(value)
