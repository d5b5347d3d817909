"""The model stages: train, evaluate, export (ONNX + parity + card), register and score.

Each reads the split only through its PartitionView, so train never sees test or serve rows and evaluation sees only
the test rows. The learning itself lives in ``orchestrator.ml``; these functions move data and artifacts around it.
"""

from __future__ import annotations

import json

import joblib

from orchestrator.pipeline.context import StageContext

MODEL_FILE = "model.joblib"
MODEL_DIR = "model"


def _load_model(ctx: StageContext):
    return joblib.load(ctx.inputs["train"] / MODEL_FILE)


def train(ctx: StageContext) -> dict:
    """Fit (and tune, when a search space is declared) on the train partition, select on validation."""
    from orchestrator.ml.train import fit_model

    train_rows = ctx.partitions.pandas("train")
    validation_rows = ctx.partitions.pandas("validation")
    result = fit_model(ctx.spec.model, train_rows, validation_rows, client=ctx.client, on_progress=ctx.on_progress)
    joblib.dump(result.model, ctx.out_dir / MODEL_FILE)
    fit = result.record()
    (ctx.out_dir / "fit.json").write_text(json.dumps(fit, indent=1, sort_keys=True, default=str))
    return {"rows_in": len(train_rows) + len(validation_rows), "best_params": fit["best_params"],
            "best_score": fit["best_score"], "candidates": fit["candidates"]}


def evaluate(ctx: StageContext) -> dict:
    """Score the trained model on the test partition only, against a baseline."""
    from orchestrator.ml.evaluate import evaluate_model

    test_rows = ctx.partitions.pandas("test")
    evaluation = evaluate_model(ctx.spec.model, _load_model(ctx), test_rows)
    (ctx.out_dir / "metrics.json").write_text(json.dumps(evaluation.metrics, indent=1, sort_keys=True, default=str))
    (ctx.out_dir / "report.html").write_text(evaluation.report_html)
    return {"rows_in": len(test_rows), "metrics": evaluation.metrics}


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
    result = export_model(ctx.spec.model, _load_model(ctx), train_rows, test_rows, out, metrics, lineage)
    return {"rows_in": len(test_rows), "parity": result.parity}


def register(ctx: StageContext) -> dict:
    """Add the exported model to the registry; an identical model registers nothing new."""
    from orchestrator.registry.models import ModelRegistry

    version, created = ModelRegistry(ctx.store).register(ctx.inputs["export"] / MODEL_DIR, ctx.spec.model.name)
    return {"model": ctx.spec.model.name, "version": version, "created": created}


def score(ctx: StageContext) -> dict:
    """Score the serve partition with the exported ONNX model, partition by partition on the cluster."""
    from orchestrator.ml.score import score_dataframe

    serve = ctx.partitions.frame("serve")
    scored = score_dataframe(ctx.inputs["export"] / MODEL_DIR, serve)
    ctx.data.save({"predictions": scored})
    return {"rows_in": ctx.partitions.reads["serve"]["rows"], "rows_out": ctx.data.rows("predictions")}
