"""Evaluation on the test partition only: metrics, a naive baseline to beat, and an HTML report with plots."""

from __future__ import annotations

import html
import io
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve
from sklearn.inspection import permutation_importance
from sklearn.metrics import make_scorer

from orchestrator.ml.features import coerce_features, coerce_target, describe_frame
from orchestrator.ml.spec import ModelSpec
from orchestrator.ml.tune import _jsonable

IMPORTANCE_ROWS = 2000
CALIBRATION_BINS = 10


@dataclass
class Evaluation:
    """Metrics (JSON-able, with a ``baseline`` block) and a self-contained HTML report."""

    metrics: dict
    report_html: str


def _classification_metrics(y, proba, labels, classes) -> dict:
    binary = len(classes) == 2
    out = {
        "accuracy": skm.accuracy_score(y, labels),
        "f1": skm.f1_score(y, labels, pos_label=classes[1]) if binary else skm.f1_score(y, labels, average="macro"),
        "log_loss": skm.log_loss(y, proba, labels=classes),
        "confusion_matrix": {"labels": list(classes), "matrix": skm.confusion_matrix(y, labels, labels=classes)},
    }
    present = np.isin(classes, np.unique(y))
    if binary and present.all():
        positive = y == classes[1]
        out["roc_auc"] = skm.roc_auc_score(positive, proba[:, 1])
        out["pr_auc"] = skm.average_precision_score(positive, proba[:, 1])
    elif present.all():
        out["roc_auc"] = skm.roc_auc_score(y, proba, multi_class="ovr", labels=classes)
        out["pr_auc"] = skm.average_precision_score(pd.get_dummies(pd.Categorical(y, categories=classes)), proba)
    return out


def holdout_metrics(task: str, y, labels, proba=None, classes=None) -> dict:
    """The metrics the evaluate stage writes, for predictions made elsewhere (an ONNX graph scoring a holdout).

    Args:
        task: ``classification`` or ``regression``.
        y: The true targets (as ``coerce_target`` gives them).
        labels: The predicted labels (classification) or values (regression).
        proba: Classification: the class probabilities, one column per class of ``classes``.
        classes: Classification: the model's classes, in the order of ``proba``'s columns.

    Returns:
        ``rows`` and the metrics of ``evaluate_model`` (without baseline, calibration or importance), JSON-able.
    """
    result: dict = {"rows": int(len(y))}
    if task == "classification":
        result.update(_classification_metrics(y, proba, labels, np.asarray(classes)))
    else:
        result.update(_regression_metrics(y, labels))
    return _jsonable(result)


def _calibration_table(y, proba, classes) -> list[dict]:
    positive = (y == classes[1]).astype(int)
    bins = np.clip((proba[:, 1] * CALIBRATION_BINS).astype(int), 0, CALIBRATION_BINS - 1)
    table = []
    for b in range(CALIBRATION_BINS):
        mask = bins == b
        if mask.any():
            table.append({"bin": [b / CALIBRATION_BINS, (b + 1) / CALIBRATION_BINS], "count": int(mask.sum()),
                          "mean_predicted": float(proba[mask, 1].mean()),
                          "observed_rate": float(positive[mask].mean())})
    return table


def _regression_metrics(y, predicted) -> dict:
    return {
        "rmse": float(np.sqrt(skm.mean_squared_error(y, predicted))),
        "mae": skm.mean_absolute_error(y, predicted),
        "r2": skm.r2_score(y, predicted),
    }


def _baseline(spec, y, classes, reference_y) -> dict:
    """Majority class (classification) or mean (regression) of ``reference_y``."""
    if spec.task == "regression":
        return {"strategy": "mean", **_regression_metrics(y, np.full(len(y), float(np.mean(reference_y))))}
    values, counts = np.unique(reference_y, return_counts=True)
    majority = values[np.argmax(counts)]
    prior = np.array([np.mean(reference_y == c) for c in classes], dtype=float)
    prior = np.clip(prior, 1e-15, 1)
    proba = np.tile(prior / prior.sum(), (len(y), 1))
    labels = np.full(len(y), majority, dtype=np.asarray(y).dtype)
    out = {"strategy": "majority_class", "majority_class": majority,
           **_classification_metrics(y, proba, labels, classes)}
    out.pop("confusion_matrix", None)
    return out


def evaluate_model(spec: ModelSpec, model, test: pd.DataFrame, train: pd.DataFrame | None = None) -> Evaluation:
    """Score ``model`` on the test partition.

    Args:
        spec: the model section of the pipeline file.
        model: the fitted pipeline from ``fit_model``.
        test: the test partition; nothing else is scored.
        train: optional train partition, only to compute the baseline's majority class / mean; without it the
            baseline uses the test partition's own (which flatters the baseline, never the model).

    Returns:
        Metrics (classification: roc_auc, pr_auc, f1, accuracy, log_loss, confusion matrix, calibration table;
        regression: rmse, mae, r2), a ``baseline`` block with the same metrics, and an HTML report.
    """
    X, y = coerce_features(spec, test), coerce_target(spec, test)
    reference_y = coerce_target(spec, train) if train is not None else y
    result: dict = {"rows": int(len(test)), "data": {"test": describe_frame(test)}}
    if spec.task == "classification":
        classes = np.asarray(model.classes_)
        proba = model.predict_proba(X)
        labels = model.predict(X)
        result.update(_classification_metrics(y, proba, labels, classes))
        if len(classes) == 2:
            result["calibration"] = _calibration_table(y, proba, classes)
    else:
        classes, proba = None, None
        labels = model.predict(X)
        result.update(_regression_metrics(y, labels))
    result["baseline"] = _baseline(spec, y, classes, reference_y)
    importance = _feature_importance(spec, model, X, y)
    result["feature_importance"] = importance
    metrics = _jsonable(result)
    return Evaluation(metrics, render_report(spec, metrics, y, proba, labels, classes))


def _feature_importance(spec, model, X, y) -> dict:
    """Permutation importance of each raw column on (a sample of) the test rows: model-agnostic."""
    if len(X) > IMPORTANCE_ROWS:
        sample = np.random.default_rng(0).choice(len(X), IMPORTANCE_ROWS, replace=False)
        X, y = X.iloc[sample], y[sample]
    scoring = "neg_log_loss" if spec.task == "classification" else "neg_root_mean_squared_error"
    scorer = scoring
    if spec.task == "classification":
        # Log loss over every class the model learnt: the test rows may lack one (a time split's later period),
        # and scikit-learn's own scorer then takes the classes from them and refuses the probabilities.
        scorer = make_scorer(skm.log_loss, greater_is_better=False, response_method="predict_proba",
                             labels=np.asarray(model.classes_))
    found = permutation_importance(model, X, y, scoring=scorer, n_repeats=3, random_state=0, n_jobs=1)
    return {"scoring": scoring,
            "mean": dict(zip(X.columns, map(float, found.importances_mean))),
            "std": dict(zip(X.columns, map(float, found.importances_std)))}


def _svg(fig) -> str:
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def _plots(spec, metrics, y, proba, labels, classes) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")  # no display on workers and servers
    import matplotlib.pyplot as plt

    plots = []
    if spec.task == "classification" and len(classes) == 2 and "roc_auc" in metrics:
        positive = y == classes[1]
        fpr, tpr, _ = skm.roc_curve(positive, proba[:, 1])
        fig, ax = plt.subplots(figsize=(4.5, 4))
        ax.plot(fpr, tpr, label=f"model (AUC {metrics['roc_auc']:.3f})")
        ax.plot([0, 1], [0, 1], "--", color="grey", label="baseline (AUC 0.5)")
        ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC curve")
        ax.legend(loc="lower right")
        plots.append(("ROC curve", _svg(fig)))
        observed, predicted = calibration_curve(positive, proba[:, 1], n_bins=CALIBRATION_BINS)
        fig, ax = plt.subplots(figsize=(4.5, 4))
        ax.plot(predicted, observed, "o-", label="model")
        ax.plot([0, 1], [0, 1], "--", color="grey", label="perfectly calibrated")
        ax.set(xlabel="mean predicted probability", ylabel="observed rate", title="Calibration")
        ax.legend(loc="upper left")
        plots.append(("Calibration", _svg(fig)))
    elif spec.task == "regression":
        fig, ax = plt.subplots(figsize=(4.5, 4))
        ax.scatter(y, labels, s=4, alpha=0.4)
        low, high = float(np.min(y)), float(np.max(y))
        ax.plot([low, high], [low, high], "--", color="grey")
        ax.set(xlabel="actual", ylabel="predicted", title="Predicted vs actual")
        plots.append(("Predicted vs actual", _svg(fig)))
    importance = metrics["feature_importance"]["mean"]
    names = sorted(importance, key=importance.get)
    fig, ax = plt.subplots(figsize=(5, 0.4 * len(names) + 1))
    ax.barh(names, [importance[n] for n in names])
    ax.set(xlabel=f"permutation importance ({metrics['feature_importance']['scoring']})",
           title="Feature importance")
    plots.append(("Feature importance", _svg(fig)))
    return plots


def render_report(spec: ModelSpec, metrics: dict, y, proba, labels, classes) -> str:
    """A self-contained HTML page: metric table against the baseline, then inline SVG plots."""
    keys = [k for k in ("roc_auc", "pr_auc", "f1", "accuracy", "log_loss", "rmse", "mae", "r2") if k in metrics]
    rows = "".join(
        f"<tr><td>{k}</td><td>{metrics[k]:.4f}</td><td>{metrics['baseline'].get(k, float('nan')):.4f}</td></tr>"
        for k in keys
    )
    plots = "".join(f"<figure>{svg}<figcaption>{html.escape(title)}</figcaption></figure>"
                    for title, svg in _plots(spec, metrics, y, proba, labels, classes))
    confusion = ""
    if "confusion_matrix" in metrics:
        cm = metrics["confusion_matrix"]
        head = "".join(f"<th>pred {html.escape(str(c))}</th>" for c in cm["labels"])
        body = "".join(
            f"<tr><th>true {html.escape(str(c))}</th>" + "".join(f"<td>{v}</td>" for v in row) + "</tr>"
            for c, row in zip(cm["labels"], cm["matrix"])
        )
        confusion = f"<h2>Confusion matrix</h2><table><tr><th></th>{head}</tr>{body}</table>"
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(spec.name)}: evaluation</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}figure{display:inline-block;margin:1em}"
        "</style></head><body>"
        f"<h1>{html.escape(spec.name)}: {html.escape(spec.estimator)}</h1>"
        f"<p>{spec.task} on the test partition, {metrics['rows']} rows.</p>"
        f"<h2>Metrics</h2><table><tr><th>metric</th><th>model</th><th>baseline "
        f"({html.escape(metrics['baseline']['strategy'])})</th></tr>{rows}</table>"
        f"{confusion}<h2>Plots</h2>{plots}</body></html>"
    )
