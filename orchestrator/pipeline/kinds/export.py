"""The export kind: export to ONNX, prove parity with the scikit-learn model on the test partition, write the model
card and the model's reference profile (features on train, outputs on validation) for drift checks."""

from __future__ import annotations

from orchestrator.monitoring.profile import PROFILE_FORMAT
from orchestrator.pipeline.context import StageContext
from orchestrator.pipeline.kinds.model import has_model, ml_code_version, model_config
from orchestrator.pipeline.kinds.train import load_model
from orchestrator.pipeline.stage_kinds import Reads, StageKind, StageSite, Writes, register_stage_kind

MODEL_DIR = "model"


def export(ctx: StageContext) -> dict:
    """Export to ONNX, prove parity on the test partition, write the card and the reference profile."""
    from orchestrator.ml.onnx_export import attach_reference_profile, export_model
    from orchestrator.pipeline.reference_profile import model_reference_profile

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
    # The outputs' reference comes from validation rows: the model was not fitted on them, and test rows stay
    # for evaluation and parity alone.
    validation_rows = ctx.partitions.pandas("validation")
    importance = metrics.get("feature_importance", {}).get("mean", {})
    profile = model_reference_profile(result.card, out, train_rows, validation_rows, importance)
    attach_reference_profile(out, profile.to_dict(), ctx.spec.monitoring.model_dump(mode="json"))
    return {"rows_in": len(test_rows), "parity": result.parity, "profile_columns": len(profile.columns)}


def _config(site: StageSite) -> dict:
    # The drift policy is written into the card: changing it must export (and register) anew.
    return {"model": model_config(site), "monitoring": site.spec.monitoring.model_dump(mode="json")}


def _code(site: StageSite) -> str:
    # A new profile format must not reuse exports cached without one (or with an older one).
    return f"{ml_code_version(site)},reference_profile={PROFILE_FORMAT}"


KIND = register_stage_kind(StageKind(
    name="export",
    run=export,
    # Parity is proven on test rows; train rows give the ONNX converter the input schema, the card its lineage and
    # the profile its features' reference; validation rows give the profile the model's outputs. Never serve.
    reads=Reads(outputs=("train", "evaluate"), partitions=("train", "validation", "test")),
    writes=Writes(record=("parity",)),
    config=_config,
    code=_code,
    present=has_model,
))
