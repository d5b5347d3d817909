"""Batch scoring of a Dask DataFrame with an ONNX model folder, partition by partition.

The input columns are checked against the model card before anything runs. The model bytes travel to each
worker once (one graph node every partition task depends on) and each worker process keeps one
onnxruntime session per model, so a session is built per worker, not per partition.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pandas as pd

from orchestrator.errors import SchemaMismatch

CARD = "model_card.json"
PREDICTION = "prediction"
PROBA_PREFIX = "proba_"
# Threads per session: partitions already run in parallel on the worker's threads; one intra-op thread each
# avoids oversubscribing the cores.
INTRA_OP_THREADS = 1

_sessions: dict[str, object] = {}
_sessions_lock = threading.Lock()


def _session_for(sha256: str, model_bytes: bytes):
    """The worker's session for this model, built on first use (keyed by the model's sha256)."""
    session = _sessions.get(sha256)
    if session is None:
        with _sessions_lock:
            session = _sessions.get(sha256)
            if session is None:
                import onnxruntime as ort

                options = ort.SessionOptions()
                options.intra_op_num_threads = INTRA_OP_THREADS
                options.inter_op_num_threads = 1
                session = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
                _sessions[sha256] = session
    return session


def load_card(model_dir: Path) -> dict:
    """Read ``model_card.json`` from a model folder."""
    path = Path(model_dir) / CARD
    if not path.is_file():
        raise SchemaMismatch(f"{model_dir} is not a model folder: {CARD} is missing")
    return json.loads(path.read_text())


def validate_columns(card: dict, dtypes: pd.Series) -> None:
    """Check that every model input is a column of a compatible type.

    Raises:
        SchemaMismatch: naming the first missing or mistyped column and what the model expects.
    """
    for item in card["inputs"]:
        name = item["name"]
        if name not in dtypes.index:
            raise SchemaMismatch(
                f"input column {name!r} is missing (the model expects {item['datatype']}); "
                f"columns present: {list(dtypes.index)}"
            )
        dtype = dtypes[name]
        if item["datatype"] == "FP32":
            ok = pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)
            if not ok:
                raise SchemaMismatch(f"input column {name!r} has type {dtype}; the model expects numbers (FP32)")
        elif item["datatype"] == "BYTES":
            ok = (pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype)
                  or isinstance(dtype, pd.CategoricalDtype))
            if not ok:
                raise SchemaMismatch(f"input column {name!r} has type {dtype}; the model expects strings (BYTES)")


def _feeds(card: dict, frame: pd.DataFrame) -> dict[str, np.ndarray]:
    feeds = {}
    for item in card["inputs"]:
        column = frame[item["name"]]
        # A card written before any column name was allowed has no onnx_name: its inputs are named as the columns.
        onnx_name = item.get("onnx_name", item["name"])
        if item["datatype"] == "FP32":
            feeds[onnx_name] = column.astype("Float64").to_numpy(dtype=np.float32, na_value=np.nan).reshape(-1, 1)
        else:
            missing = item.get("missing_value", "__missing__")
            values = np.array([str(v) for v in column.astype(object)], dtype=object)
            values[column.isna().to_numpy()] = missing
            feeds[onnx_name] = values.reshape(-1, 1)
    return feeds


def prediction_columns(card: dict) -> dict[str, str]:
    """Name -> dtype of the columns scoring adds."""
    if card["task"] == "regression":
        return {PREDICTION: "float32"}
    label = "string" if card["outputs"][0]["datatype"] == "BYTES" else "int64"
    return {PREDICTION: label, **{f"{PROBA_PREFIX}{c}": "float32" for c in card["classes"]}}


def score_partition(frame: pd.DataFrame, model_bytes: bytes, card: dict, version) -> pd.DataFrame:
    """Score one pandas partition: the input columns plus predictions and the model version."""
    out = frame.copy()
    columns = prediction_columns(card)
    if len(frame):
        session = _session_for(card["files"]["model.onnx"]["sha256"], model_bytes)
        outputs = session.run(None, _feeds(card, frame))
        if card["task"] == "regression":
            out[PREDICTION] = outputs[0].reshape(-1).astype(np.float32)
        else:
            out[PREDICTION] = outputs[0].reshape(-1)
            for i, name in enumerate(list(columns)[1:]):
                out[name] = outputs[1][:, i].astype(np.float32)
    else:
        for name, dtype in columns.items():
            out[name] = pd.Series(dtype=dtype)
    out = out.astype(columns)
    out["model_version"] = pd.Series(version if version is not None else -1, index=out.index, dtype="int64")
    return out


def score_dataframe(model_dir: Path, ddf):
    """Add prediction columns to a Dask DataFrame, lazily, partition by partition.

    Args:
        model_dir: a model folder (``model.onnx`` + ``model_card.json``).
        ddf: the data to score; it must hold every input column of the card.

    Returns:
        A Dask DataFrame: the input columns plus ``prediction``, ``proba_<class>`` (classification) and
        ``model_version``.

    Raises:
        SchemaMismatch: an input column is missing or has an incompatible type (checked before any work).
    """
    import dask

    model_dir = Path(model_dir)
    card = load_card(model_dir)
    validate_columns(card, ddf.dtypes)
    model_bytes = (model_dir / "model.onnx").read_bytes()
    # A delayed value is one node of the graph: shipped to each worker once, shared by every partition task.
    shared_bytes = dask.delayed(model_bytes, pure=True)
    meta = score_partition(ddf._meta, b"", card, card.get("version"))
    return ddf.map_partitions(score_partition, shared_bytes, card, card.get("version"), meta=meta)
