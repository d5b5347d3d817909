"""From raw DataFrame columns to a scikit-learn pipeline whose ONNX export takes those columns by name.

Frames come from Dask ``.compute()`` and may carry pandas extension dtypes (``string[pyarrow]``, ``Int64``,
``Float64``, ``bool[pyarrow]``, datetimes). Everything is turned into exactly what the ONNX graph will see:
numeric columns as float32 with NaN for missing, categorical columns as Python str with missing values replaced
by a sentinel category. Training on the same values the graph receives is what makes parity hold.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from orchestrator.errors import SchemaMismatch
from orchestrator.ml.spec import ModelSpec, load_estimator_class


def frame_fingerprint(frame: pd.DataFrame) -> str:
    """A content hash of a frame (values, column names and order; not the index)."""
    digest = hashlib.sha256()
    digest.update("\x1f".join(map(str, frame.columns)).encode())
    if len(frame):
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def describe_frame(frame: pd.DataFrame) -> dict:
    """Rows and fingerprint: what the run record keeps of every frame a stage was given."""
    return {"rows": int(len(frame)), "fingerprint": frame_fingerprint(frame)}


def _numeric_column(frame: pd.DataFrame, name: str) -> np.ndarray:
    column = frame[name]
    if pd.api.types.is_datetime64_any_dtype(column):
        # Seconds since the epoch: a number a float32 input can carry (NaT becomes NaN).
        if getattr(column.dt, "tz", None) is not None:
            column = column.dt.tz_convert(None)
        seconds = (column - pd.Timestamp(0)).dt.total_seconds()
        return seconds.to_numpy(dtype=np.float32, na_value=np.nan)
    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
        return column.astype("Float64").to_numpy(dtype=np.float32, na_value=np.nan)
    raise SchemaMismatch(f"column {name!r} is declared numeric but has dtype {column.dtype}")


def _categorical_column(frame: pd.DataFrame, name: str, missing: str) -> np.ndarray:
    column = frame[name]
    values = column.astype(object)
    mask = column.isna().to_numpy()
    out = np.array([str(v) for v in values], dtype=object)
    out[mask] = missing
    return out


def coerce_features(spec: ModelSpec, frame: pd.DataFrame) -> pd.DataFrame:
    """The feature columns of ``frame`` exactly as the ONNX graph receives them.

    Raises:
        SchemaMismatch: a feature column is missing or a numeric column holds non-numbers.
    """
    missing = [c for c in spec.features.all if c not in frame.columns]
    if missing:
        raise SchemaMismatch(f"feature columns missing from the data: {missing}; present: {list(frame.columns)}")
    data = {name: _numeric_column(frame, name) for name in spec.features.numeric}
    token = spec.preprocessing.missing_category
    data.update({name: _categorical_column(frame, name, token) for name in spec.features.categorical})
    return pd.DataFrame(data, columns=spec.features.all)


def coerce_target(spec: ModelSpec, frame: pd.DataFrame) -> np.ndarray:
    """The target as a plain numpy array: int64 or str labels for classification, float64 for regression.

    Raises:
        SchemaMismatch: the target column is missing or has missing values.
    """
    if spec.target not in frame.columns:
        raise SchemaMismatch(f"target column {spec.target!r} is missing; present: {list(frame.columns)}")
    column = frame[spec.target]
    if column.isna().any():
        raise SchemaMismatch(f"target column {spec.target!r} has {int(column.isna().sum())} missing values")
    if spec.task == "regression":
        return column.astype("Float64").to_numpy(dtype=np.float64)
    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_integer_dtype(column):
        return column.astype("Int64").to_numpy(dtype=np.int64)
    if pd.api.types.is_float_dtype(column):
        as_int = column.astype("Float64")
        if ((as_int % 1) == 0).all():
            return as_int.astype("Int64").to_numpy(dtype=np.int64)
        raise SchemaMismatch(f"classification target {spec.target!r} holds non-integer numbers")
    return np.array([str(v) for v in column.astype(object)], dtype=object)


def build_estimator(spec: ModelSpec, extra_params: dict | None = None) -> BaseEstimator:
    """The estimator named by the spec, with its fixed parameters and a seed when it accepts one."""
    cls = load_estimator_class(spec.estimator)
    estimator = cls()
    params = dict(spec.params)
    if spec.random_state is not None and "random_state" in estimator.get_params() and "random_state" not in params:
        params["random_state"] = spec.random_state
    params.update(extra_params or {})
    return estimator.set_params(**params)


def build_pipeline(spec: ModelSpec) -> Pipeline:
    """``ColumnTransformer`` (impute / scale numerics, one-hot categoricals) followed by the estimator.

    Columns are selected by name so that the ONNX export has one input per raw column.
    """
    prep = spec.preprocessing
    transformers = []
    if spec.features.numeric:
        steps = []
        if prep.numeric_impute != "none":
            steps.append(("impute", SimpleImputer(strategy=prep.numeric_impute)))
        scale = prep.scale_numeric if prep.scale_numeric is not None else not spec.is_tree_based
        if scale:
            steps.append(("scale", StandardScaler()))
        transformers.append(("numeric", Pipeline(steps) if steps else "passthrough", spec.features.numeric))
    if spec.features.categorical:
        encoder = (
            OneHotEncoder(handle_unknown="ignore", sparse_output=False, dtype=np.float32)
            if prep.one_hot
            else "passthrough"
        )
        transformers.append(("categorical", encoder, spec.features.categorical))
    columns = ColumnTransformer(transformers, remainder="drop", sparse_threshold=0.0)
    return Pipeline([("prepare", columns), ("estimator", build_estimator(spec))])
