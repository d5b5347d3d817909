"""Model folders for registry tests: a minimal card around given ONNX bytes, or a real tiny model."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd


def fake_model_folder(folder: Path, onnx_bytes: bytes, train_fingerprint: str = "f-train", roc_auc: float = 0.7,
                      params: dict | None = None) -> Path:
    """A folder the registry accepts: model.onnx and a card naming its sha256 and training data."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.onnx").write_bytes(onnx_bytes)
    card = {
        "name": "draft", "version": None, "task": "classification", "inputs": [], "outputs": [],
        "files": {"model.onnx": {"sha256": hashlib.sha256(onnx_bytes).hexdigest(), "size": len(onnx_bytes)}},
        "metrics": {"roc_auc": roc_auc, "baseline": {"roc_auc": 0.5}},
        "parity": {"passed": True, "rows": 10, "label_mismatches": 0, "max_abs_diff": 0.0, "tolerance": 1e-4},
        "estimator": {"class": "sklearn.linear_model.LogisticRegression", "params": params or {"C": 1.0}},
        "lineage": {"run_id": "r", "training_data": {"train": {"rows": 10, "fingerprint": train_fingerprint}}},
        "library_versions": {}, "created_at": "2026-11-23T21:00:00Z", "examples": {}, "reference_stats": {},
    }
    (folder / "model_card.json").write_text(json.dumps(card))
    return folder


def flights(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    hour = rng.integers(5, 24, rows)
    carrier = rng.choice(["AA", "UA"], rows)
    delayed = rng.random(rows) < 1 / (1 + np.exp(-0.3 * (hour - 14)))
    return pd.DataFrame({"dep_hour": hour, "carrier": carrier, "delayed": delayed})


def real_model_folder(folder: Path, C: float = 1.0) -> Path:
    """A tiny logistic regression trained, evaluated and exported by the real code path."""
    from orchestrator.ml.evaluate import evaluate_model
    from orchestrator.ml.onnx_export import export_model
    from orchestrator.ml.spec import ModelSpec
    from orchestrator.ml.train import fit_model

    spec = ModelSpec.model_validate({
        "name": "flights-delay", "task": "classification", "target": "delayed",
        "features": {"numeric": ["dep_hour"], "categorical": ["carrier"]},
        "estimator": "sklearn.linear_model.LogisticRegression", "params": {"C": C}})
    train, validation, test = flights(300, 1), flights(100, 2), flights(100, 3)
    fit = fit_model(spec, train, validation)
    metrics = evaluate_model(spec, fit.model, test, train=train).metrics
    export_model(spec, fit.model, train, test, folder, metrics, {"run_id": f"run-C{C}", "training_data": fit.data})
    return folder
