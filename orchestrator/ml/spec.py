"""The ``model:`` section of a pipeline file: what to train, on which columns, how to preprocess and tune it."""

from __future__ import annotations

import importlib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

TREE_MODULES = ("sklearn.ensemble", "sklearn.tree")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FeatureColumns(_Strict):
    """The raw feature columns the model reads; each becomes one named ONNX input."""

    numeric: list[str] = Field(default_factory=list, description="Numeric columns, fed to the model as float32.")
    categorical: list[str] = Field(
        default_factory=list, description="Categorical columns, fed as strings; missing values become a sentinel."
    )

    @model_validator(mode="after")
    def _distinct_and_present(self) -> "FeatureColumns":
        if not self.numeric and not self.categorical:
            raise ValueError("at least one numeric or categorical feature column is required")
        both = sorted(set(self.numeric) & set(self.categorical))
        if both:
            raise ValueError(f"columns listed as both numeric and categorical: {both}")
        for kind in (self.numeric, self.categorical):
            if len(set(kind)) != len(kind):
                raise ValueError("a feature column is listed twice")
        return self

    @property
    def all(self) -> list[str]:
        """Every feature column, numeric first, in the order of the ONNX inputs."""
        return [*self.numeric, *self.categorical]


class PreprocessingSpec(_Strict):
    """How raw columns become the estimator's matrix; the defaults suit most tabular data."""

    numeric_impute: Literal["median", "mean", "none"] = Field(
        "median", description="Fill missing numeric values with the training median or mean, or leave them (NaN)."
    )
    scale_numeric: bool | None = Field(
        None, description="Standardise numeric columns; default: yes, except for tree-based estimators."
    )
    one_hot: bool = Field(True, description="One-hot encode categorical columns (unknown categories are ignored).")
    missing_category: str = Field(
        "__missing__", description="The category missing categorical values become, in training and in ONNX."
    )


class TuningSpec(_Strict):
    """A hyper-parameter search: cross-validated on the train partition, finalists chosen on validation."""

    strategy: Literal["grid", "random", "halving"] = Field("grid", description="Grid, random or successive halving.")
    space: dict[str, Any] = Field(
        description="Estimator parameter -> list of values, or a distribution "
        "{'uniform': [low, high]}, {'loguniform': [low, high]}, {'randint': [low, high]} (random/halving only)."
    )
    n_iter: int = Field(10, ge=1, description="Candidates drawn by the random strategy.")
    cv: int = Field(3, ge=2, description="Cross-validation folds on the train partition.")
    scoring: str | None = Field(
        None,
        description="A scikit-learn scorer name; default roc_auc (binary), accuracy (multiclass), "
        "neg_root_mean_squared_error (regression).",
    )
    finalists: int = Field(
        3, ge=1, description="Best cross-validated candidates refitted on train and compared on validation."
    )
    factor: int = Field(3, ge=2, description="Successive halving: keep 1/factor of the candidates per round.")
    random_state: int = Field(0, description="Seed for candidate sampling and fold shuffling.")

    @field_validator("space")
    @classmethod
    def _space_not_empty(cls, space: dict[str, Any]) -> dict[str, Any]:
        if not space:
            raise ValueError("the search space is empty")
        for name, values in space.items():
            if isinstance(values, list):
                if not values:
                    raise ValueError(f"parameter {name!r} has an empty list of values")
            elif isinstance(values, dict):
                if len(values) != 1 or next(iter(values)) not in ("uniform", "loguniform", "randint"):
                    raise ValueError(
                        f"parameter {name!r}: expected a list of values or one of "
                        "{uniform|loguniform|randint: [low, high]}"
                    )
            else:
                raise ValueError(f"parameter {name!r}: expected a list of values or a distribution")
        return space


class ModelSpec(_Strict):
    """One model to train, evaluate, export to ONNX and register."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", description="Registry name, e.g. flights-delay.")
    task: Literal["classification", "regression"] = Field(description="Classification or regression.")
    target: str = Field(description="The column to predict.")
    features: FeatureColumns = Field(description="Raw feature columns, by kind.")
    estimator: str = Field(description="Import path, e.g. sklearn.ensemble.HistGradientBoostingClassifier.")
    params: dict[str, Any] = Field(default_factory=dict, description="Fixed estimator parameters.")
    tuning: TuningSpec | None = Field(None, description="Optional hyper-parameter search.")
    preprocessing: PreprocessingSpec = Field(default_factory=PreprocessingSpec, description="Preprocessing.")
    parity_tolerance: float = Field(
        1e-4, gt=0, description="Largest allowed |sklearn - ONNX| probability (or relative regression) difference."
    )
    random_state: int | None = Field(
        0, description="Seed given to estimators that accept one, so that a re-run trains the same model."
    )

    @field_validator("estimator")
    @classmethod
    def _estimator_importable(cls, path: str) -> str:
        load_estimator_class(path)
        return path

    @model_validator(mode="after")
    def _target_is_not_a_feature(self) -> "ModelSpec":
        if self.target in self.features.all:
            raise ValueError(f"target column {self.target!r} is also listed as a feature")
        return self

    @property
    def is_tree_based(self) -> bool:
        """True for estimators from sklearn.ensemble / sklearn.tree, which need no scaling."""
        return self.estimator.startswith(TREE_MODULES)


def load_estimator_class(path: str) -> type:
    """Import an estimator class from its dotted path.

    Raises:
        ValueError: the module or the class cannot be imported (pydantic turns it into a field error).
    """
    module_name, _, class_name = path.rpartition(".")
    if not module_name:
        raise ValueError(f"expected an import path such as sklearn.linear_model.LogisticRegression, got {path!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import module {module_name!r}: {exc}") from exc
    try:
        cls = getattr(module, class_name)
    except AttributeError as exc:
        raise ValueError(f"module {module_name!r} has no estimator {class_name!r}") from exc
    if not (isinstance(cls, type) and hasattr(cls, "fit")):
        raise ValueError(f"{path!r} is not an estimator class (no fit method)")
    return cls
