"""The ingest kind, one stage per source: read it, quarantine rows that break its rules (with the reason), apply its
cleaning steps."""

from __future__ import annotations

from orchestrator.pipeline.context import DATA, StageContext
from orchestrator.pipeline.prepare import clean_source
from orchestrator.pipeline.stage_kinds import StageKind, StageSite, Writes, register_stage_kind
from orchestrator.pipeline.transforms import code_version
from orchestrator.pipeline.web_api_spec import WebApi

QUARANTINE = "quarantine"


def stage_name(source: str) -> str:
    """The name of the ingest stage of ``source`` (what later stages read)."""
    return f"{KIND.name}.{source}"


def ingest(ctx: StageContext) -> dict:
    """Read one source, quarantine rows that break its rules (with the reason), apply its cleaning steps."""
    source_name = ctx.source
    source = ctx.spec.sources[source_name]
    frame = ctx.source_frames[source_name]
    cleaned = clean_source(frame, source, source_name, ctx.base_dir)
    rules = cleaned.quarantine is not None
    outputs = {DATA: cleaned.frame, **({QUARANTINE: cleaned.quarantine} if rules else {})}
    # One pass over the source: the read is shared by both writes and the row count.
    rows_in, = ctx.data.save(outputs, frame.shape[0])
    bad_rows = ctx.data.rows(QUARANTINE) if rules else 0
    rows_out = ctx.data.rows(DATA)
    meta = {"rows_in": int(rows_in), "rows_out": rows_out, "quarantined": bad_rows}
    limit = source.validation.max_bad_fraction if source.validation else 1.0
    if rows_in and bad_rows / rows_in > limit:
        meta["failed"] = (
            f"source {source_name!r}: {bad_rows:,} of {rows_in:,} rows ({bad_rows / rows_in:.1%}) failed validation, "
            f"more than max_bad_fraction {limit:.1%}"
        )
    return meta


def _config(site: StageSite) -> dict:
    # How a web API is fetched (its token's origin, pace, patience, refresh) changes no record: its snapshot's
    # fingerprint, among the inputs, stands for what it yielded.
    return site.source_spec.model_dump(mode="json", exclude={"web_api": set(WebApi.FETCH_ONLY)})


def _code(site: StageSite) -> str:
    # The source's cleaning steps may call user functions: editing one invalidates this stage.
    return code_version(site.source_spec.steps, site.base_dir)


KIND = register_stage_kind(StageKind(
    name="ingest",
    run=ingest,
    per_source=True,
    writes=Writes(record=("quarantined",), quarantine=QUARANTINE),
    config=_config,
    code=_code,
))
