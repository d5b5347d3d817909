"""The register kind: add the exported model to the registry; an identical model registers nothing new."""

from __future__ import annotations

from orchestrator.pipeline.context import StageContext
from orchestrator.pipeline.kinds.export import MODEL_DIR
from orchestrator.pipeline.kinds.model import has_model, ml_code_version, model_config
from orchestrator.pipeline.stage_kinds import Reads, StageKind, Writes, register_stage_kind


def register(ctx: StageContext) -> dict:
    """Add the exported model to the registry; an identical model registers nothing new."""
    from orchestrator.registry.models import ModelRegistry

    version, created = ModelRegistry(ctx.store).register(ctx.inputs["export"] / MODEL_DIR, ctx.spec.model.name)
    return {"model": ctx.spec.model.name, "version": version, "created": created}


KIND = register_stage_kind(StageKind(
    name="register",
    run=register,
    reads=Reads(outputs=("export",)),
    writes=Writes(record=("model", "version", "created")),
    # Always asks the registry: the registry, not the cache, knows whether this model is already there.
    cached=False,
    config=model_config,
    code=ml_code_version,
    present=has_model,
))
