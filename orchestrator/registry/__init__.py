"""The model registry: immutable, versioned model folders in an ArtifactStore, with stages."""

from orchestrator.registry.models import ModelRegistry, resolve_model_ref

__all__ = ["ModelRegistry", "resolve_model_ref"]
