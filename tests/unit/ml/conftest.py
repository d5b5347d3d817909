"""Session fixtures: partitions and exported models shared by the ML tests."""

from __future__ import annotations

import pandas as pd
import pytest
from ml_data import make_spec, synthetic_flights


@pytest.fixture(scope="session")
def partitions() -> dict[str, pd.DataFrame]:
    return {name: synthetic_flights(rows, seed) for name, rows, seed in
            [("train", 600, 1), ("validation", 200, 2), ("test", 300, 3), ("serve", 100, 4)]}


@pytest.fixture(scope="session")
def exported_models(partitions, tmp_path_factory):
    """Model folders for the three estimator families the issue requires, trained and exported once."""
    from orchestrator.ml.evaluate import evaluate_model
    from orchestrator.ml.onnx_export import export_model
    from orchestrator.ml.train import fit_model

    folders = {}
    for key, estimator, params in [
        ("lr", "sklearn.linear_model.LogisticRegression", {"C": 0.5}),
        ("rf", "sklearn.ensemble.RandomForestClassifier", {"n_estimators": 8, "max_depth": 6}),
        ("hgb", "sklearn.ensemble.HistGradientBoostingClassifier", {"max_iter": 15}),
    ]:
        spec = make_spec(estimator, params=params)
        fit = fit_model(spec, partitions["train"], partitions["validation"])
        evaluation = evaluate_model(spec, fit.model, partitions["test"], train=partitions["train"])
        out = tmp_path_factory.mktemp(key)
        result = export_model(spec, fit.model, partitions["train"], partitions["test"], out, evaluation.metrics,
                              {"run_id": f"run-{key}", "training_data": fit.data}, evaluation.report_html)
        folders[key] = {"spec": spec, "fit": fit, "evaluation": evaluation, "export": result, "dir": out}
    return folders
