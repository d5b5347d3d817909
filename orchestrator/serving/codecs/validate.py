"""Check a decoded request's values against the model card: NaN only where the card says nullable, never an
infinity, numbers within the training range (``min``/``max``), strings among the training categories (``allowed``).

Each check is written once. A small JSON request is checked on its Python lists (faster than numpy's per-call
cost); a large or binary one first passes a vectorized screen whose bounds are the card's rounded inward to
float32, so a float32 value clears the screen exactly when it is within the bounds; only the rows the screen does
not clear reach the same checks as a small request's.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from orchestrator.serving.card import InputSpec
from orchestrator.serving.codecs.columns import FP32_MAX
from orchestrator.serving.codecs.request import DecodedRequest
from orchestrator.serving.errors import BadRequest
from orchestrator.serving.model import LoadedModel

REJECT = "reject"
FLAG = "flag"
RANGE_POLICIES = (REJECT, FLAG)
PYTHON_CHECK_MAX_ROWS = 64  # below this, plain Python comparisons beat numpy's per-call overhead


def check_values(request: DecodedRequest, model: LoadedModel, policy: str) -> dict:
    """Refuse NaN where the card does not allow it and infinities always; check training ranges.

    Args:
        request: The decoded request; its ``flags`` are filled when ``policy`` is "flag".
        model: The model whose card holds the ranges.
        policy: "reject" answers 400 for a value outside the card's range; "flag" accepts and reports it.

    Returns:
        ``{input name: [row indexes outside the range]}`` (empty when everything is in range).

    Raises:
        BadRequest: a value is NaN/infinite where not allowed, or out of range under "reject".
    """
    limits = _limits(model)
    flags: dict[str, list[int]] = {}
    columns = request.columns if request.rows <= PYTHON_CHECK_MAX_ROWS else None
    if columns is not None:
        for bounds in limits.numeric:
            values = columns[bounds[0].name]
            outside = _outside(bounds, values)
            if outside:
                _out_of_range(bounds[0], outside, values, policy, flags)
    elif limits.numeric:
        for bounds, rows, values, column in limits.uncleared(request.feeds):
            outside = _outside(bounds, values, rows)
            if outside:
                _out_of_range(bounds[0], outside, column, policy, flags)
    for spec in limits.categorical:
        values = columns[spec.name] if columns is not None else request.feeds[spec.name][:, 0]
        outside = _unknown_categories(spec, values)
        if outside:
            _out_of_range(spec, outside, values, policy, flags)
    request.flags = flags
    return flags


class _Bounds(NamedTuple):
    """A numeric input's range: the card's ``min``/``max``, never wider than FP32, so an infinity is outside."""

    spec: InputSpec
    low: float
    high: float


def _outside(bounds: _Bounds, values: list, rows: list[int] | None = None) -> list[int] | None:
    """The numeric check: the rows whose value is outside the range.

    Args:
        bounds: The input's range.
        values: Its values: every row's, or those of ``rows`` only.
        rows: The row index of each value; None when ``values`` holds every row.

    Raises:
        BadRequest: a value is NaN where the card says not nullable, or is infinite.
    """
    spec, low, high = bounds
    outside = None
    for index, value in enumerate(values):
        if low <= value <= high:
            continue
        row = index if rows is None else rows[index]
        if value != value:
            if not spec.nullable:
                raise BadRequest(f"input {spec.name!r}, row {row}: NaN where the model card says not nullable")
        elif not -FP32_MAX <= value <= FP32_MAX:
            raise BadRequest(f"input {spec.name!r}, row {row}: expected a finite FP32 value, got {value}")
        elif outside is None:
            outside = [row]
        else:
            outside.append(row)
    return outside


def _unknown_categories(spec: InputSpec, values) -> list[int]:
    """The categorical check: rows whose string is not a training category (an empty null is one, if nullable)."""
    allowed = spec.allowed
    return [row for row, value in enumerate(values) if value not in allowed and not (spec.nullable and value == "")]


def _out_of_range(spec: InputSpec, rows: list[int], column, policy: str, flags: dict) -> None:
    """Apply the range policy to the ``rows`` of ``column`` (a list or an array) outside the card's range."""
    row = rows[0]
    if policy == REJECT:
        if spec.is_numeric:
            # The value as the model reads it (float32), whichever way it came.
            expected, got = f"a value in the training range [{spec.min}, {spec.max}]", float(np.float32(column[row]))
        else:
            expected, got = f"one of the training categories {sorted(spec.allowed)[:20]}", column[row]
        raise BadRequest(
            f"input {spec.name!r}, row {row}: expected {expected}, got {got!r}"
            f" ({len(rows)} of {len(column)} values out of range; the server rejects them)"
        )
    flags[spec.name] = rows


class _Limits:
    """A model card's value checks, arranged once per model so that checking a request costs a few array ops."""

    def __init__(self, model: LoadedModel):
        numeric = [spec for spec in model.card.inputs if spec.is_numeric]
        self.numeric = [_Bounds(spec, -FP32_MAX if spec.min is None else max(spec.min, -FP32_MAX),
                                FP32_MAX if spec.max is None else min(spec.max, FP32_MAX)) for spec in numeric]
        self.names = [spec.name for spec in numeric]
        self.categorical = [spec for spec in model.card.inputs if not spec.is_numeric and spec.allowed is not None]
        with np.errstate(over="ignore"):  # a bound beyond FP32 becomes an infinity, which no value clears
            self.screen_low = np.array([_float32_at_least(b.low) for b in self.numeric], dtype=np.float32)
            self.screen_high = np.array([_float32_at_most(b.high) for b in self.numeric], dtype=np.float32)
        self.nullable = np.array([spec.nullable for spec in numeric], dtype=bool)
        self.any_nullable = bool(self.nullable.any())

    def uncleared(self, feeds: dict[str, np.ndarray]):
        """The vectorized screen over every numeric input at once.

        Yields:
            ``(bounds, rows, values, column)`` for each input with rows the screen does not clear: their indexes,
            their values as Python floats, and the input's whole column.
        """
        matrix = np.hstack([feeds[name] for name in self.names])
        cleared = (matrix >= self.screen_low) & (matrix <= self.screen_high)  # False for NaN and infinities
        if self.any_nullable:
            cleared |= np.isnan(matrix) & self.nullable
        if cleared.all():
            return
        for col in np.flatnonzero(~cleared.all(axis=0)):
            rows = np.flatnonzero(~cleared[:, col])
            yield self.numeric[col], rows.tolist(), matrix[rows, col].tolist(), matrix[:, col]


def _float32_at_most(bound: float) -> np.float32:
    """The largest float32 not above ``bound``."""
    value = np.float32(bound)
    return value if float(value) <= bound else np.nextafter(value, np.float32(-np.inf))


def _float32_at_least(bound: float) -> np.float32:
    """The smallest float32 not below ``bound``."""
    value = np.float32(bound)
    return value if float(value) >= bound else np.nextafter(value, np.float32(np.inf))


def _limits(model: LoadedModel) -> _Limits:
    limits = model.__dict__.get("_limits")
    if limits is None:
        limits = model.__dict__["_limits"] = _Limits(model)
    return limits
