"""Batch scoring of a Dask DataFrame with an ONNX model folder, partition by partition.

The input columns are checked against the model card before anything runs. The model bytes travel to each
worker once (one graph node every partition task depends on) and each worker process keeps one
onnxruntime session per model (``scoring_sessions``), so a session is built per worker, not per partition. A
partition is scored whole, in row slices spread over the cores its process can give it, from float32 arrays made
in one conversion per column.

Batch scoring (``dataops predict``) passes a range policy: each row then keeps the server's input contract
(``input_contract``), and a row the server would refuse gets its message in ``refused`` and no prediction.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from orchestrator.errors import SchemaMismatch
from orchestrator.ml.input_contract import FLAG, holds_numbers, judge_rows, serving_card
from orchestrator.ml.scoring_sessions import run_in_slices, scoring_call, session_for

CARD = "model_card.json"
PREDICTION = "prediction"
PROBA_PREFIX = "proba_"
REFUSED = "refused"
OUT_OF_RANGE = "out_of_range"


def load_card(model_dir: Path) -> dict:
    """Read ``model_card.json`` from a model folder."""
    path = Path(model_dir) / CARD
    if not path.is_file():
        raise SchemaMismatch(f"{model_dir} is not a model folder: {CARD} is missing")
    return json.loads(path.read_text())


def validate_columns(card: dict, dtypes: pd.Series, typed: bool = True) -> None:
    """Check that every model input is a column (``typed``: of a compatible type).

    Without ``typed``, a column of any type passes: each of its values is judged on its own, as the server judges
    a record's (a column holding no value at all is read as a text column, say).

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
        if not typed or isinstance(dtype, pd.ArrowDtype) and pa.types.is_null(dtype.pyarrow_dtype):
            continue
        if item["datatype"] == "FP32":
            if not holds_numbers(dtype):
                raise SchemaMismatch(f"input column {name!r} has type {dtype}; the model expects numbers (FP32)")
        elif item["datatype"] == "BYTES":
            ok = (pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype)
                  or isinstance(dtype, pd.CategoricalDtype))
            if not ok:
                raise SchemaMismatch(f"input column {name!r} has type {dtype}; the model expects strings (BYTES)")


def _numeric_feed(column: pd.Series) -> np.ndarray:
    """A ``[n, 1]`` float32 array, missing values as NaN, converted once (floats) or through float64 (integers,
    booleans, nullable types), so every value rounds to float32 exactly as the exported model was checked with."""
    if isinstance(column.dtype, np.dtype) and column.dtype.kind == "f":
        values = column.to_numpy(dtype=np.float32)
    else:
        values = column.to_numpy(dtype=np.float64, na_value=np.nan).astype(np.float32)
    return np.ascontiguousarray(values).reshape(-1, 1)


def _text_feed(column: pd.Series, missing: str) -> np.ndarray:
    values = np.array([str(v) for v in column.astype(object)], dtype=object)
    values[column.isna().to_numpy()] = missing
    return values.reshape(-1, 1)


def _feeds(card: dict, frame: pd.DataFrame) -> dict[str, np.ndarray]:
    feeds = {}
    for item in card["inputs"]:
        column = frame[item["name"]]
        # A card written before any column name was allowed has no onnx_name: its inputs are named as the columns.
        onnx_name = item.get("onnx_name", item["name"])
        if item["datatype"] == "FP32":
            feeds[onnx_name] = _numeric_feed(column)
        else:
            feeds[onnx_name] = _text_feed(column, item.get("missing_value", "__missing__"))
    return feeds


def prediction_columns(card: dict, refusable: bool = False) -> dict[str, str]:
    """Name -> dtype of the columns scoring adds (``refusable``: a refused row's label is missing)."""
    if card["task"] == "regression":
        return {PREDICTION: "float32"}
    label = "string" if card["outputs"][0]["datatype"] == "BYTES" else ("Int64" if refusable else "int64")
    return {PREDICTION: label, **{f"{PROBA_PREFIX}{c}": "float32" for c in card["classes"]}}


def score_partition(frame: pd.DataFrame, model_bytes: bytes, card: dict, version,
                    policy: str | None = None) -> pd.DataFrame:
    """Score one pandas partition: the input columns plus predictions and the model version.

    Args:
        frame: the rows to score; it must hold every input column of the card.
        model_bytes: the ``model.onnx`` bytes (read only by the first call of a process for this model).
        card: the model card.
        version: the model version written in ``model_version`` (None: -1).
        policy: None scores every row; "reject" or "flag" applies the server's input contract first, under that
            range policy.

    Returns:
        A new frame (``frame`` is left as it is): its columns plus ``prediction``, ``proba_<class>``
        (classification) and ``model_version``; under a policy also ``refused`` (the server's message, or null
        for a scored row) and, under "flag", ``out_of_range`` (the columns outside the training range, as a JSON
        array; null when none is).
    """
    columns = prediction_columns(card, refusable=policy is not None)
    verdicts = judge_rows(frame, serving_card(card), policy) if policy is not None and len(frame) else None
    accepted = verdicts.accepted if verdicts is not None else np.ones(len(frame), dtype=bool)
    # Refused rows are scored with the rest and their outputs blanked when every numeric input holds numbers:
    # cheaper than taking the accepted rows out. Text where numbers belong cannot be fed, so then they are.
    whole = accepted.all() or _numbers_where_numbers_belong(card, frame)
    rows = frame if whole else frame[accepted]
    added: dict[str, object] = {}
    if len(rows):
        session = session_for(card["files"]["model.onnx"]["sha256"], model_bytes)
        feeds = _feeds(card, rows)
        with scoring_call() as cores:
            outputs = run_in_slices(session, feeds, len(rows), cores)
        added[PREDICTION] = outputs[0].reshape(-1)
        if card["task"] != "regression":
            for i, name in enumerate(list(columns)[1:]):
                added[name] = outputs[1][:, i]
        added = {name: _placed(values, accepted, whole, columns[name], frame.index) for name, values in added.items()}
    else:
        added = {name: pd.Series(dtype=dtype, index=frame.index) for name, dtype in columns.items()}
    if policy is not None:
        added[REFUSED] = _sparse_text(verdicts.refused if verdicts is not None else {}, frame.index)
        if policy == FLAG:
            # The names as a JSON array: any text can be a column name, and a string column reads back anywhere.
            flagged = {row: json.dumps(names, ensure_ascii=False)
                       for row, names in (verdicts.flagged if verdicts is not None else {}).items()}
            added[OUT_OF_RANGE] = _sparse_text(flagged, frame.index)
    version_column = pd.Series(version if version is not None else -1, index=frame.index, dtype="int64")
    # Built column by column and assigned at once: the input columns are shared with ``frame``, not copied.
    return frame.assign(**added, model_version=version_column)


def _sparse_text(values: dict[int, str], index: pd.Index) -> pd.Series:
    """A text column missing everywhere but at the given positions."""
    column = pd.Series(pd.NA, index=index, dtype="string")
    if values:
        column.iloc[list(values)] = list(values.values())
    return column


def _numbers_where_numbers_belong(card: dict, frame: pd.DataFrame) -> bool:
    return all(holds_numbers(frame[item["name"]].dtype) for item in card["inputs"] if item["datatype"] == "FP32")


def _placed(values: np.ndarray, accepted: np.ndarray, whole: bool, dtype: str, index: pd.Index) -> pd.Series:
    """Outputs at their rows of the partition, a refused row's missing; ``values`` are for every row (``whole``)
    or for the accepted rows only."""
    if accepted.all():
        return pd.Series(values, index=index).astype(dtype)
    if whole:
        placed = pd.Series(values, index=index).astype(dtype)
        placed[~accepted] = None
        return placed
    placed = pd.Series(values, index=np.flatnonzero(accepted)).astype(dtype).reindex(pd.RangeIndex(len(index)))
    placed.index = index
    return placed


def score_dataframe(model_dir: Path, ddf, policy: str | None = None):
    """Add prediction columns to a Dask DataFrame, lazily, partition by partition.

    Args:
        model_dir: a model folder (``model.onnx`` + ``model_card.json``).
        ddf: the data to score; it must hold every input column of the card.
        policy: None scores every row; "reject" or "flag" keeps the server's input contract (``score_partition``).

    Returns:
        A Dask DataFrame: the input columns plus ``prediction``, ``proba_<class>`` (classification) and
        ``model_version``.

    Raises:
        SchemaMismatch: an input column is missing, or (without a policy) has an incompatible type; checked before
            any work.
    """
    import dask

    model_dir = Path(model_dir)
    card = load_card(model_dir)
    # Under the server's contract each value is judged as a record's value; without it the types must fit.
    validate_columns(card, ddf.dtypes, typed=policy is None)
    model_bytes = (model_dir / "model.onnx").read_bytes()
    # A delayed value is one node of the graph: shipped to each worker once, shared by every partition task.
    shared_bytes = dask.delayed(model_bytes, pure=True)
    meta = score_partition(ddf._meta, b"", card, card.get("version"), policy)
    return ddf.map_partitions(score_partition, shared_bytes, card, card.get("version"), policy, meta=meta)
