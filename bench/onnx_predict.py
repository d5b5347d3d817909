"""Batch scoring against scikit-learn: the project's scoring path, bare onnxruntime and scikit-learn, same run.

For each model (a random forest and a histogram gradient-boosting classifier by default), the exported pipeline
(imputer + estimator, one ONNX input per column) trained on synthetic data, and one batch of ``--rows`` rows.
Variants, interleaved within each round:

* ``sklearn_1``, ``sklearn_N``: ``predict_proba`` on one thread and on every core (``n_jobs`` for the forest,
  OpenMP threads for gradient boosting, through threadpoolctl);
* ``ort_t1``, ``ort_tN``: one bare ``InferenceSession.run`` over the whole batch, 1 and N intra-op threads;
* ``score_partition``: the project's path on one call (what the reference profile and a single partition take:
  type checks, float32 feeds, the process's cached session, row slices over the cores);
* ``score_dask``: ``score_dataframe`` on a Dask DataFrame of ``--partitions`` partitions, computed with Dask's
  threads (a worker runs the same function per partition);
* ``predict_dask``: the same under the server's input contract (range policy "reject"), as ``dataops predict``
  scores: every row screened, the rows outside the training data judged one by one and left unscored.

Also the single-row latency of scikit-learn against one session run. Prints medians and the median of per-round
ratios against scikit-learn on one thread and on every core. Goal: the project's path at least 1.0x
``sklearn_N``.

    python -m bench onnx_predict [--model rf hgb] [--rows 200000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

FEATURES = 20
ESTIMATORS = {
    "rf": ("sklearn.ensemble.RandomForestClassifier", {"n_estimators": 100, "max_depth": 12, "n_jobs": 1}),
    "hgb": ("sklearn.ensemble.HistGradientBoostingClassifier", {"max_iter": 100}),
    "lr": ("sklearn.linear_model.LogisticRegression", {}),
}
GOAL = 1.0
PROJECT_VARIANTS = ("score_partition", "score_dask", "predict_dask")


def make_data(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, FEATURES)).astype(np.float32)
    logit = X[:, 0] - 0.5 * X[:, 1] + 0.25 * X[:, 2] * X[:, 3]
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(FEATURES)])
    frame["label"] = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    return frame


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def prepare(name: str, args) -> dict:
    """Train and export one model; return its variants (name -> callable) and the single-row pair."""
    import dask
    import dask.dataframe as dd
    import onnxruntime as ort
    from threadpoolctl import threadpool_limits

    from orchestrator.ml.features import coerce_features
    from orchestrator.ml.onnx_export import export_model, onnx_feeds
    from orchestrator.ml.score import load_card, score_dataframe, score_partition
    from orchestrator.ml.spec import ModelSpec
    from orchestrator.ml.train import fit_model

    estimator, params = ESTIMATORS[name]
    spec = ModelSpec.model_validate({
        "name": "bench", "task": "classification", "target": "label",
        "features": {"numeric": [f"f{i}" for i in range(FEATURES)]}, "estimator": estimator, "params": params})
    train, test = make_data(args.train_rows, 0), make_data(2000, 1)
    t0 = time.perf_counter()
    model = fit_model(spec, train, test).model
    print(f"train {name}: {time.perf_counter() - t0:.1f} s", flush=True)
    folder = Path(tempfile.mkdtemp(prefix="bench-onnx-"))
    t0 = time.perf_counter()
    export = export_model(spec, model, train, test, folder, {}, {})
    print(f"export + parity: {time.perf_counter() - t0:.1f} s, model.onnx {export.card['files']['model.onnx']['size']:,}"
          f" bytes, max |dp| {export.parity['max_abs_proba_diff']:.2g}", flush=True)
    model_bytes = (folder / "model.onnx").read_bytes()
    card = load_card(folder)
    n = cores()

    def session(threads: int):
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])

    sessions = {1: session(1), n: session(n)}
    batch = make_data(args.rows, 2).drop(columns=["label"])
    X_batch = coerce_features(spec, batch)
    feeds = onnx_feeds(spec, X_batch)
    one_row = X_batch.iloc[:1]
    one_feed = onnx_feeds(spec, one_row)
    partitioned = dd.from_pandas(batch, npartitions=args.partitions)
    estimator_step = model.steps[-1][1]

    def sklearn(threads: int):
        def run():
            if "n_jobs" in estimator_step.get_params():
                estimator_step.set_params(n_jobs=threads)
            with threadpool_limits(threads):
                model.predict_proba(X_batch)
        return run

    def single_sklearn():
        if "n_jobs" in estimator_step.get_params():
            estimator_step.set_params(n_jobs=1)
        with threadpool_limits(1):
            model.predict_proba(one_row)

    def score_dask(policy=None):
        def run():
            with dask.config.set(scheduler="threads"):
                score_dataframe(folder, partitioned, policy).compute()
        return run

    variants = {
        "sklearn_1": sklearn(1), f"sklearn_{n}": sklearn(n),
        "ort_t1": lambda: sessions[1].run(None, feeds), f"ort_t{n}": lambda: sessions[n].run(None, feeds),
        "score_partition": lambda: score_partition(batch, model_bytes, card, 1),
        "score_dask": score_dask(), "predict_dask": score_dask("reject"),
    }
    score_partition(batch.iloc[:10], model_bytes, card, 1)  # the process's session, as any worker keeps it
    refused = int(score_partition(batch, model_bytes, card, 1, "reject")["refused"].notna().sum())
    return {"variants": variants, "refused": refused, "single": {"sklearn_1row": single_sklearn,
                                             "ort_t1_1row": lambda: sessions[1].run(None, one_feed)}}


def report(name: str, rows: int, batch: dict[str, list[float]], single: dict[str, list[float]]) -> bool:
    n = cores()
    best = f"sklearn_{n}"
    ratios = [s / o for s, o in zip(single["sklearn_1row"], single["ort_t1_1row"])]
    print(f"\n{name}: batch of {rows:,} rows, {n} cores, medians over {len(batch['sklearn_1'])} rounds")
    print(f"1-row p50: sklearn {statistics.median(single['sklearn_1row']) * 1e6:,.0f} us, onnxruntime "
          f"{statistics.median(single['ort_t1_1row']) * 1e6:,.0f} us, sklearn/ort {statistics.median(ratios):.1f}x")
    print(f"{'batch variant':<18} {'median s':>9} {'rows/s':>12} {'vs sklearn_1':>13} {'vs ' + best:>14}")
    for variant, values in batch.items():
        against_one = statistics.median(b / v for v, b in zip(values, batch["sklearn_1"]))
        against_best = statistics.median(b / v for v, b in zip(values, batch[best]))
        median = statistics.median(values)
        print(f"{variant:<18} {median:>9.3f} {rows / median:>12,.0f} {against_one:>12.2f}x {against_best:>13.2f}x")
    worst = min(statistics.median(b / v for v, b in zip(batch[p], batch[best])) for p in PROJECT_VARIANTS)
    met = worst >= GOAL
    print(f"goal ({', '.join(PROJECT_VARIANTS)} >= {GOAL}x {best}): {'met' if met else 'NOT met'} ({worst:.2f}x)")
    return met


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", nargs="+", choices=sorted(ESTIMATORS), default=["rf", "hgb"])
    parser.add_argument("--train-rows", type=int, default=20000)
    parser.add_argument("--rows", type=int, default=200000, help="batch size scored in one call")
    parser.add_argument("--partitions", type=int, default=8, help="partitions of the Dask variant")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--single-calls", type=int, default=200)
    args = parser.parse_args(argv)

    prepared = {name: prepare(name, args) for name in args.model}
    batch = {name: {v: [] for v in p["variants"]} for name, p in prepared.items()}
    single = {name: {v: [] for v in p["single"]} for name, p in prepared.items()}
    for round_ in range(args.rounds):
        for name, p in prepared.items():
            single[name]["sklearn_1row"].append(statistics.median(
                timed(p["single"]["sklearn_1row"], max(20, args.single_calls // 10))))
            single[name]["ort_t1_1row"].append(statistics.median(timed(p["single"]["ort_t1_1row"], args.single_calls)))
            variants = list(p["variants"].items())
            # Alternate the order so that no variant always runs on a machine warmed (or tired) by the same one.
            for variant, run in variants if round_ % 2 == 0 else reversed(variants):
                batch[name][variant].append(timed(run, 1)[0])
        print(f"round {round_ + 1} done", flush=True)
    for name in args.model:
        report(name, args.rows, batch[name], single[name])
        refused = prepared[name]["refused"]
        print(f"the contract refused {refused:,} of {args.rows:,} rows (outside the training range)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
