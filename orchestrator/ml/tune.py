"""Hyper-parameter search: candidates from the spec, cross-validated on the train partition only.

Each candidate is one task (``sklearn.model_selection.cross_validate`` over the folds). With a Dask client the
tasks run on the cluster (the training matrix is scattered once and shared by every task) and finish in any
order, which is what lets the caller show candidates done / total and the best score so far. Without a client
they run one after another in this process. Successive halving uses scikit-learn's own halving search under
joblib's Dask backend, since its rounds depend on each other.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import joblib
import numpy as np
import pandas as pd
from scipy import stats
from sklearn.base import clone
from sklearn.model_selection import KFold, ParameterGrid, ParameterSampler, StratifiedKFold, cross_validate

from orchestrator.ml.shared_tasks import run_sharing
from orchestrator.ml.spec import ModelSpec, TuningSpec

Progress = Callable[[int, int, "float | None"], None]
ESTIMATOR_PREFIX = "estimator__"


@dataclass
class CandidateScore:
    """One candidate's parameters and its cross-validation scores on the train partition."""

    params: dict
    cv_scores: list[float]
    fit_seconds: float
    halving_round: int | None = None

    @property
    def cv_mean(self) -> float:
        return float(np.mean(self.cv_scores))

    def as_dict(self) -> dict:
        return {
            "params": _jsonable(self.params),
            "cv_scores": [float(s) for s in self.cv_scores],
            "cv_mean": self.cv_mean,
            "cv_std": float(np.std(self.cv_scores)),
            "fit_seconds": round(self.fit_seconds, 3),
            **({"halving_round": self.halving_round} if self.halving_round is not None else {}),
        }


def default_scoring(spec: ModelSpec, n_classes: int) -> str:
    """The scorer used when the spec names none."""
    if spec.task == "regression":
        return "neg_root_mean_squared_error"
    return "roc_auc" if n_classes == 2 else "accuracy"


def _distribution(value: Any):
    if isinstance(value, list):
        return value
    (kind, (low, high)), = value.items()
    if kind == "uniform":
        return stats.uniform(low, high - low)
    if kind == "loguniform":
        return stats.loguniform(low, high)
    return stats.randint(low, high + 1)


def candidate_params(tuning: TuningSpec) -> list[dict]:
    """Every candidate of a grid or random search, as estimator parameters (no pipeline prefix)."""
    if tuning.strategy == "grid":
        lists = {k: v for k, v in tuning.space.items()}
        not_lists = [k for k, v in lists.items() if not isinstance(v, list)]
        if not_lists:
            raise ValueError(f"grid search needs lists of values; distributions given for {not_lists}")
        return list(ParameterGrid(lists))
    space = {k: _distribution(v) for k, v in tuning.space.items()}
    if all(isinstance(v, list) for v in space.values()):
        # A small discrete space may hold fewer candidates than n_iter: sample without repeats.
        n_iter = min(tuning.n_iter, math.prod(len(v) for v in space.values()))
    else:
        n_iter = tuning.n_iter
    return list(ParameterSampler(space, n_iter=n_iter, random_state=tuning.random_state))


def make_folds(spec: ModelSpec, tuning: TuningSpec):
    """Shuffled folds, stratified for classification, seeded for repeatable scores."""
    kind = StratifiedKFold if spec.task == "classification" else KFold
    return kind(n_splits=tuning.cv, shuffle=True, random_state=tuning.random_state)


def _cross_validate_candidate(pipeline, params: dict, X, y, folds, scoring: str) -> CandidateScore:
    started = time.perf_counter()
    model = clone(pipeline).set_params(**{ESTIMATOR_PREFIX + k: v for k, v in params.items()})
    result = cross_validate(model, X, y, cv=folds, scoring=scoring, n_jobs=1, error_score="raise")
    return CandidateScore(params, list(result["test_score"]), time.perf_counter() - started)


def _score_fold(X, y, splits, pipeline, params: dict, fold: int, scoring: str) -> tuple[float, float]:
    started = time.perf_counter()
    model = clone(pipeline).set_params(**{ESTIMATOR_PREFIX + k: v for k, v in params.items()})
    result = cross_validate(model, X, y, cv=[splits[fold]], scoring=scoring, n_jobs=1, error_score="raise")
    return float(result["test_score"][0]), time.perf_counter() - started


def _run_on_client(client, pipeline, candidates, X, y, folds, scoring) -> Iterator[CandidateScore]:
    splits = list(folds.split(X, y))
    # One task per (candidate, fold): candidates differ a lot in cost, and small tasks keep every worker busy
    # until the end instead of leaving one finishing the largest candidate alone. The training data and fold
    # indices go once to every worker, not once per task.
    calls = [(pipeline, params, fold, scoring) for params in candidates for fold in range(len(splits))]
    pending = {index: [None] * len(splits) for index in range(len(candidates))}
    seconds = [0.0] * len(candidates)
    for call, (score, elapsed) in run_sharing(client, [X, y, splits], _score_fold, calls):
        index, fold = divmod(call, len(splits))
        pending[index][fold] = score
        seconds[index] += elapsed
        if all(s is not None for s in pending[index]):
            yield CandidateScore(candidates[index], pending.pop(index), seconds[index])


def _run_here(pipeline, candidates, X, y, folds, scoring) -> Iterator[CandidateScore]:
    for params in candidates:
        yield _cross_validate_candidate(pipeline, params, X, y, folds, scoring)


def search(
    spec: ModelSpec,
    pipeline,
    X: pd.DataFrame,
    y: np.ndarray,
    scoring: str,
    client=None,
    on_progress: Progress | None = None,
) -> list[CandidateScore]:
    """Cross-validate every candidate of ``spec.tuning`` on (X, y), the train partition.

    Returns:
        The candidates, best cross-validation mean first.
    """
    tuning = spec.tuning
    assert tuning is not None
    folds = make_folds(spec, tuning)
    if tuning.strategy == "halving":
        return _halving(spec, pipeline, X, y, folds, scoring, client, on_progress)
    candidates = candidate_params(tuning)
    total = len(candidates)
    if on_progress:
        on_progress(0, total, None)
    runner = functools.partial(_run_on_client, client) if client is not None else _run_here
    scores: list[CandidateScore] = []
    best = None
    for score in runner(pipeline, candidates, X, y, folds, scoring):
        scores.append(score)
        best = score.cv_mean if best is None else max(best, score.cv_mean)
        if on_progress:
            on_progress(len(scores), total, best)
    return sorted(scores, key=lambda s: s.cv_mean, reverse=True)


def _halving(spec, pipeline, X, y, folds, scoring, client, on_progress) -> list[CandidateScore]:
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401  (registers the classes)
    from sklearn.model_selection import HalvingGridSearchCV, HalvingRandomSearchCV

    tuning = spec.tuning
    prefixed = {ESTIMATOR_PREFIX + k: v for k, v in tuning.space.items()}
    common = dict(cv=folds, scoring=scoring, factor=tuning.factor, refit=False, n_jobs=-1 if client else 1,
                  random_state=tuning.random_state, error_score="raise")
    if all(isinstance(v, list) for v in prefixed.values()):
        searcher = HalvingGridSearchCV(pipeline, prefixed, **common)
    else:
        space = {k: _distribution(v) for k, v in prefixed.items()}
        searcher = HalvingRandomSearchCV(pipeline, space, n_candidates=tuning.n_iter, **common)
    if client is not None:
        with joblib.parallel_config(backend="dask"):
            searcher.fit(X, y)
    else:
        searcher.fit(X, y)
    results = searcher.cv_results_
    last = int(results["iter"].max())
    scores = []
    for i in range(len(results["params"])):
        params = {k[len(ESTIMATOR_PREFIX):]: v for k, v in results["params"][i].items()}
        fold_scores = [results[f"split{f}_test_score"][i] for f in range(tuning.cv)]
        seconds = float(results["mean_fit_time"][i]) * tuning.cv
        scores.append(CandidateScore(params, fold_scores, seconds, halving_round=int(results["iter"][i])))
    # Only the last round was scored on the most data: those candidates rank first.
    scores.sort(key=lambda s: (s.halving_round == last, s.cv_mean), reverse=True)
    if on_progress:
        on_progress(len(scores), len(scores), scores[0].cv_mean)
    return scores


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None  # JSON has no NaN or infinity
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)
