"""The model registry on any ArtifactStore.

Layout (the model folder contract): ``models/<name>/<version>/`` is a dataset (files + ``_manifest.json``),
immutable once published; ``models/<name>/stages.json`` maps stages to versions and keeps the promotion history:
``{"production": 3, "staging": 4, "history": [{"stage": ..., "version": ..., "previous": ..., "at": ...}]}``.

References: ``name`` (the production version if one is promoted, else the newest), ``name:3``, ``name@staging``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from orchestrator.artifacts.store import MANIFEST, ArtifactStore, sha256_of_file
from orchestrator.errors import ArtifactError, ArtifactNotFound, DataopsError
from orchestrator.ml.onnx_export import write_card

PREFIX = "models"
STAGES = ("production", "staging")
CARD = "model_card.json"
_REF = re.compile(r"^(?P<name>[a-z0-9][a-z0-9_.-]*)(?::(?P<version>\d+)|@(?P<stage>[a-z]+))?$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


class InvalidModelRef(DataopsError):
    """A model reference is not ``NAME``, ``NAME:VERSION`` or ``NAME@STAGE``."""

    exit_code = 2


@dataclass(frozen=True)
class ModelRef:
    """A parsed model reference."""

    name: str
    version: int | None = None
    stage: str | None = None

    @classmethod
    def parse(cls, ref: str) -> "ModelRef":
        """Parse ``name``, ``name:VERSION`` or ``name@STAGE``.

        Raises:
            InvalidModelRef: anything else.
        """
        match = _REF.match(ref.strip())
        if not match:
            raise InvalidModelRef(f"invalid model reference {ref!r}: expected NAME, NAME:VERSION or NAME@STAGE")
        stage = match["stage"]
        if stage is not None and stage not in STAGES:
            raise InvalidModelRef(f"unknown stage {stage!r} in {ref!r}: expected one of {', '.join(STAGES)}")
        return cls(match["name"], int(match["version"]) if match["version"] else None, stage)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _identity(card: dict) -> tuple:
    """What makes two registrations the same model: the ONNX bytes and the data it was trained on."""
    training = card.get("lineage", {}).get("training_data", {})
    fingerprints = tuple(sorted((part, info.get("fingerprint")) for part, info in training.items()))
    return card["files"]["model.onnx"]["sha256"], fingerprints


class ModelRegistry:
    """Versioned, immutable model folders with stages, in an ArtifactStore."""

    def __init__(self, store: ArtifactStore):
        self.store = store

    # ---- reading -------------------------------------------------------------------------------------------
    def names(self) -> list[str]:
        """Every registered model name."""
        found = set()
        for key in self.store.list(PREFIX):
            parts = key.split("/")
            if len(parts) >= 3:
                found.add(parts[1])
        return sorted(found)

    def versions(self, name: str) -> list[int]:
        """Published versions of ``name`` (those with a manifest), ascending."""
        versions = set()
        for key in self.store.list(f"{PREFIX}/{name}/"):
            parts = key.split("/")
            if len(parts) == 4 and parts[3] == MANIFEST and parts[2].isdigit():
                versions.add(int(parts[2]))
        return sorted(versions)

    def stages(self, name: str) -> dict:
        """The stages document of ``name`` (empty history when nothing was promoted)."""
        key = f"{PREFIX}/{name}/stages.json"
        if not self.store.exists(key):
            return {"history": []}
        return json.loads(self.store.get_bytes(key))

    def resolve(self, ref: str) -> tuple[str, int]:
        """Turn a reference into (name, version).

        Raises:
            ArtifactNotFound: no such model, version or promoted stage.
        """
        parsed = ModelRef.parse(ref)
        versions = self.versions(parsed.name)
        if not versions:
            known = ", ".join(self.names()) or "none"
            raise ArtifactNotFound(f"no model {parsed.name!r} in {self.store.uri} (registered: {known})")
        if parsed.version is not None:
            if parsed.version not in versions:
                raise ArtifactNotFound(f"model {parsed.name!r} has no version {parsed.version} (versions: {versions})")
            return parsed.name, parsed.version
        stages = self.stages(parsed.name)
        if parsed.stage is not None:
            if stages.get(parsed.stage) is None:
                raise ArtifactNotFound(f"model {parsed.name!r} has no version promoted to {parsed.stage}")
            return parsed.name, int(stages[parsed.stage])
        if stages.get("production") is not None:
            return parsed.name, int(stages["production"])
        return parsed.name, versions[-1]

    def folder(self, ref: str, verify: bool = True) -> Path:
        """A local folder with the model's files (checked against the manifest when ``verify``)."""
        name, version = self.resolve(ref)
        return self.store.dataset_path(f"{PREFIX}/{name}/{version}", verify=verify)

    def card(self, ref: str) -> dict:
        """The model card of a reference, with its stages added under ``stages``."""
        name, version = self.resolve(ref)
        card = json.loads((self.store.dataset_path(f"{PREFIX}/{name}/{version}") / CARD).read_text())
        stages = self.stages(name)
        card["stages"] = [s for s in STAGES if stages.get(s) == version]
        return card

    def list(self) -> list[dict]:
        """One row per version: name, version, stages, created_at, headline metrics, parity."""
        rows = []
        for name in self.names():
            stages = self.stages(name)
            for version in self.versions(name):
                card = json.loads((self.store.dataset_path(f"{PREFIX}/{name}/{version}") / CARD).read_text())
                metrics = card.get("metrics", {})
                rows.append({
                    "name": name, "version": version,
                    "stages": [s for s in STAGES if stages.get(s) == version],
                    "task": card.get("task"), "estimator": card.get("estimator", {}).get("class"),
                    "created_at": card.get("created_at"),
                    "metrics": {k: metrics[k] for k in ("roc_auc", "accuracy", "f1", "rmse", "r2") if k in metrics},
                    "parity_passed": card.get("parity", {}).get("passed"),
                })
        return rows

    # ---- writing -------------------------------------------------------------------------------------------
    def register(self, folder: Path, name: str) -> tuple[int, bool]:
        """Publish a model folder as the next version of ``name``.

        An identical model (same ``model.onnx`` sha256 and training data fingerprints) as an existing version
        registers nothing and returns that version.

        Returns:
            (version, created).

        Raises:
            ArtifactError: the folder is not a model folder, or its card does not match its model.onnx.
        """
        if not _NAME.match(name):
            raise ArtifactError(f"invalid model name {name!r}: lowercase letters, digits, '.', '_' and '-'")
        folder = Path(folder)
        card_path = folder / CARD
        if not (folder / "model.onnx").is_file() or not card_path.is_file():
            raise ArtifactError(f"{folder} is not a model folder: model.onnx and {CARD} are required")
        card = json.loads(card_path.read_text())
        actual = sha256_of_file(folder / "model.onnx")
        if card.get("files", {}).get("model.onnx", {}).get("sha256") != actual:
            raise ArtifactError(f"{card_path} does not describe {folder / 'model.onnx'} (sha256 {actual})")
        identity = _identity(card)
        versions = self.versions(name)
        for version in reversed(versions):
            existing = json.loads((self.store.dataset_path(f"{PREFIX}/{name}/{version}") / CARD).read_text())
            if _identity(existing) == identity:
                return version, False

        version = (versions[-1] if versions else 0) + 1
        while True:
            key = f"{PREFIX}/{name}/{version}"
            if self.store.exists(key):  # published meanwhile by another run: versions are never overwritten
                version += 1
                continue
            staged = self.store.scratch_dir()
            try:
                shutil.copytree(folder, staged, dirs_exist_ok=True)
                (staged / MANIFEST).unlink(missing_ok=True)
                write_card(staged, {**card, "name": name, "version": version, "registered_at": _now()})
                self.store.put_dataset(key, staged)
            finally:
                shutil.rmtree(staged, ignore_errors=True)
            published = json.loads((self.store.dataset_path(key) / CARD).read_text())
            if _identity(published) == identity:
                return version, True
            version += 1  # lost a race for this number; try the next

    def promote(self, ref: str, stage: str) -> dict:
        """Point ``stage`` at the referenced version, recording the previous one in the history.

        Returns:
            The new stages document.
        """
        if stage not in STAGES:
            raise InvalidModelRef(f"unknown stage {stage!r}: expected one of {', '.join(STAGES)}")
        name, version = self.resolve(ref)
        stages = self.stages(name)
        previous = stages.get(stage)
        stages[stage] = version
        stages.setdefault("history", []).append(
            {"stage": stage, "version": version, "previous": previous, "at": _now(), "action": "promote"}
        )
        self._save_stages(name, stages)
        return stages

    def rollback(self, name: str, stage: str = "production") -> dict:
        """Put ``stage`` back on the version it had before its last promotion.

        Raises:
            ArtifactNotFound: nothing to roll back to.
        """
        name = ModelRef.parse(name).name
        stages = self.stages(name)
        current = stages.get(stage)
        # Replay the history as a stack: a promotion pushes, a rollback pops; the target is the one below the top.
        stack: list[int] = []
        for entry in stages.get("history", []):
            if entry["stage"] != stage:
                continue
            if entry.get("action", "promote") == "rollback":
                if stack:
                    stack.pop()
            elif not stack or stack[-1] != entry["version"]:
                stack.append(entry["version"])
        if len(stack) < 2:
            raise ArtifactNotFound(f"model {name!r}: no earlier {stage} version to roll back to")
        target = stack[-2]
        stages[stage] = target
        stages["history"].append(
            {"stage": stage, "version": target, "previous": current, "at": _now(), "action": "rollback"}
        )
        self._save_stages(name, stages)
        return stages

    def _save_stages(self, name: str, stages: dict) -> None:
        self.store.put_bytes(f"{PREFIX}/{name}/stages.json", json.dumps(stages, indent=1, sort_keys=True).encode())


def resolve_model_ref(store: ArtifactStore, ref: str) -> Path:
    """``name``, ``name:3`` or ``name@production`` -> a local folder with the model files, checked."""
    return ModelRegistry(store).folder(ref, verify=True)


def compare_cards(left: dict, right: dict) -> dict:
    """What differs between two model versions: metrics (with deltas), estimator parameters, data, parity."""
    def numbers(card):
        return {k: v for k, v in card.get("metrics", {}).items() if isinstance(v, (int, float)) and k != "rows"}

    lm, rm = numbers(left), numbers(right)
    metrics = {k: {"left": lm.get(k), "right": rm.get(k),
                   "delta": (rm[k] - lm[k]) if k in lm and k in rm else None} for k in sorted(set(lm) | set(rm))}
    lp = left.get("estimator", {}).get("params", {})
    rp = right.get("estimator", {}).get("params", {})
    params = {k: {"left": lp.get(k), "right": rp.get(k)} for k in sorted(set(lp) | set(rp)) if lp.get(k) != rp.get(k)}
    if left.get("estimator", {}).get("class") != right.get("estimator", {}).get("class"):
        params["class"] = {"left": left["estimator"].get("class"), "right": right["estimator"].get("class")}
    ld = left.get("lineage", {}).get("training_data", {})
    rd = right.get("lineage", {}).get("training_data", {})
    return {
        "left": f"{left['name']}:{left.get('version')}", "right": f"{right['name']}:{right.get('version')}",
        "metrics": metrics, "params": params,
        "same_training_data": ld == rd,
        "parity": {"left": left.get("parity", {}).get("passed"), "right": right.get("parity", {}).get("passed")},
    }
