"""Check a decoded request's values against the model card: NaN only where the card says nullable, never an
infinity, numbers within the training range (``min``/``max``), strings among the training categories (``allowed``).

Each check is written once. A small JSON request is checked on its Python lists (faster than numpy's per-call
cost), its values as the client wrote them against the card's bounds. A large or binary request holds float32
arrays, checked against the bounds as float32 holds them (so 23.1 sent as FP32 is within a maximum of 23.1): a
vectorized screen clears the rows within them, and only the rows it does not clear reach the same checks as a
small request's values, with the same float32 bounds.
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
    if columns is not None:  # every value of every numeric input
        checked, values_of, rows_of = limits.numeric, columns, None
    else:  # the values the screen did not clear, their rows, and the float32 bounds
        checked, values_of, rows_of = limits.uncleared(request.feeds)
    for spec, low, high in checked:
        outside = None
        for index, value in enumerate(values_of[spec.name]):
            if low <= value <= high:
                continue
            row = index if rows_of is None else rows_of[spec.name][index]
            if value != value:
                if not spec.nullable:
                    raise BadRequest(f"input {spec.label}, row {row}: NaN where the model card says not nullable")
            elif not -FP32_MAX <= value <= FP32_MAX:
                raise BadRequest(f"input {spec.label}, row {row}: expected a finite FP32 value, got {value}")
            elif outside is None:
                outside = [row]
            else:
                outside.append(row)
        if outside:
            _out_of_range(spec, outside, _column(request, columns, spec.name), policy, flags)
    for spec in limits.categorical:
        values = columns[spec.name] if columns is not None else request.feeds[spec.name][:, 0]
        allowed, nullable = spec.allowed, spec.nullable
        outside = [row for row, value in enumerate(values) if value not in allowed and not (nullable and value == "")]
        if outside:
            _out_of_range(spec, outside, values, policy, flags)
    request.flags = flags
    return flags


class _Bounds(NamedTuple):
    """A numeric input's range: the card's ``min``/``max``, never wider than FP32, so an infinity is outside."""

    spec: InputSpec
    low: float
    high: float


def _column(request: DecodedRequest, columns: dict[str, list] | None, name: str):
    """An input's values: its Python list when checking on lists, else its array's column."""
    return columns[name] if columns is not None else request.feeds[name][:, 0]


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
            f"input {spec.label}, row {row}: expected {expected}, got {got!r}"
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
        with np.errstate(over="ignore"):  # a bound beyond FP32 becomes an infinity: beyond every value
            self.low32 = np.array([b.low for b in self.numeric], dtype=np.float32)
            self.high32 = np.array([b.high for b in self.numeric], dtype=np.float32)
        self.numeric32 = [_Bounds(b.spec, float(low), float(high))
                          for b, low, high in zip(self.numeric, self.low32, self.high32)]
        self.nullable = np.array([spec.nullable for spec in numeric], dtype=bool)
        self.any_nullable = bool(self.nullable.any())

    def uncleared(self, feeds: dict[str, np.ndarray]) -> tuple[list[_Bounds], dict[str, list], dict[str, list]]:
        """The vectorized screen over every numeric input at once.

        Returns:
            The float32 bounds of the inputs holding values the screen does not clear, those values (as Python
            floats) and their row indexes, both by input name.
        """
        if not self.numeric:
            return [], {}, {}
        matrix = np.hstack([feeds[name] for name in self.names])
        cleared = (matrix >= self.low32) & (matrix <= self.high32)  # False for NaN and infinities
        if self.any_nullable:
            cleared |= np.isnan(matrix) & self.nullable
        checked, values_of, rows_of = [], {}, {}
        if not cleared.all():
            for col in np.flatnonzero(~cleared.all(axis=0)):
                bounds = self.numeric32[col]
                rows = np.flatnonzero(~cleared[:, col])
                checked.append(bounds)
                values_of[bounds.spec.name] = matrix[rows, col].tolist()
                rows_of[bounds.spec.name] = rows.tolist()
        return checked, values_of, rows_of


def _limits(model: LoadedModel) -> _Limits:
    limits = model.__dict__.get("_limits")
    if limits is None:
        limits = model.__dict__["_limits"] = _Limits(model)
    return limits
