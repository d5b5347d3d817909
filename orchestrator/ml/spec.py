"""The ``model:`` section of a pipeline file."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class FeatureColumns(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    numeric: list[str] = Field(default_factory=list, description="Numeric feature columns.")
    categorical: list[str] = Field(default_factory=list, description="Categorical feature columns.")


class ModelSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Registry name of the model.")
    task: Literal["classification", "regression"] = Field(description="What the model predicts.")
    target: str = Field(description="Column to predict.")
    features: FeatureColumns = Field(description="Input columns.")
    estimator: str = Field(description="Import path of a scikit-learn estimator.")
    params: dict[str, Any] = Field(default_factory=dict, description="Estimator parameters.")
    parity_tolerance: float = Field(1e-4, description="Largest allowed ONNX vs scikit-learn probability gap.")
