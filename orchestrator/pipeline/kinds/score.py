"""The score kind: score the serve partition with the exported ONNX model, partition by partition on the cluster."""

from __future__ import annotations

from orchestrator.pipeline.context import StageContext
from orchestrator.pipeline.kinds.export import MODEL_DIR
from orchestrator.pipeline.kinds.model import has_model, ml_code_version, model_config
from orchestrator.pipeline.stage_kinds import Reads, StageKind, StageSite, register_stage_kind


def score(ctx: StageContext) -> dict:
    """Score the serve partition with the exported ONNX model, partition by partition on the cluster."""
    from orchestrator.ml.score import score_dataframe

    serve = ctx.partitions.frame("serve")
    scored = score_dataframe(ctx.inputs["export"] / MODEL_DIR, serve)
    ctx.data.save({"predictions": scored})
    return {"rows_in": ctx.partitions.reads["serve"]["rows"], "rows_out": ctx.data.rows("predictions")}


def _present(site: StageSite) -> bool:
    return has_model(site) and site.spec.score_serve


KIND = register_stage_kind(StageKind(
    name="score",
    run=score,
    reads=Reads(outputs=("export",), partitions=("serve",)),
    config=model_config,
    code=ml_code_version,
    present=_present,
))
