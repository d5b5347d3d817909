"""A HistGradientBoosting model exported to ONNX splits float32 inputs exactly as scikit-learn does, even where a
float64 split threshold lies between two adjacent float32 numbers (ONNX keeps thresholds as float32)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.ensemble import HistGradientBoostingRegressor

from orchestrator.ml.converters import float32_exact_thresholds, install_converter_fixes


def neighbours_model():
    """Rows at two adjacent float32 values with targets far apart: the split between them falls halfway, a float64
    number the nearest float32 rounding may lift onto the upper value."""
    upper = np.float32(49.4)
    lower = np.nextafter(upper, np.float32(-np.inf))
    x = np.repeat(np.array([lower, upper, np.float32(60.0)], dtype=np.float32), 50).reshape(-1, 1)
    y = np.repeat([1000.0, 5000.0, 6000.0], 50)
    model = HistGradientBoostingRegressor(max_iter=5, min_samples_leaf=5, learning_rate=1.0).fit(x, y)
    return model, x, upper


def test_the_rounded_copy_has_float32_thresholds_and_predicts_float32_rows_as_the_model_does():
    model, x, _ = neighbours_model()
    exact = float32_exact_thresholds(model)
    for predictors in exact._predictors:
        for predictor in predictors:
            thresholds = predictor.nodes["num_threshold"]
            assert np.array_equal(thresholds.astype(np.float32).astype(np.float64), thresholds)
    np.testing.assert_array_equal(exact.predict(x), model.predict(x))
    assert model._predictors[0][0].nodes["num_threshold"][0] != exact._predictors[0][0].nodes["num_threshold"][0], \
        "the original model is left as it was"


def test_the_exported_model_gives_the_upper_neighbour_the_prediction_scikit_learn_gives_it():
    install_converter_fixes()
    model, x, upper = neighbours_model()
    graph = convert_sklearn(model, initial_types=[("x", FloatTensorType([None, 1]))], target_opset={"": 17, "ai.onnx.ml": 3})
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    got = session.run(None, {"x": x})[0].reshape(-1)
    np.testing.assert_allclose(got, model.predict(x), rtol=1e-5)
    at_upper = session.run(None, {"x": np.array([[upper]], dtype=np.float32)})[0].item()
    assert abs(at_upper - model.predict(np.array([[upper]], dtype=np.float32))[0]) < 1e-2
