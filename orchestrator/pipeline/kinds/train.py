"""The train kind: fit (and tune, when a search space is declared) on the train partition, select on validation.

It never sees test or serve rows: its PartitionView opens on train and validation only.
"""

from __future__ import annotations

import json

import joblib

from orchestrator.pipeline.context import StageContext
from orchestrator.pipeline.kinds.model import has_model, ml_code_version, model_config
from orchestrator.pipeline.stage_kinds import Reads, StageKind, Writes, register_stage_kind

MODEL_FILE = "model.joblib"


def load_model(ctx: StageContext):
    """The fitted scikit-learn model from the train stage's output."""
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


KIND = register_stage_kind(StageKind(
    name="train",
    run=train,
    reads=Reads(partitions=("train", "validation")),
    writes=Writes(record=("best_params", "best_score")),
    config=model_config,
    code=ml_code_version,
    present=has_model,
))
