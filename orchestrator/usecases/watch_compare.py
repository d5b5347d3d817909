"""Champion against challenger on one fresh holdout: the test partition of the retrain that made the challenger.

The split window puts the most recent labelled rows in that partition, so neither model trained on them (the
champion was trained earlier, the challenger held them out). The challenger's metrics are those its evaluate stage
recorded on them; the champion is scored on the very same rows by its ONNX graph through onnxruntime, loaded and
checked as the inference server loads it, with the evaluate stage's own metric code. The challenger must also have
passed ONNX parity (its card) and reproduce its card's examples when loaded as the server would load it (the smoke
test); :func:`orchestrator.loop.compare.compare_by_rule` then decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from orchestrator.artifacts.lineage import load_record
from orchestrator.artifacts.store import ArtifactStore
from orchestrator.errors import ArtifactNotFound, DataopsError
from orchestrator.loop.compare import Comparison, compare_by_rule
from orchestrator.ml.evaluate import holdout_metrics
from orchestrator.ml.features import coerce_features, coerce_target
from orchestrator.ml.spec import ModelSpec
from orchestrator.monitoring.policy import DriftPolicy
from orchestrator.registry.models import ModelRegistry
from orchestrator.serving.errors import ModelLoadError
from orchestrator.serving.model import LoadedModel, load_model_folder
from orchestrator.serving.selfcheck import verify_card_examples

SPLIT, TEST = "split", "test"


@dataclass(frozen=True)
class Holdout:
    """The rows both models are scored on, and what they are (for the comparison's record)."""

    rows: pd.DataFrame
    description: dict


@dataclass(frozen=True)
class SmokeTest:
    """Whether a model folder loads as the server loads it and reproduces its card's examples."""

    passed: bool
    examples: int = 0
    reason: str = ""


def run_holdout(store: ArtifactStore, record: dict) -> Holdout:
    """The test partition of a run, with the run, its time boundaries and its fingerprint.

    Raises:
        ArtifactNotFound: the run records no split output, or its partitions are no longer in the store.
    """
    outputs = record.get("stages", {}).get(SPLIT, {}).get("outputs") or []
    if not outputs:
        raise ArtifactNotFound(f"run {record['run_id']} records no output of its {SPLIT!r} stage: it has no holdout")
    key = outputs[0]["key"]
    folder = store.dataset_path(key)
    if not (folder / TEST).exists():
        raise ArtifactNotFound(f"run {record['run_id']}'s {TEST} partition is not in {store.uri} ({key})")
    rows = pd.read_parquet(folder / TEST)
    split = record.get("parameters", {}).get("split", {})
    partition = record["stages"][SPLIT].get("partitions", {}).get(TEST, {})
    return Holdout(rows, {"run_id": record["run_id"], "partition": TEST, "key": key, "rows": int(len(rows)),
                          "fingerprint": partition.get("fingerprint"), "as_of": record["parameters"].get("as_of"),
                          "from": split.get("boundaries", {}).get("validation"),
                          "until": split.get("boundaries", {}).get(TEST)})


def smoke_test(folder: Path) -> SmokeTest:
    """Load a model folder as the inference server does (checksum, card against graph) and score its card's
    examples: what a server or a deploy refuses, the comparison refuses first."""
    try:
        model = load_model_folder(folder)
        return SmokeTest(True, verify_card_examples(model))
    except ModelLoadError as exc:
        return SmokeTest(False, reason=str(exc))


def _feeds(model: LoadedModel, features: pd.DataFrame) -> dict[str, np.ndarray]:
    feeds = {}
    for spec in model.card.inputs:
        if spec.column not in features.columns:
            raise DataopsError(f"the holdout has no column {spec.column!r}, an input of {model.name}:{model.version}")
        column = features[spec.column]
        feeds[spec.name] = (column.to_numpy(dtype=np.float32) if spec.datatype == "FP32"
                            else column.astype(str).to_numpy(dtype=object)).reshape(-1, 1)
    return feeds


def onnx_metrics(folder: Path, spec: ModelSpec, rows: pd.DataFrame) -> dict:
    """A registered model's metrics on ``rows``, scored by its ONNX graph as the server would score them.

    Args:
        folder: The model folder.
        spec: The pipeline's model section (its features and target say how the rows are read).
        rows: The holdout.

    Returns:
        ``rows`` and the metrics the evaluate stage writes (roc_auc, accuracy, ... or rmse, mae, r2).

    Raises:
        ModelLoadError: the folder cannot be loaded.
        DataopsError: the rows lack an input of the model.
    """
    model = load_model_folder(folder)
    features = coerce_features(spec, rows)
    outputs = model.run(_feeds(model, features))
    y = coerce_target(spec, rows)
    if spec.task == "regression":
        return holdout_metrics("regression", y, outputs["variable"].reshape(-1).astype(np.float64))
    classes = np.asarray(model.card.classes if model.card.classes is not None else model.card.raw["classes"])
    labels = np.asarray(outputs["label"]).reshape(-1)
    if classes.dtype.kind in "OUS":
        labels = labels.astype(str).astype(object)
    proba = np.asarray(outputs["probabilities"], dtype=np.float64)
    # float32 rows sum to 1 within float32's precision only; log loss wants them to sum to 1 (ranks are unchanged).
    proba = proba / proba.sum(axis=1, keepdims=True)
    return holdout_metrics("classification", y, labels, proba, classes)


def champion_trained_until(store: ArtifactStore, card: dict) -> str | None:
    """The end of the period the champion learnt from (its run's validation boundary), if its run is kept."""
    run_id = card.get("lineage", {}).get("run_id")
    try:
        record = load_record(store, run_id) if run_id else None
    except ArtifactNotFound:
        return None
    # Train rows come before the train boundary, validation rows (early stopping, tuning) before this one.
    return ((record or {}).get("parameters", {}).get("split", {}).get("boundaries") or {}).get("validation")


def compare_on_holdout(store: ArtifactStore, policy: DriftPolicy, spec: ModelSpec, champion: str, challenger: str,
                       record: dict) -> Comparison:
    """Hold ``challenger`` (made by the run ``record``) against ``champion`` on that run's test partition.

    Args:
        store: The store holding the registry and the run.
        policy: The pipeline's ``monitoring:`` (its ``retrain.challenger`` rule).
        spec: The pipeline's model section.
        champion: The version serving, ``name:version``.
        challenger: The version the retrain registered.
        record: The retrain's run record.

    Returns:
        The comparison, not yet recorded.
    """
    registry = ModelRegistry(store)
    holdout = run_holdout(store, record)
    champion_card = registry.card(champion)
    description = {**holdout.description, "champion_trained_until": champion_trained_until(store, champion_card)}
    try:
        champion_metrics = onnx_metrics(registry.folder(champion), spec, holdout.rows)
    except (ModelLoadError, DataopsError) as exc:
        # The comparison keeps the champion then (its metric is unusable), and says why.
        champion_metrics, description["champion_error"] = {}, str(exc)
    challenger_card = registry.card(challenger)
    smoke = smoke_test(registry.folder(challenger))
    if not smoke.passed:
        description["smoke_error"] = smoke.reason
    classes = challenger_card.get("classes")
    scoring = spec.tuning.scoring if spec.tuning is not None else None
    return compare_by_rule(policy.retrain.challenger, champion_metrics, record.get("metrics") or {}, task=spec.task,
                           classes=len(classes) if classes else None, scoring=scoring,
                           parity_passed=(challenger_card.get("parity") or {}).get("passed"),
                           smoke_passed=smoke.passed, champion=champion, challenger=challenger, holdout=description)
