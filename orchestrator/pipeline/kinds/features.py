"""The features kind: derive the model's features on the blended frame."""

from __future__ import annotations

from orchestrator.pipeline.context import DATA, StageContext
from orchestrator.pipeline.stage_kinds import Reads, StageKind, StageSite, register_stage_kind
from orchestrator.pipeline.transforms import apply_steps, code_version


def features(ctx: StageContext) -> dict:
    """Derive the model's features on the blended frame."""
    frame = apply_steps(ctx.output("blend"), ctx.spec.features, ctx.base_dir, "features")
    ctx.data.save({DATA: frame})
    return {"rows_in": ctx.upstream["blend"]["rows_out"], "rows_out": ctx.data.rows(DATA)}


def _config(site: StageSite) -> list[dict]:
    return [step.model_dump(mode="json") for step in site.spec.features]


def _code(site: StageSite) -> str:
    # Feature steps may call user functions: editing one invalidates this stage.
    return code_version(site.spec.features, site.base_dir)


KIND = register_stage_kind(StageKind(
    name="features",
    run=features,
    reads=Reads(outputs=("blend",)),
    config=_config,
    code=_code,
))
