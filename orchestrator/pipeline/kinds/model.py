"""What every model stage shares: the file's ``model`` section as its configuration, the ML libraries' versions as
its code, and its presence only when the file declares a model."""

from __future__ import annotations

from importlib import metadata

from orchestrator.pipeline.stage_kinds import StageSite

# Results of training and export depend on these libraries' versions.
_ML_LIBRARIES = ("scikit-learn", "skl2onnx", "onnx", "onnxruntime", "numpy")


def has_model(site: StageSite) -> bool:
    return site.spec.model is not None


def model_config(site: StageSite) -> dict:
    return site.spec.model.model_dump(mode="json")


def ml_code_version(site: StageSite) -> str:
    return ",".join(f"{name}={_version(name)}" for name in _ML_LIBRARIES)


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"
