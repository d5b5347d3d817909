"""ONNX (onnxruntime) against scikit-learn prediction: single-row latency and batch throughput, same run.

The model is the exported pipeline itself (imputer + estimator, one ONNX input per column), trained on synthetic
data. Variants, interleaved round by round:

* single row: ``predict_proba`` on a 1-row DataFrame vs one ``InferenceSession.run`` (1 thread);
* batch: scikit-learn ``predict_proba`` on the whole batch vs onnxruntime with intra-op threads 1 and 2 and
  chunk sizes, and the batch scoring path (``score_partition``: type checks, feeds, session cache) on
  partitions of the same sizes.

Prints medians and the median of per-round ratios.

    .venv/bin/python bench/onnx_predict.py [--model rf|hgb|lr] [--rows 100000] [--rounds 3]
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(ESTIMATORS), default="rf")
    parser.add_argument("--train-rows", type=int, default=20000)
    parser.add_argument("--rows", type=int, default=100000, help="batch size scored in one call")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--single-calls", type=int, default=200)
    args = parser.parse_args()

    import onnxruntime as ort

    from orchestrator.ml.features import coerce_features
    from orchestrator.ml.onnx_export import export_model, onnx_feeds
    from orchestrator.ml.score import load_card, score_partition
    from orchestrator.ml.spec import ModelSpec
    from orchestrator.ml.train import fit_model

    estimator, params = ESTIMATORS[args.model]
    spec = ModelSpec.model_validate({
        "name": "bench", "task": "classification", "target": "label",
        "features": {"numeric": [f"f{i}" for i in range(FEATURES)]}, "estimator": estimator, "params": params})
    train, test = make_data(args.train_rows, 0), make_data(2000, 1)
    t0 = time.perf_counter()
    model = fit_model(spec, train, test).model
    print(f"train {args.model}: {time.perf_counter() - t0:.1f} s")
    folder = Path(tempfile.mkdtemp(prefix="bench-onnx-"))
    t0 = time.perf_counter()
    export = export_model(spec, model, train, test, folder, {}, {})
    print(f"export + parity: {time.perf_counter() - t0:.1f} s, model.onnx {export.card['files']['model.onnx']['size']}"
          f" bytes, max |dp| {export.parity['max_abs_proba_diff']:.2g}")
    model_bytes = (folder / "model.onnx").read_bytes()
    card = load_card(folder)

    def session(threads: int):
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])

    sessions = {1: session(1), 2: session(2)}
    batch = make_data(args.rows, 2).drop(columns=["label"])
    X_batch = coerce_features(spec, batch)
    one_row = X_batch.iloc[:1]
    one_feed = onnx_feeds(spec, one_row)
    chunk_sizes = [1000, 10000, args.rows]

    def ort_chunks(threads, size):
        def run():
            for start in range(0, len(X_batch), size):
                sessions[threads].run(None, onnx_feeds(spec, X_batch.iloc[start:start + size]))
        return run

    def score_path(size):
        def run():
            for start in range(0, len(batch), size):
                score_partition(batch.iloc[start:start + size], model_bytes, card, 1)
        return run

    batch_variants = {"sklearn": lambda: model.predict_proba(X_batch)}
    if args.model == "rf":
        n_jobs_model = model.set_params(estimator__n_jobs=2)
        batch_variants["sklearn_nj2"] = lambda: n_jobs_model.predict_proba(X_batch)
    for threads in (1, 2):
        for size in chunk_sizes:
            batch_variants[f"ort_t{threads}_chunk{size}"] = ort_chunks(threads, size)
    for size in chunk_sizes:
        batch_variants[f"score_path_chunk{size}"] = score_path(size)

    single: dict[str, list[float]] = {"sklearn_1row": [], "ort_t1_1row": []}
    batch_times: dict[str, list[float]] = {name: [] for name in batch_variants}
    for round_ in range(args.rounds):
        if args.model == "rf":
            model.set_params(estimator__n_jobs=1)
        single["sklearn_1row"].append(statistics.median(
            timed(lambda: model.predict_proba(one_row), max(20, args.single_calls // 10))))
        single["ort_t1_1row"].append(statistics.median(
            timed(lambda: sessions[1].run(None, one_feed), args.single_calls)))
        for name, run in batch_variants.items():
            if args.model == "rf":
                model.set_params(estimator__n_jobs=2 if name == "sklearn_nj2" else 1)
            batch_times[name].append(timed(run, 1)[0])
        print(f"round {round_ + 1} done", flush=True)

    print(f"\n{args.model}: single row ({args.rounds} rounds, median per round) and batch of {args.rows} rows")
    ratios = [s / o for s, o in zip(single["sklearn_1row"], single["ort_t1_1row"])]
    print(f"1-row p50: sklearn {statistics.median(single['sklearn_1row']) * 1e6:,.0f} us, onnxruntime "
          f"{statistics.median(single['ort_t1_1row']) * 1e6:,.0f} us, sklearn/ort {statistics.median(ratios):.1f}x")
    print(f"{'batch variant':<24} {'median s':>9} {'rows/s':>12} {'throughput vs sklearn':>22}")
    for name, values in batch_times.items():
        ratio = statistics.median(b / v for v, b in zip(values, batch_times["sklearn"]))
        median = statistics.median(values)
        print(f"{name:<24} {median:>9.3f} {args.rows / median:>12,.0f} {ratio:>22.2f}")


if __name__ == "__main__":
    main()
