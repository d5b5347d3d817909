"""Distributed hyper-parameter search against scikit-learn's own ``n_jobs=2``, measured in the same run.

Variants, interleaved round by round so that a noisy neighbour hits all of them alike:

* ``sklearn_nj2``: ``GridSearchCV(n_jobs=2)`` (loky processes), the baseline;
* ``dataops_dask``: ``orchestrator.ml.tune.search`` on a LocalCluster of 2 single-thread worker processes
  (one task per candidate, training data scattered once);
* ``joblib_dask``: ``GridSearchCV(n_jobs=-1)`` under joblib's Dask backend on the same cluster.

Prints per-variant medians and the median of per-round ratios against the baseline.

    .venv/bin/python bench/tuning.py [--rows 30000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd


def make_data(rows: int, features: int = 20, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, features)).astype(np.float32)
    logit = X[:, 0] - 0.5 * X[:, 1] + 0.25 * X[:, 2] * X[:, 3]
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(features)])
    frame["label"] = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    return frame


SPACE = {"n_estimators": [5, 10], "max_depth": [4, 8, 12], "max_features": ["sqrt", 0.2]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=30000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import joblib
    from distributed import Client, LocalCluster
    from sklearn.model_selection import GridSearchCV

    from orchestrator.ml.features import build_pipeline, coerce_features, coerce_target
    from orchestrator.ml.spec import ModelSpec
    from orchestrator.ml.tune import ESTIMATOR_PREFIX, make_folds, search

    frame = make_data(args.rows)
    spec = ModelSpec.model_validate({
        "name": "bench", "task": "classification", "target": "label",
        "features": {"numeric": [c for c in frame.columns if c != "label"]},
        "estimator": "sklearn.ensemble.RandomForestClassifier",
        "tuning": {"strategy": "grid", "space": SPACE, "cv": 3}})
    X, y = coerce_features(spec, frame), coerce_target(spec, frame)
    pipeline = build_pipeline(spec)
    folds = make_folds(spec, spec.tuning)
    grid = {ESTIMATOR_PREFIX + k: v for k, v in SPACE.items()}
    n_candidates = int(np.prod([len(v) for v in SPACE.values()]))

    started = time.perf_counter()
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address="127.0.0.1:0")
    client = Client(cluster)
    print(f"LocalCluster startup {time.perf_counter() - started:.1f} s (excluded from timings)")

    def sklearn_nj2():
        GridSearchCV(pipeline, grid, cv=folds, scoring="roc_auc", n_jobs=2, refit=False).fit(X, y)

    def dataops_dask():
        search(spec, pipeline, X, y, "roc_auc", client=client)

    def joblib_dask():
        with joblib.parallel_config(backend="dask"):
            GridSearchCV(pipeline, grid, cv=folds, scoring="roc_auc", n_jobs=-1, refit=False).fit(X, y)

    variants = {"sklearn_nj2": sklearn_nj2, "dataops_dask": dataops_dask, "joblib_dask": joblib_dask}
    times: dict[str, list[float]] = {name: [] for name in variants}
    try:
        for round_ in range(args.rounds):
            for name, run in variants.items():
                t0 = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - t0)
                print(f"round {round_ + 1} {name}: {times[name][-1]:.1f} s", flush=True)
    finally:
        client.close()
        cluster.close()

    print(f"\nRF grid: {n_candidates} candidates x {spec.tuning.cv} folds, {args.rows} rows x "
          f"{X.shape[1]} features, {args.rounds} interleaved rounds")
    print(f"{'variant':<14} {'median s':>9} {'raw s':<30} {'ratio vs sklearn_nj2 (median per round)':>40}")
    for name, values in times.items():
        ratios = [v / b for v, b in zip(values, times["sklearn_nj2"])]
        print(f"{name:<14} {statistics.median(values):>9.1f} {str([round(v, 1) for v in values]):<30} "
              f"{statistics.median(ratios):>40.2f}")


if __name__ == "__main__":
    main()
