"""The data stages: ingest (read, validate, quarantine, clean), blend, features and split, as Dask graphs.

Each stage writes its output as Parquet through the context's ``data`` (a scratch folder, or the object store
directly from the workers) and returns its metadata; the runner publishes it into the content-addressed cache.
"""

from __future__ import annotations

import json

import dask.dataframe as dd

from orchestrator.errors import SourceError, SpecError
from orchestrator.pipeline.blend import join_frames
from orchestrator.pipeline.context import StageContext
from orchestrator.pipeline.isolation import PARTITION, check_disjoint, row_hashes
from orchestrator.pipeline.spec import PARTITIONS
from orchestrator.pipeline.split import label_partition
from orchestrator.pipeline.transforms import apply_steps
from orchestrator.pipeline.validate import REASON, check_partition

DATA = "data"
QUARANTINE = "quarantine"


def read_output(ctx: StageContext, stage: str, part: str = DATA) -> dd.DataFrame:
    return ctx.data.read(ctx.locations[stage], part)


def ingest(ctx: StageContext, source_name: str) -> dict:
    """Read one source, quarantine rows that break its rules (with the reason), apply its cleaning steps."""
    source = ctx.spec.sources[source_name]
    frame = ctx.source_frames[source_name]
    rules = source.validation.columns if source.validation else {}
    missing = [c for c in rules if c not in frame.columns]
    if missing:
        raise SourceError(
            f"source {source_name!r} ({source.location}): validation names columns {missing} that the data does not "
            f"have; its columns are {list(frame.columns)}"
        )
    if rules:
        meta = check_partition(frame._meta, rules)
        checked = frame.map_partitions(check_partition, rules, meta=meta)
        good = checked[checked[REASON].isnull()].drop(columns=[REASON])
        bad = checked[checked[REASON].notnull()]
        good = apply_steps(good, source.steps, ctx.base_dir, f"sources.{source_name}.steps")
        # One pass over the source: the read is shared by both writes and the row count.
        rows_in, = ctx.data.save({DATA: good, QUARANTINE: bad}, frame.shape[0])
    else:
        cleaned = apply_steps(frame, source.steps, ctx.base_dir, f"sources.{source_name}.steps")
        rows_in, = ctx.data.save({DATA: cleaned}, frame.shape[0])
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


def blend(ctx: StageContext) -> dict:
    """Join every declared source onto the base source."""
    spec = ctx.spec
    if spec.blend is None:
        (only,) = spec.sources
        frame = read_output(ctx, f"ingest.{only}")
        rows_in = ctx.upstream[f"ingest.{only}"]["rows_out"]
    else:
        frame = read_output(ctx, f"ingest.{spec.blend.base}")
        rows_in = ctx.upstream[f"ingest.{spec.blend.base}"]["rows_out"]
        for join in spec.blend.joins:
            right = read_output(ctx, f"ingest.{join.source}")
            frame = join_frames(frame, right, join, ctx.upstream[f"ingest.{join.source}"]["rows_out"])
    ctx.data.save({DATA: frame})
    return {"rows_in": rows_in, "rows_out": ctx.data.rows(DATA)}


def features(ctx: StageContext) -> dict:
    """Derive the model's features on the blended frame."""
    frame = apply_steps(read_output(ctx, "blend"), ctx.spec.features, ctx.base_dir, "features")
    ctx.data.save({DATA: frame})
    return {"rows_in": ctx.upstream["blend"]["rows_out"], "rows_out": ctx.data.rows(DATA)}


def split(ctx: StageContext) -> dict:
    """Write each partition apart and prove they are disjoint (by key and by row) in the same pass over the data."""
    spec = ctx.spec.split
    frame = read_output(ctx, "features")
    for column in {spec.column, *spec.key_columns}:
        if column not in frame.columns:
            raise SpecError(f"split: column {column!r} is not in the features output; columns are {list(frame.columns)}")
    meta = label_partition(frame._meta_nonempty, spec).iloc[:0]
    labelled = frame.map_partitions(label_partition, spec, meta=meta)
    writes = {name: labelled[labelled[PARTITION] == name].drop(columns=[PARTITION]) for name in PARTITIONS}
    hash_meta = row_hashes(meta, spec.key_columns)
    hashes = labelled.map_partitions(row_hashes, spec.key_columns, meta=hash_meta)
    collected, = ctx.data.save(writes, hashes)
    summary = check_disjoint(collected, spec.key_columns)
    (ctx.out_dir / "partitions.json").write_text(json.dumps(summary, indent=1, sort_keys=True))
    return {"rows_in": ctx.upstream["features"]["rows_out"], "rows_out": sum(p["rows"] for p in summary.values()),
            "partitions": summary}
