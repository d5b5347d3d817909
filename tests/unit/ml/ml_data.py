"""Small synthetic flights frames with the pandas extension dtypes Dask hands over, and model specs."""

from __future__ import annotations

import numpy as np
import pandas as pd

from orchestrator.ml.spec import ModelSpec


def synthetic_flights(rows: int, seed: int) -> pd.DataFrame:
    """Delay depends on hour, distance and carrier; a few values are missing, as in real data."""
    rng = np.random.default_rng(seed)
    hour = rng.integers(5, 24, rows)
    distance = rng.gamma(2.0, 400.0, rows)
    carrier = rng.choice(["AA", "UA", "DL", "B6"], rows)
    logit = 0.25 * (hour - 14) + 0.0008 * (distance - 800) + np.where(carrier == "B6", 1.0, 0.0)
    delayed = rng.random(rows) < 1 / (1 + np.exp(-logit))
    frame = pd.DataFrame(
        {
            "dep_hour": pd.array(hour, dtype="Int64"),
            "distance": pd.array(distance, dtype="Float64"),
            "carrier": pd.array(carrier, dtype="string[pyarrow]"),
            "delayed": pd.array(delayed, dtype="bool[pyarrow]"),
            "arr_delay": pd.array(10 * logit + rng.normal(0, 3, rows), dtype="Float64"),
        }
    )
    frame.loc[frame.index % 17 == 3, "distance"] = pd.NA
    frame.loc[frame.index % 23 == 5, "carrier"] = pd.NA
    return frame


def make_spec(estimator: str = "sklearn.linear_model.LogisticRegression", task: str = "classification",
              **extra) -> ModelSpec:
    return ModelSpec.model_validate(
        {
            "name": "flights-delay",
            "task": task,
            "target": "delayed" if task == "classification" else "arr_delay",
            "features": {"numeric": ["dep_hour", "distance"], "categorical": ["carrier"]},
            "estimator": estimator,
            **extra,
        }
    )
