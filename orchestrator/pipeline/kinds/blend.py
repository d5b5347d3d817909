"""The blend kind: join every declared source onto the base source (or take the only one), and say what each join
matched: its match rate reaches the stage's metadata and the run record, and a join below its
``min_match_fraction`` fails the run."""

from __future__ import annotations

from orchestrator.pipeline.blend import blend_frames, match_failure
from orchestrator.pipeline.context import DATA, StageContext
from orchestrator.pipeline.kinds.ingest import stage_name as ingested
from orchestrator.pipeline.spec import MIN_MATCH_FRACTION
from orchestrator.pipeline.stage_kinds import Reads, StageKind, StageSite, Writes, register_stage_kind


def blend(ctx: StageContext) -> dict:
    """Join every declared source onto the base source."""
    spec = ctx.spec
    if spec.blend is None:
        (only,) = spec.sources
        ctx.data.save({DATA: ctx.output(ingested(only))})
        return {"rows_in": ctx.upstream[ingested(only)]["rows_out"], "rows_out": ctx.data.rows(DATA)}
    joins = [(join, ctx.output(ingested(join.source)), ctx.upstream[ingested(join.source)]["rows_out"])
             for join in spec.blend.joins]
    blended = blend_frames(ctx.output(ingested(spec.blend.base)), joins)
    rows_in = ctx.upstream[ingested(spec.blend.base)]["rows_out"]
    # The joins' counts are computed in the pass that writes the blended frame: no second read.
    (counts,) = ctx.data.save({DATA: blended.frame}, blended.counts)
    reports = blended.reports(counts)
    meta = {"rows_in": rows_in, "rows_out": ctx.data.rows(DATA), "joins": reports}
    failures = [why for join, report in zip(spec.blend.joins, reports) if (why := match_failure(report, join))]
    if failures:
        meta["failed"] = "\n".join(failures)
    return meta


def _reads(site: StageSite) -> Reads:
    return Reads(outputs=tuple(ingested(source) for source in site.spec.sources))


def _config(site: StageSite) -> dict | None:
    if site.spec.blend is None:
        return None
    config = site.spec.blend.model_dump(mode="json")
    for join in config["joins"]:
        # A file leaving the threshold at its default keeps the cache key it had before the threshold existed.
        if join["min_match_fraction"] == MIN_MATCH_FRACTION:
            del join["min_match_fraction"]
    return config


KIND = register_stage_kind(StageKind(
    name="blend", run=blend, reads=_reads, config=_config, writes=Writes(record=("joins",)),
))
