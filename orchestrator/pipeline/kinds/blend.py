"""The blend kind: join every declared source onto the base source (or take the only one)."""

from __future__ import annotations

from orchestrator.pipeline.blend import join_frames
from orchestrator.pipeline.context import DATA, StageContext
from orchestrator.pipeline.kinds.ingest import stage_name as ingested
from orchestrator.pipeline.stage_kinds import Reads, StageKind, StageSite, register_stage_kind


def blend(ctx: StageContext) -> dict:
    """Join every declared source onto the base source."""
    spec = ctx.spec
    if spec.blend is None:
        (only,) = spec.sources
        frame = ctx.output(ingested(only))
        rows_in = ctx.upstream[ingested(only)]["rows_out"]
    else:
        frame = ctx.output(ingested(spec.blend.base))
        rows_in = ctx.upstream[ingested(spec.blend.base)]["rows_out"]
        for join in spec.blend.joins:
            right = ctx.output(ingested(join.source))
            frame = join_frames(frame, right, join, ctx.upstream[ingested(join.source)]["rows_out"])
    ctx.data.save({DATA: frame})
    return {"rows_in": rows_in, "rows_out": ctx.data.rows(DATA)}


def _reads(site: StageSite) -> Reads:
    return Reads(outputs=tuple(ingested(source) for source in site.spec.sources))


def _config(site: StageSite) -> dict | None:
    return site.spec.blend.model_dump(mode="json") if site.spec.blend else None


KIND = register_stage_kind(StageKind(name="blend", run=blend, reads=_reads, config=_config))
