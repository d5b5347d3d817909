"""The reference profile of an exported model: its features on the train partition, its outputs on the validation
partition, scored by the exported ONNX model exactly as the server and ``dataops predict`` score.

The export stage builds it for every new model; ``dataops drift profile`` builds the same one, from the same
partitions, for a model registered before profiles existed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from orchestrator.ml.score import prediction_columns, score_partition
from orchestrator.monitoring.counts import count_numeric
from orchestrator.monitoring.profile import ReferenceProfile, build_profile, categorical_reference

# Quantile edges need a sample, not the whole partition: a million rows place a decile's edge within about 0.1 % of
# its rank. Counts and moments are still taken over every row, which is cheap (about 100M values/s).
EDGE_SAMPLE_ROWS = 1_000_000
_SAMPLE_SEED = 0


def model_columns(card: dict) -> tuple[list[str], list[str]]:
    """The model's numeric and categorical input features, by name, in input order."""
    numeric = [item["name"] for item in card["inputs"] if item["datatype"] == "FP32"]
    categorical = [item["name"] for item in card["inputs"] if item["datatype"] != "FP32"]
    return numeric, categorical


def model_outputs(card: dict, model_dir: Path, rows: pd.DataFrame) -> pd.DataFrame:
    """The model's outputs on ``rows`` under the names ``dataops predict`` writes: ``prediction`` and, for a
    classifier, ``proba_<class>``."""
    model_bytes = (Path(model_dir) / "model.onnx").read_bytes()
    scored = score_partition(rows, model_bytes, card, card.get("version"))
    return scored[list(prediction_columns(card))].reset_index(drop=True)


def model_reference_profile(card: dict, model_dir: Path, train: pd.DataFrame, validation: pd.DataFrame,
                            importance: dict[str, float] | None = None) -> ReferenceProfile:
    """The reference profile of the model in ``model_dir``.

    Args:
        card: the model card (its inputs, task and classes say which columns are profiled, and how).
        model_dir: the model folder; its ``model.onnx`` scores the validation rows.
        train: the train partition: the features' reference.
        validation: the validation partition: the outputs' reference (rows the model was not fitted on).
        importance: each feature's importance (the evaluation's permutation importance), for the verdict.

    Returns:
        The profile: every feature, then ``prediction`` (categorical for a classifier, numeric for a regressor)
        and the classifier's ``proba_<class>`` columns.
    """
    numeric, categorical = model_columns(card)
    outputs = model_outputs(card, model_dir, validation)
    kinds = {"prediction": "categorical" if card["task"] == "classification" else "numeric"}
    features = set(numeric) | set(categorical)
    importance = {name: float(value) for name, value in (importance or {}).items() if name in features}
    profile = build_profile(_edge_sample(train), numeric, categorical, _edge_sample(outputs), kinds, importance)
    if len(train) > EDGE_SAMPLE_ROWS:
        _count_whole(profile, train, features)
    if len(outputs) > EDGE_SAMPLE_ROWS:
        _count_whole(profile, outputs, set(outputs.columns))
    return profile


def _edge_sample(frame: pd.DataFrame) -> pd.DataFrame:
    """At most ``EDGE_SAMPLE_ROWS`` rows, always the same ones for the same partition."""
    if len(frame) <= EDGE_SAMPLE_ROWS:
        return frame
    rng = np.random.default_rng(_SAMPLE_SEED)
    return frame.iloc[np.sort(rng.choice(len(frame), EDGE_SAMPLE_ROWS, replace=False))]


def _count_whole(profile: ReferenceProfile, frame: pd.DataFrame, names: set[str]) -> None:
    """Recount the named columns over every row of ``frame``, on the edges frozen from the sample."""
    for index, column in enumerate(profile.columns):
        if column.name not in names:
            continue
        if column.kind == "numeric":
            values = pd.to_numeric(frame[column.name], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            column.counts = count_numeric(column, values)
            present = values[~np.isnan(values)]
            if present.size:
                column.mean, column.std = float(present.mean()), float(present.std())
        else:
            # Counting categories is a value_counts: cheap enough to take them from every row, not the sample.
            profile.columns[index] = categorical_reference(column.name, frame[column.name], role=column.role)
