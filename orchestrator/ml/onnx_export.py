"""Export a fitted pipeline to ONNX, prove it predicts what scikit-learn predicts, and write the model folder.

The parity check runs the scikit-learn pipeline and the ONNX graph (onnxruntime) on the whole test partition:
labels must agree exactly and probabilities within ``spec.parity_tolerance`` (regression: predictions within
``tolerance * max(1, |prediction|)``). Otherwise export fails with the worst rows and nothing is written.

Feature columns may have any name; the graph's inputs get valid, unique names (``onnx_names``) and the card maps
each column to its input (``onnx_name``), so the parity check, the card's examples and every reader feed the
graph by those names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd

from orchestrator.artifacts.store import sha256_of_file
from orchestrator.atomic import write_atomically
from orchestrator.errors import ParityFailed, StageFailed
from orchestrator.ml.card import PROFILE_FILE, build_card, monitoring_entry, render_markdown
from orchestrator.ml.converters import install_converter_fixes
from orchestrator.ml.features import coerce_features, describe_frame
from orchestrator.ml.onnx_names import graph_names, onnx_input_names, rename_graph_inputs
from orchestrator.ml.spec import ModelSpec

TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
WORST_ROWS_SHOWN = 5
EXAMPLE_ROWS = 2


@dataclass
class ExportResult:
    """Where the model folder is, the parity result and the card written into it."""

    out_dir: Path
    parity: dict
    card: dict


def onnx_input_types(spec: ModelSpec) -> list:
    """One ``[None, 1]`` input per raw column (named as the column, which is how the fitted ``ColumnTransformer``
    selects it): float for numeric, string for categorical."""
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    return [(name, FloatTensorType([None, 1])) for name in spec.features.numeric] + [
        (name, StringTensorType([None, 1])) for name in spec.features.categorical
    ]


def convert_to_onnx(spec: ModelSpec, model) -> onnx.ModelProto:
    """Convert the fitted pipeline with skl2onnx, name its inputs by ``onnx_input_names`` and check the graph.

    The inputs are in the order of ``spec.features.all``; ``input_names`` reads the mapping back.

    Raises:
        StageFailed: skl2onnx cannot convert the pipeline or the graph is invalid.
    """
    from skl2onnx import convert_sklearn

    install_converter_fixes()
    options = {id(model.steps[-1][1]): {"zipmap": False}} if spec.task == "classification" else None
    try:
        graph = convert_sklearn(model, initial_types=onnx_input_types(spec), options=options,
                                target_opset=TARGET_OPSET, name=spec.name)
        # skl2onnx makes its own names of columns that are not identifiers; ours are documented and stable.
        own = {value.name for value in graph.graph.input}
        names = onnx_input_names(spec.features.all, reserved=frozenset(graph_names(graph.graph) - own))
        rename_graph_inputs(graph, [names[column] for column in spec.features.all])
        onnx.checker.check_model(graph, full_check=True)
    except (RuntimeError, TypeError, ValueError, NotImplementedError, onnx.checker.ValidationError) as exc:
        raise StageFailed(f"cannot convert {spec.estimator} to ONNX: {exc}") from exc
    return graph


def input_names(spec: ModelSpec, graph: onnx.ModelProto) -> dict[str, str]:
    """``{feature column: ONNX input name}`` of a graph made by ``convert_to_onnx``."""
    return dict(zip(spec.features.all, (value.name for value in graph.graph.input)))


def onnx_feeds(spec: ModelSpec, X: pd.DataFrame, names: dict[str, str] | None = None) -> dict[str, np.ndarray]:
    """The ONNX inputs for coerced features: ``[n, 1]`` float32 or string arrays, by ONNX input name.

    Args:
        spec: the model section (which features are numeric, which categorical).
        X: the coerced features, columns named as in the data.
        names: ``{column: ONNX name}`` (``input_names``); default ``onnx_input_names`` of the features.
    """
    names = names or onnx_input_names(spec.features.all)
    feeds = {names[c]: X[c].to_numpy(dtype=np.float32).reshape(-1, 1) for c in spec.features.numeric}
    feeds.update({names[c]: X[c].to_numpy(dtype=object).reshape(-1, 1) for c in spec.features.categorical})
    return feeds


def _session(model_bytes: bytes) -> ort.InferenceSession:
    return ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])


def check_parity(spec: ModelSpec, model, model_bytes: bytes, X: pd.DataFrame,
                 names: dict[str, str] | None = None) -> dict:
    """Compare scikit-learn and onnxruntime predictions on every row of ``X``.

    Args:
        spec: the model section.
        model: the fitted pipeline, fed ``X`` with the data's column names.
        model_bytes: the ONNX graph, fed the same values by its input names (``names``, see ``onnx_feeds``).
        X: the coerced test features.
        names: ``{column: ONNX name}``.

    Returns:
        The parity record (rows, label mismatches, largest difference, tolerance, passed, worst rows).

    Raises:
        ParityFailed: a label differs or a difference exceeds the tolerance; the message lists the worst rows.
    """
    session = _session(model_bytes)
    outputs = dict(zip([o.name for o in session.get_outputs()], session.run(None, onnx_feeds(spec, X, names))))
    tolerance = spec.parity_tolerance
    if spec.task == "classification":
        expected_labels = model.predict(X)
        got_labels = outputs["label"].reshape(-1)
        expected = model.predict_proba(X)
        got = outputs["probabilities"]
        label_mismatch = np.asarray(expected_labels).astype(str) != got_labels.astype(str)
        diff = np.abs(expected - got).max(axis=1) if len(X) else np.zeros(0)
        bad = label_mismatch | (diff > tolerance)
        # Rows with a wrong label first, then the largest probability differences.
        order = np.lexsort((-diff, ~label_mismatch))
        shown = [{"row": int(i), "sklearn_label": _plain(expected_labels[i]), "onnx_label": _plain(got_labels[i]),
                  "sklearn_proba": [round(float(p), 7) for p in expected[i]],
                  "onnx_proba": [round(float(p), 7) for p in got[i]], "abs_diff": float(diff[i])}
                 for i in order[:WORST_ROWS_SHOWN] if bad[i]]
        parity = {"rows": int(len(X)), "label_mismatches": int(label_mismatch.sum()),
                  "max_abs_proba_diff": float(diff.max()) if len(X) else 0.0}
        parity["max_abs_diff"] = parity["max_abs_proba_diff"]
    else:
        expected = np.asarray(model.predict(X), dtype=np.float64).reshape(-1)
        got = outputs["variable"].reshape(-1).astype(np.float64)
        diff = np.abs(expected - got)
        bad = diff > tolerance * np.maximum(1.0, np.abs(expected))
        order = np.argsort(-diff)
        shown = [{"row": int(i), "sklearn": float(expected[i]), "onnx": float(got[i]), "abs_diff": float(diff[i])}
                 for i in order[:WORST_ROWS_SHOWN] if bad[i]]
        parity = {"rows": int(len(X)), "label_mismatches": 0, "max_abs_diff": float(diff.max()) if len(X) else 0.0}
    parity.update({"tolerance": tolerance, "passed": not bool(bad.any()), "failing_rows": int(bad.sum())})
    if not parity["passed"]:
        rows = "\n".join("  " + json.dumps(r) for r in shown)
        raise ParityFailed(
            f"ONNX export of {spec.name} ({spec.estimator}) does not match scikit-learn on "
            f"{parity['failing_rows']} of {parity['rows']} test rows ({parity['label_mismatches']} label mismatches, "
            f"max |difference| {parity['max_abs_diff']:.3g} > tolerance {tolerance:g}). Worst rows:\n{rows}"
        )
    return parity


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def _examples(spec: ModelSpec, model_bytes: bytes, X_train: pd.DataFrame, names: dict[str, str]) -> dict:
    """A few training rows with the ONNX outputs: a request a client can copy (records, by column name)."""
    complete = X_train.dropna()
    rows = (complete if len(complete) else X_train).head(EXAMPLE_ROWS)
    session = _session(model_bytes)
    outputs = session.run(None, onnx_feeds(spec, rows, names))
    names = [o.name for o in session.get_outputs()]
    inputs = [{k: (None if isinstance(v, float) and np.isnan(v) else _plain(v)) for k, v in row.items()}
              for row in rows.astype(object).to_dict(orient="records")]
    return {"inputs": inputs, "outputs": {name: np.asarray(out).tolist() for name, out in zip(names, outputs)}}


# A model folder is read by other services (the inference server), whatever the exporting user's umask.
MODEL_FILE_MODE = 0o644


def export_model(
    spec: ModelSpec,
    model,
    train: pd.DataFrame,
    test: pd.DataFrame,
    out_dir: Path,
    metrics: dict,
    lineage: dict,
    report_html: str | None = None,
) -> ExportResult:
    """Convert, check parity on the whole test partition, then write the model folder.

    Writes ``model.onnx``, ``model_card.json``, ``model_card.md``, ``metrics.json`` and, when given,
    ``report.html`` into ``out_dir`` (each file atomically). Nothing is written if parity fails.

    Args:
        spec: the model section of the pipeline file.
        model: the fitted pipeline.
        train: the train partition: input ranges, categories and reference statistics for the card.
        test: the test partition: the parity check runs on every row.
        out_dir: the model folder to write.
        metrics: evaluation metrics for the card.
        lineage: run id, pipeline, training data fingerprints...; ``training_data`` defaults to the train
            partition's rows and fingerprint.
        report_html: the evaluation report, saved as ``report.html``.

    Raises:
        StageFailed: conversion failed.
        ParityFailed: ONNX and scikit-learn predictions differ beyond the tolerance.
    """
    X_train = coerce_features(spec, train)
    X_test = coerce_features(spec, test)
    graph = convert_to_onnx(spec, model)
    model_bytes = graph.SerializeToString()
    names = input_names(spec, graph)
    parity = check_parity(spec, model, model_bytes, X_test, names)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / "model.onnx"
    write_atomically(onnx_path, model_bytes, MODEL_FILE_MODE)
    files = {"model.onnx": {"sha256": sha256_of_file(onnx_path), "size": onnx_path.stat().st_size}}
    lineage = dict(lineage)
    lineage.setdefault("training_data", {"train": describe_frame(train)})
    classes = getattr(model, "classes_", None)
    card = build_card(spec=spec, model=model, X_train=X_train, classes=classes, files=files, metrics=metrics,
                      parity=parity, examples=_examples(spec, model_bytes, X_train, names), lineage=lineage,
                      onnx_names=names)
    write_card(out_dir, card)
    metrics = json.dumps(card["metrics"], indent=1, sort_keys=True)
    write_atomically(out_dir / "metrics.json", metrics, MODEL_FILE_MODE)
    if report_html is not None:
        write_atomically(out_dir / "report.html", report_html.encode(), MODEL_FILE_MODE)
    return ExportResult(out_dir, parity, card)


def attach_reference_profile(folder: Path, profile: dict, policy: dict) -> dict:
    """Save a model's reference profile in its folder and name it, with the drift policy, in the card.

    Writes ``reference_profile.json`` and rewrites ``model_card.json`` (and ``.md``) with a ``monitoring`` entry
    and the profile among its ``files``, so the registry keeps the profile with the model and a reader can check it.

    Args:
        folder: a model folder written by ``export_model``.
        profile: the reference profile (``ReferenceProfile.to_dict()``).
        policy: the drift policy (``DriftPolicy.model_dump()``).

    Returns:
        The updated card.
    """
    folder = Path(folder)
    path = folder / PROFILE_FILE
    write_atomically(path, json.dumps(profile, sort_keys=True).encode(), MODEL_FILE_MODE)
    card = json.loads((folder / "model_card.json").read_text())
    card["files"][PROFILE_FILE] = {"sha256": sha256_of_file(path), "size": path.stat().st_size}
    card["monitoring"] = monitoring_entry(policy)
    write_card(folder, card)
    return card


def write_card(folder: Path, card: dict) -> None:
    """Write ``model_card.json`` and ``model_card.md`` into ``folder``."""
    write_atomically(folder / "model_card.json", json.dumps(card, indent=1, sort_keys=True), MODEL_FILE_MODE)
    write_atomically(folder / "model_card.md", render_markdown(card).encode(), MODEL_FILE_MODE)
