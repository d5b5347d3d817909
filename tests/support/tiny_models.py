"""Build small model folders that follow the model folder contract: a scikit-learn classifier trained on synthetic
mixed numeric/categorical data, exported with skl2onnx (one input per column, FP32/STRING, no ZipMap, outputs
``label`` and ``probabilities``), with a model card carrying ranges, categories and the ONNX checksum."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

NUMERIC = ["dep_hour", "distance", "prev_delay"]  # prev_delay is nullable: NaN allowed, imputed by the model
CATEGORICAL = ["carrier", "origin"]
CARRIERS = ["AA", "UA", "DL"]
ORIGINS = ["JFK", "LGA", "EWR"]


def synthetic_frame(rows: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """A small flights-like frame and a label that depends on hour, carrier and delay."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "dep_hour": rng.integers(5, 24, rows).astype(np.float32),
        "distance": rng.uniform(100, 3000, rows).astype(np.float32),
        "prev_delay": rng.normal(10, 20, rows).astype(np.float32),
        "carrier": rng.choice(CARRIERS, rows),
        "origin": rng.choice(ORIGINS, rows),
    })
    frame.loc[rng.random(rows) < 0.05, "prev_delay"] = np.nan
    score = (frame["dep_hour"] - 14) / 5 + (frame["carrier"] == "UA") * 0.8 + frame["prev_delay"].fillna(0) / 30
    label = (score + rng.normal(0, 0.5, rows) > 0.3).astype(np.int64).to_numpy()
    return frame, label


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_model_folder(folder: Path, name: str = "flights-delay", version: int = 1, seed: int = 0,
                       rows: int = 400) -> Path:
    """Train, export and write a complete model folder; returns ``folder``."""
    frame, label = synthetic_frame(rows, seed)
    pipeline = Pipeline([
        ("prepare", ColumnTransformer([
            ("numeric", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]), NUMERIC),
            ("categorical", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
        ])),
        ("classify", LogisticRegression(max_iter=500)),
    ]).fit(frame, label)
    initial_types = [(col, FloatTensorType([None, 1])) for col in NUMERIC] + [
        (col, StringTensorType([None, 1])) for col in CATEGORICAL]
    onnx_model = convert_sklearn(pipeline, initial_types=initial_types, options={"zipmap": False},
                                 target_opset={"": 17, "ai.onnx.ml": 3})
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model_path = folder / "model.onnx"
    model_path.write_bytes(onnx_model.SerializeToString())
    example = frame.iloc[:1].to_dict(orient="records")
    proba = pipeline.predict_proba(frame.iloc[:1])
    inputs = [{"name": col, "datatype": "FP32", "nullable": col == "prev_delay",
               "min": float(frame[col].min()), "max": float(frame[col].max())} for col in NUMERIC]
    inputs += [{"name": col, "datatype": "BYTES", "nullable": False, "allowed": sorted(frame[col].unique().tolist())}
               for col in CATEGORICAL]
    card = {
        "name": name, "version": version, "task": "classification",
        "inputs": inputs,
        "outputs": [{"name": "label", "datatype": "INT64", "shape": [-1]},
                    {"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]}],
        "classes": [0, 1],
        "files": {"model.onnx": {"sha256": _sha256(model_path), "size": model_path.stat().st_size}},
        "metrics": {}, "examples": {"inputs": json.loads(json.dumps(example, default=float)),
                                    "outputs": {"label": pipeline.predict(frame.iloc[:1]).tolist(),
                                                "probabilities": proba.tolist()}},
        "an_unknown_key": {"readers": "must tolerate it"},
        # What the project's exporter also writes (the registry renders model_card.md from them).
        "target": "delayed", "created_at": "2026-11-23T21:00:00Z",
        "estimator": {"class": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": 500}},
        "library_versions": {"scikit-learn": sklearn.__version__},
        "lineage": {"training_data": {"train": {"rows": rows, "fingerprint": f"synthetic-{seed}-{rows}"}}},
    }
    (folder / "model_card.json").write_text(json.dumps(card, indent=2))
    (folder / "model_card.md").write_text(f"# {name} v{version}\n")
    return folder


def valid_row(**overrides) -> dict:
    """One record inside every training range."""
    row = {"dep_hour": 9.0, "distance": 500.0, "prev_delay": 3.0, "carrier": "AA", "origin": "JFK"}
    row.update(overrides)
    return row


def v2_inputs(rows: list[dict]) -> list[dict]:
    """The V2 JSON tensors for ``rows``."""
    tensors = []
    for col in NUMERIC + CATEGORICAL:
        tensors.append({"name": col, "datatype": "FP32" if col in NUMERIC else "BYTES",
                        "shape": [len(rows), 1], "data": [row[col] for row in rows]})
    return tensors


def registered_profiled_model(root: Path):
    """A tiny classifier with its reference profile (windows of at least 300 rows), registered as ``tiny:1`` in a
    local store under ``root``: (store, the registered folder, its card)."""
    from orchestrator.artifacts.local import LocalStore
    from orchestrator.ml.onnx_export import attach_reference_profile
    from orchestrator.ml.score import load_card
    from orchestrator.pipeline.reference_profile import model_reference_profile
    from orchestrator.registry.models import ModelRegistry

    folder = build_model_folder(root / "model", "tiny", 1, rows=3000)
    card = load_card(folder)
    train, _ = synthetic_frame(3000, 0)
    validation, _ = synthetic_frame(1000, 5)
    profile = model_reference_profile(card, folder, train, validation, {"dep_hour": 0.3, "carrier": 0.1})
    attach_reference_profile(folder, profile.to_dict(), {"min_rows": 300})
    store = LocalStore(root / "store")
    ModelRegistry(store).register(folder, "tiny")
    registered = ModelRegistry(store).folder("tiny:1")
    return store, registered, load_card(registered)
