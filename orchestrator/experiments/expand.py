"""The points of a grid: every combination of the listed values (the last parameter varying fastest), or ``n``
points drawn at random, the same ones for the same seed."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

from orchestrator.experiments.grid import GridSpec, Values


def expand(grid: GridSpec) -> list[dict[str, Any]]:
    """The parameters of every point, in the order the experiment runs and numbers them (from 1).

    Args:
        grid: the validated grid (a distribution only appears with ``sample``: ``load_grid`` checks it).

    Returns:
        One mapping of dotted path -> value per point, the paths in the grid file's order.
    """
    paths = list(grid.parameters)
    if grid.sample is None:
        return [dict(zip(paths, combination))
                for combination in itertools.product(*(values.args for values in grid.parameters.values()))]
    rng = np.random.default_rng(grid.sample.seed)
    # One parameter after the other within each point: adding a parameter at the end keeps the earlier draws.
    return [{path: _draw(values, rng) for path, values in grid.parameters.items()} for _ in range(grid.sample.n)]


def _draw(values: Values, rng: np.random.Generator) -> Any:
    if values.kind in ("values", "choice"):
        return values.args[int(rng.integers(len(values.args)))]
    low, high = values.args
    if values.kind == "uniform":
        return float(rng.uniform(low, high))
    if values.kind == "log_uniform":
        return float(math.exp(rng.uniform(math.log(low), math.log(high))))
    return int(rng.integers(low, high, endpoint=True))
