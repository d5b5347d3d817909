"""The evaluate kind: score the trained model on the test partition only, against a baseline."""

from __future__ import annotations

import json

from orchestrator.pipeline.context import StageContext
from orchestrator.pipeline.kinds.model import has_model, ml_code_version, model_config
from orchestrator.pipeline.kinds.train import load_model
from orchestrator.pipeline.stage_kinds import Reads, StageKind, Writes, register_stage_kind


def evaluate(ctx: StageContext) -> dict:
    """Score the trained model on the test partition only, against a baseline."""
    from orchestrator.ml.evaluate import evaluate_model

    test_rows = ctx.partitions.pandas("test")
    evaluation = evaluate_model(ctx.spec.model, load_model(ctx), test_rows)
    (ctx.out_dir / "metrics.json").write_text(json.dumps(evaluation.metrics, indent=1, sort_keys=True, default=str))
    (ctx.out_dir / "report.html").write_text(evaluation.report_html)
    return {"rows_in": len(test_rows), "metrics": evaluation.metrics}


KIND = register_stage_kind(StageKind(
    name="evaluate",
    run=evaluate,
    reads=Reads(outputs=("train",), partitions=("test",)),
    # Its metrics are the run's metrics.
    writes=Writes(record=("metrics",), run_record=("metrics",)),
    config=model_config,
    code=ml_code_version,
    present=has_model,
))
