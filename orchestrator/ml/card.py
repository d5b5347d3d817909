"""The model card: input and output schema, reference statistics, metrics, parity, lineage, versions.

Follows the model folder contract shared with the inference server (datatypes named as in the Open Inference
Protocol; readers tolerate unknown keys). Each input is named by its column in the data (``name``) and by its ONNX
input (``onnx_name``); a card written before columns could have any name has no ``onnx_name``, and its readers
take ``name`` for both.
"""

from __future__ import annotations

import datetime as dt
from importlib import metadata

import numpy as np
import pandas as pd

from orchestrator.ml.spec import ModelSpec
from orchestrator.ml.tune import _jsonable

QUANTILES = [round(q, 2) for q in np.linspace(0, 1, 11)]
HISTOGRAM_BINS = 10
MAX_ALLOWED_CATEGORIES = 1000
LIBRARIES = ("scikit-learn", "skl2onnx", "onnx", "onnxruntime", "numpy", "pandas")
# The model folder's reference profile (``ReferenceProfile.to_dict()``), named by the card's ``monitoring`` entry.
PROFILE_FILE = "reference_profile.json"


def library_versions() -> dict[str, str]:
    """Versions of the libraries that trained, converted and checked the model."""
    return {name: metadata.version(name) for name in LIBRARIES}


def _float(value) -> float | None:
    value = float(value)
    return None if np.isnan(value) else value


def input_schema(spec: ModelSpec, X_train: pd.DataFrame, onnx_names: dict[str, str] | None = None) -> list[dict]:
    """One entry per ONNX input: numeric FP32 with the range seen in training, categorical BYTES with its values.

    Args:
        spec: the model section.
        X_train: the coerced training features.
        onnx_names: ``{column: ONNX input name}``; default: the columns' own names.
    """
    onnx_names = onnx_names or {}
    schema = []
    for name in spec.features.numeric:
        values = X_train[name].to_numpy(dtype=np.float64)
        seen = values[~np.isnan(values)]
        schema.append({
            "name": name, "onnx_name": onnx_names.get(name, name), "datatype": "FP32",
            # Missing numbers are imputed inside the graph: NaN is a valid input.
            "nullable": spec.preprocessing.numeric_impute != "none" or bool(np.isnan(values).any()),
            "min": _float(seen.min()) if seen.size else None,
            "max": _float(seen.max()) if seen.size else None,
            "shape": [-1, 1],
        })
    for name in spec.features.categorical:
        categories = sorted(set(X_train[name]))
        schema.append({
            "name": name, "onnx_name": onnx_names.get(name, name), "datatype": "BYTES", "nullable": False,
            "shape": [-1, 1],
            "allowed": categories[:MAX_ALLOWED_CATEGORIES],
            # A client sends this string for a missing category: the graph was trained on it.
            "missing_value": spec.preprocessing.missing_category,
        })
    return schema


def output_schema(spec: ModelSpec, classes) -> list[dict]:
    """The ONNX outputs, per the model folder contract."""
    if spec.task == "regression":
        return [{"name": "variable", "datatype": "FP32", "shape": [-1, 1]}]
    label_type = "BYTES" if np.asarray(classes).dtype.kind in "OUS" else "INT64"
    return [
        {"name": "label", "datatype": label_type, "shape": [-1]},
        {"name": "probabilities", "datatype": "FP32", "shape": [-1, len(classes)]},
    ]


def reference_stats(spec: ModelSpec, X_train: pd.DataFrame) -> dict:
    """Per-feature statistics of the training data, the reference for drift detection."""
    stats = {}
    for name in spec.features.numeric:
        values = X_train[name].to_numpy(dtype=np.float64)
        seen = values[~np.isnan(values)]
        entry = {"kind": "numeric", "count": int(seen.size), "missing": int(values.size - seen.size)}
        if seen.size:
            counts, edges = np.histogram(seen, bins=HISTOGRAM_BINS)
            entry.update({
                "mean": float(seen.mean()), "std": float(seen.std()),
                "quantiles": {str(q): float(v) for q, v in zip(QUANTILES, np.quantile(seen, QUANTILES))},
                "histogram": {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]},
            })
        stats[name] = entry
    for name in spec.features.categorical:
        frequencies = X_train[name].value_counts(normalize=True)
        stats[name] = {"kind": "categorical", "count": int(len(X_train)),
                       "frequencies": {str(k): float(v) for k, v in frequencies.items()}}
    return stats


def monitoring_entry(policy: dict, profile_file: str = PROFILE_FILE) -> dict:
    """The card's ``monitoring`` entry: where the reference profile is in the model folder, and the drift policy
    (the pipeline file's ``monitoring:`` section) a check of this model applies."""
    return {"profile": profile_file, "policy": _jsonable(policy)}


def estimator_description(spec: ModelSpec, model) -> dict:
    """The estimator class and its parameters (JSON-able), for comparing versions."""
    estimator = model.steps[-1][1]
    return {"class": spec.estimator, "params": _jsonable(estimator.get_params(deep=False))}


def build_card(*, spec: ModelSpec, model, X_train: pd.DataFrame, classes, files: dict, metrics: dict,
               parity: dict, examples: dict, lineage: dict, onnx_names: dict[str, str] | None = None) -> dict:
    """Assemble the model card dictionary (``version`` is set by the registry when it publishes the folder).

    ``onnx_names`` maps each feature column to its ONNX input name (``onnx_export.input_names``).
    """
    card = {
        "name": spec.name,
        "version": None,
        "task": spec.task,
        "target": spec.target,
        "inputs": input_schema(spec, X_train, onnx_names),
        "outputs": output_schema(spec, classes),
        "files": files,
        "metrics": metrics,
        "parity": parity,
        "examples": examples,
        "reference_stats": reference_stats(spec, X_train),
        "estimator": estimator_description(spec, model),
        "preprocessing": spec.preprocessing.model_dump(),
        "lineage": lineage,
        "library_versions": library_versions(),
        "created_at": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if spec.task == "classification":
        card["classes"] = [c.item() if isinstance(c, np.generic) else c for c in classes]
    return _jsonable(card)


def _headline_metrics(metrics: dict) -> list[tuple[str, float, float | None]]:
    baseline = metrics.get("baseline", {})
    keys = ("roc_auc", "pr_auc", "f1", "accuracy", "log_loss", "rmse", "mae", "r2")
    return [(k, metrics[k], baseline.get(k)) for k in keys if isinstance(metrics.get(k), (int, float))]


def _cell(text: str) -> str:
    """Text for a Markdown table cell: a column may be called ``a|b``."""
    return str(text).replace("|", "\\|")


def render_markdown(card: dict) -> str:
    """The card for humans."""
    version = card.get("version")
    lines = [f"# {card['name']}" + (f" v{version}" if version else ""), "",
             f"{card['task'].capitalize()} of `{card.get('target', '?')}` with `{card['estimator']['class']}`, "
             f"created {card['created_at']}.", "", "## Inputs", "",
             "| name | ONNX input | type | nullable | seen in training |", "|---|---|---|---|---|"]
    for item in card["inputs"]:
        if item["datatype"] == "FP32":
            seen = f"{item['min']} .. {item['max']}"
        else:
            allowed = item.get("allowed", [])
            seen = ", ".join(map(str, allowed[:10])) + (f" (+{len(allowed) - 10} more)" if len(allowed) > 10 else "")
        name, onnx_name = _cell(item["name"]), item.get("onnx_name", item["name"])
        lines.append(f"| {name} | {onnx_name} | {item['datatype']} | {item['nullable']} | {_cell(seen)} |")
    lines += ["", "## Outputs", ""]
    lines += [f"- `{o['name']}`: {o['datatype']} {o['shape']}" for o in card["outputs"]]
    if "classes" in card:
        lines.append(f"- classes: {card['classes']}")
    lines += ["", "## Metrics (test partition)", "", "| metric | model | baseline |", "|---|---|---|"]
    for key, value, base in _headline_metrics(card.get("metrics", {})):
        lines.append(f"| {key} | {value:.4f} | {'' if base is None else f'{base:.4f}'} |")
    parity = card.get("parity", {})
    lines += ["", "## ONNX parity", "",
              f"{'passed' if parity.get('passed') else 'FAILED'} on {parity.get('rows')} test rows: "
              f"{parity.get('label_mismatches', 0)} label mismatches, max |difference| "
              f"{parity.get('max_abs_diff')} (tolerance {parity.get('tolerance')}).", "",
              "## Estimator parameters", ""]
    lines += [f"- {k}: `{v}`" for k, v in sorted(card["estimator"]["params"].items())]
    lines += ["", "## Lineage", ""]
    lineage = card.get("lineage", {})
    for key, value in lineage.items():
        if key != "training_data":
            lines.append(f"- {key}: `{value}`")
    for part, info in lineage.get("training_data", {}).items():
        lines.append(f"- {part}: {info.get('rows')} rows, fingerprint `{info.get('fingerprint')}`")
    monitoring = card.get("monitoring")
    if monitoring:
        policy = monitoring.get("policy", {})
        share = policy.get("drift_share")
        share = f"{share:.0%}" if isinstance(share, (int, float)) else str(share)
        lines += ["", "## Monitoring", "",
                  f"- reference profile: `{monitoring.get('profile')}` (train partition; outputs on validation)",
                  (f"- drift policy: windows of at least {policy.get('min_rows')} rows; drifted when {share} of the "
                   f"features drift, or any of the {policy.get('top_features')} most important, or the predictions")]
    lines += ["", "## Library versions", ""]
    lines += [f"- {k} {v}" for k, v in card["library_versions"].items()]
    lines += ["", "## Files", ""]
    lines += [f"- {name}: {meta['size']} bytes, sha256 `{meta['sha256']}`" for name, meta in card["files"].items()]
    return "\n".join(lines) + "\n"
