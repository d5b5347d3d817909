"""Train a model: tune by cross-validation on the train partition, choose among finalists on validation.

``fit_model`` receives the train and validation partitions only (the pipeline runner enforces it) and records
rows and a fingerprint of each, so that the run record proves which data the tuner saw.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import get_scorer
from sklearn.pipeline import Pipeline

from orchestrator.errors import StageFailed
from orchestrator.ml.features import build_pipeline, coerce_features, coerce_target, describe_frame
from orchestrator.ml.shared_tasks import run_sharing
from orchestrator.ml.spec import ModelSpec
from orchestrator.ml.tune import ESTIMATOR_PREFIX, _jsonable, default_scoring, search

Progress = Callable[[int, int, "float | None"], None]


@dataclass
class FitResult:
    """What training produced and what it was given.

    Attributes:
        model: the fitted scikit-learn Pipeline (preprocessing + estimator) chosen on validation.
        candidates: every candidate's parameters and scores (cross-validation on train; validation for finalists).
        best_params: the chosen estimator parameters (tuned ones only).
        best_score: the chosen model's score on the validation partition.
        scoring: the scikit-learn scorer used for cross-validation and selection.
        data: rows and fingerprint of each frame received, by partition name ("train", "validation").
        seconds: wall time of the whole fit.
    """

    model: Pipeline
    candidates: list[dict]
    best_params: dict
    best_score: float
    scoring: str
    data: dict = field(default_factory=dict)
    seconds: float = 0.0

    def record(self) -> dict:
        """The JSON-able part, for the run record."""
        return {
            "candidates": self.candidates,
            "best_params": _jsonable(self.best_params),
            "best_score": self.best_score,
            "scoring": self.scoring,
            "data": self.data,
            "seconds": round(self.seconds, 3),
        }


def _fit_and_validate(X_train, y_train, X_val, y_val, pipeline, params, scoring):
    model = clone(pipeline).set_params(**{ESTIMATOR_PREFIX + k: v for k, v in params.items()})
    model.fit(X_train, y_train)
    return model, float(get_scorer(scoring)(model, X_val, y_val))


def fit_model(
    spec: ModelSpec,
    train: pd.DataFrame,
    validation: pd.DataFrame,
    client=None,
    on_progress: Progress | None = None,
) -> FitResult:
    """Train the model the spec describes.

    Without tuning, the pipeline is fitted on train and scored on validation. With tuning, every candidate is
    cross-validated on train (on the Dask cluster when ``client`` is given), the ``finalists`` best are refitted
    on the whole train partition and the one scoring best on validation is returned.

    Args:
        spec: the model section of the pipeline file.
        train: the train partition (features and target).
        validation: the validation partition, used only to choose among finalists and report a score.
        client: a ``distributed.Client`` to run the search on; None runs it in this process.
        on_progress: called with (candidates done, total, best cross-validation score so far).

    Returns:
        The fitted model, every candidate's scores and what data was used.

    Raises:
        SchemaMismatch: a feature or the target column is missing or mistyped.
        StageFailed: the estimator could not be fitted.
    """
    started = time.perf_counter()
    data = {"train": describe_frame(train), "validation": describe_frame(validation)}
    X_train, y_train = coerce_features(spec, train), coerce_target(spec, train)
    X_val, y_val = coerce_features(spec, validation), coerce_target(spec, validation)
    n_classes = len(np.unique(y_train)) if spec.task == "classification" else 0
    if spec.task == "classification" and n_classes < 2:
        raise StageFailed(f"target {spec.target!r} has a single class in the train partition: nothing to learn")
    scoring = (spec.tuning.scoring if spec.tuning else None) or default_scoring(spec, n_classes)
    pipeline = build_pipeline(spec)
    try:
        if spec.tuning is None:
            if on_progress:
                on_progress(0, 1, None)
            model, val_score = _fit_and_validate(X_train, y_train, X_val, y_val, pipeline, {}, scoring)
            if on_progress:
                on_progress(1, 1, None)
            candidates = [{"params": _jsonable(spec.params), "validation_score": val_score, "chosen": True}]
            return FitResult(model, candidates, {}, val_score, scoring, data, time.perf_counter() - started)

        ranked = search(spec, pipeline, X_train, y_train, scoring, client=client, on_progress=on_progress)
        finalists = ranked[: spec.tuning.finalists]
        if client is not None:
            # Scattered once, not embedded in every task's graph (tens of MB to the scheduler per finalist).
            shared = [X_train, y_train, X_val, y_val]
            calls = [(pipeline, c.params, scoring) for c in finalists]
            fitted = [None] * len(finalists)
            for index, result in run_sharing(client, shared, _fit_and_validate, calls, broadcast=False):
                fitted[index] = result
        else:
            fitted = [_fit_and_validate(X_train, y_train, X_val, y_val, pipeline, c.params, scoring) for c in finalists]
    except ValueError as exc:
        raise StageFailed(f"training {spec.estimator} failed: {exc}") from exc

    chosen_index = int(np.argmax([score for _, score in fitted]))
    candidates = [c.as_dict() for c in ranked]
    for i, (_, score) in enumerate(fitted):
        candidates[i]["validation_score"] = score
        candidates[i]["chosen"] = i == chosen_index
    model, best_score = fitted[chosen_index]
    return FitResult(
        model=model,
        candidates=candidates,
        best_params=finalists[chosen_index].params,
        best_score=best_score,
        scoring=scoring,
        data=data,
        seconds=time.perf_counter() - started,
    )
