"""Tuning, export, registration and batch scoring on a real Dask LocalCluster (worker processes, loopback)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.integration


def flights(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    hour = rng.integers(5, 24, rows)
    distance = rng.gamma(2.0, 400.0, rows)
    carrier = rng.choice(["AA", "UA", "DL", "B6"], rows)
    logit = 0.25 * (hour - 14) + 0.0008 * (distance - 800) + np.where(carrier == "B6", 1.0, 0.0)
    return pd.DataFrame({
        "dep_hour": pd.array(hour, dtype="Int64"),
        "distance": pd.array(distance, dtype="Float64"),
        "carrier": pd.array(carrier, dtype="string[pyarrow]"),
        "delayed": pd.array(rng.random(rows) < 1 / (1 + np.exp(-logit)), dtype="bool[pyarrow]"),
    })


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address="127.0.0.1:0")
    with Client(cluster) as client:
        yield client
    cluster.close()


@pytest.fixture(scope="module")
def data():
    return {"train": flights(3000, 1), "validation": flights(800, 2), "test": flights(1000, 3),
            "serve": flights(2000, 4).drop(columns=["delayed"])}


def spec_for(space: dict, strategy: str = "grid"):
    from orchestrator.ml.spec import ModelSpec

    return ModelSpec.model_validate({
        "name": "flights-delay", "task": "classification", "target": "delayed",
        "features": {"numeric": ["dep_hour", "distance"], "categorical": ["carrier"]},
        "estimator": "sklearn.ensemble.HistGradientBoostingClassifier", "params": {"max_iter": 30},
        "tuning": {"strategy": strategy, "space": space, "cv": 3, "finalists": 2}})


def test_a_tuned_model_trained_on_the_cluster_beats_its_baseline_and_is_served_by_version(client, data, tmp_path):
    from orchestrator.artifacts.local import LocalStore
    from orchestrator.usecases.predict import predict_to_path
    from orchestrator.ml.evaluate import evaluate_model
    from orchestrator.ml.onnx_export import export_model
    from orchestrator.ml.train import fit_model
    from orchestrator.registry.models import ModelRegistry

    progress = []
    spec = spec_for({"learning_rate": [0.05, 0.2], "max_leaf_nodes": [7, 31]})
    fit = fit_model(spec, data["train"], data["validation"], client=client,
                    on_progress=lambda *a: progress.append(a))
    assert progress[-1][:2] == (4, 4) and len(fit.candidates) == 4
    # Candidates really ran on the workers' processes.
    assert client.run(lambda: 1) and len(client.scheduler_info()["workers"]) == 2

    evaluation = evaluate_model(spec, fit.model, data["test"], train=data["train"])
    assert evaluation.metrics["roc_auc"] > evaluation.metrics["baseline"]["roc_auc"] + 0.1

    lineage = {"run_id": "it-1", "training_data": fit.data}
    export = export_model(spec, fit.model, data["train"], data["test"], tmp_path / "m1", evaluation.metrics,
                          lineage, evaluation.report_html)
    assert export.parity["passed"] and export.parity["rows"] == 1000

    store = LocalStore(tmp_path / "store")
    registry = ModelRegistry(store)
    assert registry.register(tmp_path / "m1", "flights-delay") == (1, True)

    # The same run again: same model, same data -> nothing new.
    again = fit_model(spec, data["train"], data["validation"], client=client)
    export_model(spec, again.model, data["train"], data["test"], tmp_path / "m1b", evaluation.metrics, lineage)
    assert registry.register(tmp_path / "m1b", "flights-delay") == (1, False)

    # One changed parameter -> a new version.
    changed = spec.model_copy(update={"params": {"max_iter": 60}})
    refit = fit_model(changed, data["train"], data["validation"], client=client)
    export_model(changed, refit.model, data["train"], data["test"], tmp_path / "m2", evaluation.metrics,
                 {"run_id": "it-2", "training_data": refit.data})
    assert registry.register(tmp_path / "m2", "flights-delay") == (2, True)

    source = tmp_path / "serve"
    source.mkdir()
    for i in range(4):
        data["serve"].iloc[i * 500:(i + 1) * 500].to_parquet(source / f"part-{i}.parquet")
    record = predict_to_path(store, "flights-delay:1", str(source), tmp_path / "predictions", client=client)
    assert record["rows"] == 2000 and record["model"]["version"] == 1
    scored = pd.read_parquet(tmp_path / "predictions")
    assert len(scored) == 2000 and set(scored["model_version"]) == {1}
    assert json.loads((tmp_path / "predictions" / "_prediction.json").read_text())["input"]["fingerprint"]


def test_successive_halving_runs_on_the_cluster_through_joblib(client, data):
    from orchestrator.ml.train import fit_model

    spec = spec_for({"learning_rate": [0.05, 0.1, 0.2], "max_leaf_nodes": [7, 15, 31]}, strategy="halving")
    fit = fit_model(spec, data["train"], data["validation"], client=client)
    assert max(c["halving_round"] for c in fit.candidates) >= 1
    assert fit.best_score > 0.6
