"""The split kind: write each partition apart and prove they are disjoint (by key and by row) in one pass."""

from __future__ import annotations

import json

from orchestrator.errors import SpecError
from orchestrator.pipeline.context import StageContext
from orchestrator.pipeline.isolation import PARTITION, disjoint_parts, disjoint_verdict, row_hashes
from orchestrator.pipeline.spec import PARTITIONS
from orchestrator.pipeline.split import label_partition
from orchestrator.pipeline.stage_kinds import Reads, StageKind, StageSite, Writes, register_stage_kind


def split(ctx: StageContext) -> dict:
    """Write each partition apart and prove they are disjoint (by key and by row) in the same pass over the data."""
    spec = ctx.spec.split
    frame = ctx.output("features")
    for column in {spec.column, *spec.key_columns}:
        if column not in frame.columns:
            raise SpecError(f"split: column {column!r} is not in the features output; columns are {list(frame.columns)}")
    meta = label_partition(frame._meta_nonempty, spec).iloc[:0]
    labelled = frame.map_partitions(label_partition, spec, meta=meta)
    writes = {name: labelled[labelled[PARTITION] == name].drop(columns=[PARTITION]) for name in PARTITIONS}
    hash_meta = row_hashes(meta, spec.key_columns)
    hashes = labelled.map_partitions(row_hashes, spec.key_columns, meta=hash_meta)
    totals, *shared = ctx.data.save(writes, *disjoint_parts(hashes))
    summary = disjoint_verdict(totals, shared, spec.key_columns)
    (ctx.out_dir / "partitions.json").write_text(json.dumps(summary, indent=1, sort_keys=True))
    return {"rows_in": ctx.upstream["features"]["rows_out"], "rows_out": sum(p["rows"] for p in summary.values()),
            "partitions": summary}


def _config(site: StageSite) -> dict:
    return site.spec.split.model_dump(mode="json")


KIND = register_stage_kind(StageKind(
    name="split",
    run=split,
    reads=Reads(outputs=("features",)),
    writes=Writes(record=("partitions",), partitions=PARTITIONS),
    config=_config,
))
