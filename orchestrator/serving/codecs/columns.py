"""JSON values into the typed columns the model reads. The element checks (a number that fits FP32, a string,
null where the card allows it) are written once here, for V2 JSON tensors and for records alike.

A value the card's ranges must judge (NaN written by a lenient client) passes: validation decides on it.
"""

from __future__ import annotations

import json
import math

import numpy as np
import orjson

from orchestrator.serving.card import InputSpec
from orchestrator.serving.errors import BadRequest

FP32_MAX = float(np.finfo(np.float32).max)


class BadElement(BadRequest):
    """One element of a column is not what the card declares. The message says what was expected and what came;
    the decoder that caught it names where it sits (input and element, or record and field)."""

    def __init__(self, index: int, problem: str):
        super().__init__(problem)
        self.index = index
        self.problem = problem


def parse_json(body: bytes):
    """Parse a JSON body fast; fall back to the standard parser, which also takes the NaN/Infinity literals that
    Python clients (tritonclient among them) write for missing values.

    Raises:
        BadRequest: the body is not JSON.
    """
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as fast_error:
        try:
            return json.loads(body)
        except (ValueError, RecursionError):
            raise BadRequest(f"request body is not valid JSON: {fast_error}") from None


def show(value) -> str:
    """A value as the client wrote it (JSON), cut short."""
    try:
        return orjson.dumps(value).decode()[:60]
    except TypeError:  # integers beyond 64 bits, NaN from the lenient parser
        return json.dumps(value)[:60]


def fp32_column(values: list, spec: InputSpec) -> tuple[np.ndarray, list]:
    """``values`` as a ``(rows, 1)`` float32 array, nulls (where nullable) as NaN.

    Returns:
        The array and the values as a list (nulls replaced), for checks that are faster on lists.

    Raises:
        BadElement: a value is not a number, is beyond the FP32 range, or is null where the card forbids it.
    """
    nulls = False
    for value in values:
        value_type = type(value)
        if (value_type is not float and value_type is not int) or not -FP32_MAX <= value <= FP32_MAX:
            if value is None and spec.nullable:
                nulls = True
            elif value_type is float and value != value:
                pass  # NaN (a lenient client's null): judged against the card's nullable flag by validation
            elif value_type is float or value_type is int:
                raise BadElement(_position(values, value), f"expected a finite FP32 value, got {show(value)}")
            else:
                expected = "a number or null" if spec.nullable else "a number"
                raise BadElement(_position(values, value), f"expected {expected} (FP32), got {show(value)}")
    if nulls:
        values = [math.nan if value is None else value for value in values]
    return np.array(values, dtype=np.float32).reshape(-1, 1), values


def bytes_column(values: list, spec: InputSpec) -> tuple[np.ndarray, list]:
    """``values`` as a ``(rows, 1)`` object array of strings, nulls as the card's missing value (the category the
    model learnt missing values as, as ``dataops predict`` does), else (where nullable) as ``""``.

    Returns:
        The array and the values as a list (nulls replaced).

    Raises:
        BadElement: a value is not a string, or is null where the card forbids it.
    """
    nulls = False
    takes_null = spec.nullable or spec.missing_value is not None
    for value in values:
        if type(value) is not str:
            if value is None and takes_null:
                nulls = True
            else:
                expected = "a string or null" if takes_null else "a string"
                raise BadElement(_position(values, value), f"expected {expected} (BYTES), got {show(value)}")
    if nulls:
        stand_in = spec.missing_value if spec.missing_value is not None else ""
        values = [stand_in if value is None else value for value in values]
    array = np.empty((len(values), 1), dtype=object)
    array[:, 0] = values
    return array, values


def _position(values: list, refused) -> int:
    """Where the refused element sits, looked up only for the message (the loops above go without an index):
    the first element that is this very object, since an earlier one would have been refused the same way."""
    return next(index for index, value in enumerate(values) if value is refused)
