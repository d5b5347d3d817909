"""A registered converter fix for HistGradientBoosting models in skl2onnx 1.20.

Cause: skl2onnx's ``add_tree_to_attribute_pairs_hist_gradient_boosting`` appends the Python ``False`` for every
leaf to the ``nodes_missing_value_tracks_true`` attribute (and numpy ``uint8`` for branches). ONNX has no boolean
attributes; onnx 1.23's ``make_attribute`` hands the mixed list to protobuf's repeated int64 field, and recent
protobuf refuses a ``bool`` there ("Field onnx.AttributeProto.ints: Expected an int, got a boolean"), so the
conversion fails with "Unable to create node 'TreeEnsembleClassifier'". No released skl2onnx (1.20.0 is the newest)
fixes it, and pinning an old protobuf would hold back every other package.

Fix: re-register the HistGradientBoosting converters (same shape calculators and options) with a wrapper that
gives the original converter a container whose ``add_node`` turns booleans inside list attributes into 0/1,
which is what the ONNX operator specifies. Only these two converters are affected; the graph is otherwise the
one skl2onnx builds. Registration is idempotent.

Second fix, of the same converters: a HistGradientBoosting split threshold is a float64 midpoint between two bin
edges, and ONNX keeps thresholds as float32. Rounded to the nearest float32, a threshold lying between two adjacent
float32 numbers may land on the upper one, and a row holding exactly that value then goes left in ONNX and right in
scikit-learn (seen on the Palmer penguins: 171 g apart on one test row of 47). The converter is handed a copy whose
thresholds are rounded down instead: for every float32 input ``x``, ``x <= t`` holds exactly when ``x <= a`` for
the largest float32 ``a`` not above ``t``, so the exported model splits float32 inputs as the fitted one does.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

_HGB_ALIASES = ("SklearnHistGradientBoostingClassifier", "SklearnHistGradientBoostingRegressor")
_installed = False


def _int_if_bool(value: Any) -> Any:
    return int(value) if isinstance(value, (bool, np.bool_)) else value


def _ints_for_bools(attrs: dict) -> dict:
    fixed = {}
    for key, value in attrs.items():
        if isinstance(value, list) and any(isinstance(v, (bool, np.bool_)) for v in value):
            value = [_int_if_bool(v) for v in value]
        fixed[key] = value
    return fixed


class _BoolSafeContainer:
    """Delegates to skl2onnx's container; only ``add_node`` rewrites boolean list attributes."""

    def __init__(self, container):
        self._container = container

    def add_node(self, *args, **attrs):
        return self._container.add_node(*args, **_ints_for_bools(attrs))

    def __getattr__(self, name):
        return getattr(self._container, name)


def float32_exact_thresholds(model):
    """A copy of a fitted HistGradientBoosting model whose numeric split thresholds are float32 numbers splitting
    float32 inputs exactly as the original float64 thresholds do (see the module's docstring)."""
    exact = copy.deepcopy(model)
    for predictors in exact._predictors:
        for predictor in predictors:
            thresholds = predictor.nodes["num_threshold"]
            rounded = thresholds.astype(np.float32)
            above = rounded.astype(np.float64) > thresholds
            rounded[above] = np.nextafter(rounded[above], np.float32(-np.inf))
            predictor.nodes["num_threshold"] = rounded.astype(np.float64)
    return exact


def _bool_safe(original):
    # skl2onnx insists on exactly three parameters, hence a closure rather than a default argument.
    def convert(scope, operator, container):
        operator.raw_operator = float32_exact_thresholds(operator.raw_operator)
        return original(scope, operator, _BoolSafeContainer(container))

    return convert


def install_converter_fixes() -> None:
    """Register the HistGradientBoosting converter fix with skl2onnx (safe to call many times)."""
    global _installed
    if _installed:
        return
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from skl2onnx import update_registered_converter
    from skl2onnx.common._registration import get_converter, get_shape_calculator

    for model, alias in zip((HistGradientBoostingClassifier, HistGradientBoostingRegressor), _HGB_ALIASES):
        original = get_converter(alias)
        update_registered_converter(
            model,
            alias,
            get_shape_calculator(alias),
            _bool_safe(original),
            overwrite=True,
            options=original.get_allowed_options(),
        )
    _installed = True
