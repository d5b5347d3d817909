"""The export kind: export to ONNX, prove parity with the scikit-learn model on the test partition, write the model
card."""

from __future__ import annotations

from orchestrator.pipeline.context import StageContext
from orchestrator.pipeline.kinds.model import has_model, ml_code_version, model_config
from orchestrator.pipeline.kinds.train import load_model
from orchestrator.pipeline.stage_kinds import Reads, StageKind, Writes, register_stage_kind

MODEL_DIR = "model"


def export(ctx: StageContext) -> dict:
    """Export to ONNX, prove parity with the scikit-learn model on the test partition, write the model card."""
    from orchestrator.ml.onnx_export import export_model

    metrics = ctx.upstream["evaluate"]["metrics"]
    lineage = {
        "run_id": ctx.run_id,
        "pipeline": ctx.spec.name,
        "training_data": ctx.upstream["train"].get("reads", {}),
        "train_stage_key": ctx.upstream["train"].get("key"),
    }
    train_rows = ctx.partitions.pandas("train")
    test_rows = ctx.partitions.pandas("test")
    report = ctx.inputs["evaluate"] / "report.html"
    out = ctx.out_dir / MODEL_DIR
    out.mkdir()
    if report.exists():
        (out / "report.html").write_bytes(report.read_bytes())
    result = export_model(ctx.spec.model, load_model(ctx), train_rows, test_rows, out, metrics, lineage)
    return {"rows_in": len(test_rows), "parity": result.parity}


KIND = register_stage_kind(StageKind(
    name="export",
    run=export,
    # Parity is proven on test rows; train rows give the ONNX converter the input schema and the card its lineage.
    reads=Reads(outputs=("train", "evaluate"), partitions=("train", "test")),
    writes=Writes(record=("parity",)),
    config=model_config,
    code=ml_code_version,
    present=has_model,
))
