"""A model's reference profile: read it for a drift check, or build it for a model registered before profiles.

Every model exported since profiles exist holds ``reference_profile.json`` in its folder. For an older one,
``dataops drift profile`` rebuilds the same profile from the partitions the model was trained on (the card's run
id -> the run record -> the split stage's output) and stores it beside the model's drift results, at
``monitoring/<model>/<version>/reference_profile.json``: model folders are immutable once registered.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from orchestrator.artifacts.lineage import load_record
from orchestrator.artifacts.open import open_store
from orchestrator.artifacts.store import ArtifactStore
from orchestrator.config import setting
from orchestrator.errors import ArtifactError, ArtifactNotFound
from orchestrator.ml.card import PROFILE_FILE
from orchestrator.monitoring.keys import monitoring_prefix
from orchestrator.monitoring.policy import DriftPolicy
from orchestrator.monitoring.profile import ReferenceProfile
from orchestrator.pipeline.reference_profile import model_reference_profile
from orchestrator.registry.models import ModelRegistry

SPLIT_STAGE = "split"


def profile_key(name: str, version: int) -> str:
    """The store key of a profile built after registration."""
    return f"{monitoring_prefix(name, version)}/{PROFILE_FILE}"


@dataclass(frozen=True)
class BuiltProfile:
    """A profile built by ``build_reference_profile``: for which model, from what, and where it was stored."""

    model: str
    version: int
    key: str
    run_id: str
    train_rows: int
    validation_rows: int
    columns: int


def _profile_in_folder(folder: Path, card: dict) -> Path | None:
    name = (card.get("monitoring") or {}).get("profile") or PROFILE_FILE
    path = folder / name
    return path if path.is_file() else None


def load_reference_profile(store: ArtifactStore, model_ref: str) -> ReferenceProfile:
    """The reference profile of a registered model: from its model folder, else from the store's monitoring area.

    Args:
        store: the store holding the registry.
        model_ref: ``NAME``, ``NAME:VERSION`` or ``NAME@STAGE``.

    Raises:
        ArtifactNotFound: no such model, or the model has no reference profile (the message names the command
            that builds one).
    """
    registry = ModelRegistry(store)
    name, version = registry.resolve(model_ref)
    card = registry.card(f"{name}:{version}")
    path = _profile_in_folder(registry.folder(f"{name}:{version}"), card)
    if path is not None:
        return ReferenceProfile.from_dict(json.loads(path.read_text()))
    key = profile_key(name, version)
    if store.exists(key):
        return ReferenceProfile.from_dict(json.loads(store.get_bytes(key)))
    raise ArtifactNotFound(f"model {name}:{version} has no reference profile: build one with "
                           f"`dataops drift profile {name}:{version}`")


def load_drift_policy(store: ArtifactStore, model_ref: str) -> DriftPolicy:
    """The drift policy saved in the model's card (the pipeline file's ``monitoring:``), else the defaults."""
    card = ModelRegistry(store).card(model_ref)
    policy = (card.get("monitoring") or {}).get("policy")
    return DriftPolicy.model_validate(policy) if policy else DriftPolicy()


def _split_output(store: ArtifactStore, name: str, version: int, card: dict) -> tuple[str, dict]:
    """The run that trained the model, and the key of its split stage's output."""
    run_id = card.get("lineage", {}).get("run_id")
    if not run_id:
        raise ArtifactNotFound(f"model {name}:{version} names no run in its card's lineage: its training partition "
                               f"cannot be found, so no reference profile can be built")
    record = load_record(store, run_id)
    outputs = record.get("stages", {}).get(SPLIT_STAGE, {}).get("outputs") or []
    if not outputs:
        raise ArtifactNotFound(f"run {run_id} (which trained {name}:{version}) records no output of its "
                               f"{SPLIT_STAGE!r} stage in {store.uri}")
    key = outputs[0]["key"]
    if not store.exists(key):
        raise ArtifactNotFound(f"the partitions of run {run_id} (which trained {name}:{version}) are no longer in "
                               f"{store.uri}: {key} is missing")
    return key, record


def _partition(folder: Path, part: str, expected: int | None, what: str):
    import dask.dataframe as dd

    rows = dd.read_parquet(folder / part).compute()
    if expected is not None and len(rows) != expected:
        raise ArtifactError(f"the {part} partition at {folder} has {len(rows)} rows, but {what} was trained on "
                            f"{expected}: it is not the model's {part} partition")
    return rows


def build_reference_profile(store: ArtifactStore, model_ref: str) -> BuiltProfile:
    """Build a registered model's reference profile from its training run's partitions and store it.

    The features' reference is the train partition, the outputs' the validation partition scored by the model's
    ONNX graph, exactly as the export stage builds it. The profile is stored at
    ``monitoring/<model>/<version>/reference_profile.json`` (replacing an earlier one there).

    Raises:
        ArtifactNotFound: no such model, or its run or partitions are gone from the store.
        ArtifactError: the partitions found are not those the model was trained on.
    """
    registry = ModelRegistry(store)
    name, version = registry.resolve(model_ref)
    ref = f"{name}:{version}"
    card = registry.card(ref)
    split_key, record = _split_output(store, name, version, card)
    folder = store.dataset_path(split_key, verify=True)
    training = card.get("lineage", {}).get("training_data", {})
    train = _partition(folder, "train", training.get("train", {}).get("rows"), ref)
    validation = _partition(folder, "validation", training.get("validation", {}).get("rows"), ref)
    importance = card.get("metrics", {}).get("feature_importance", {}).get("mean", {})
    profile = model_reference_profile(card, registry.folder(ref), train, validation, importance)
    key = profile_key(name, version)
    store.put_bytes(key, json.dumps(profile.to_dict(), sort_keys=True).encode())
    return BuiltProfile(name, version, key, record["run_id"], len(train), len(validation), len(profile.columns))


def has_profile_in_folder(store: ArtifactStore, model_ref: str) -> bool:
    """Whether the model's own folder holds its reference profile (it was exported with one)."""
    registry = ModelRegistry(store)
    name, version = registry.resolve(model_ref)
    return _profile_in_folder(registry.folder(f"{name}:{version}"), registry.card(f"{name}:{version}")) is not None


def build_profile_command(model_ref: str, store: str | None = None) -> BuiltProfile | None:
    """``dataops drift profile``: build and store the profile of a model that has none in its folder.

    Returns:
        What was built, or None when the model's folder already holds its profile (nothing to build).
    """
    target = open_store(setting("store", store))
    if has_profile_in_folder(target, model_ref):
        return None
    return build_reference_profile(target, model_ref)
