"""The grid file: which fields of a pipeline file an experiment varies, over which values, and how points are ranked.

```yaml
name: depth-and-rate              # optional; shown by `experiment list`
metric: log_loss                  # optional; default: the pipeline's primary metric (roc_auc, or rmse)
parameters:                       # a dotted path into the pipeline file -> its values: every combination runs
  model.params.max_depth: [3, 6]
  split.boundaries.train: ["2013-06-01", "2013-09-01"]
```

With ``sample: {n: 8, seed: 1}`` the points are drawn at random instead (the same ones for the same seed), each
parameter from a list of values or a distribution: ``{uniform: [a, b]}``, ``{log_uniform: [a, b]}``,
``{int: [a, b]}`` (both ends included) or ``{choice: [...]}``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from orchestrator.errors import SpecError
from orchestrator.experiments.metrics import MetricName
from orchestrator.yaml_files import line_of, read_mapping, spec_error, suggest

MAX_POINTS = 1000
DISTRIBUTIONS = ("uniform", "log_uniform", "int", "choice")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Values(_Strict):
    """What one parameter takes: a list of values (``kind: values``), or a distribution with its arguments
    (the bounds ``[low, high]`` of ``uniform``, ``log_uniform`` and ``int``; the options of ``choice``)."""

    kind: Literal["values", "uniform", "log_uniform", "int", "choice"]
    args: tuple[Any, ...]

    @property
    def is_distribution(self) -> bool:
        return self.kind != "values"

    def to_yaml(self) -> Any:
        """The value as a grid file writes it."""
        return list(self.args) if self.kind == "values" else {self.kind: list(self.args)}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _values(value: Any) -> Any:
    """Read what a grid file gives one parameter (a list, or one distribution) into :class:`Values`."""
    if isinstance(value, Values):
        return value
    if isinstance(value, list):
        if not value:
            raise ValueError("an empty list of values")
        return Values(kind="values", args=tuple(value))
    if not isinstance(value, dict):
        raise ValueError(f"got {value!r}: expected a list of values, or a distribution such as {{uniform: [0, 1]}}")
    if len(value) != 1:
        raise ValueError(f"a distribution has exactly one of {', '.join(DISTRIBUTIONS)}; got {list(value) or 'none'}")
    (kind, args), = value.items()
    if kind not in DISTRIBUTIONS:
        raise ValueError(f"unknown distribution {kind!r}{suggest(kind, DISTRIBUTIONS)}; expected one of "
                         f"{', '.join(DISTRIBUTIONS)}")
    if not isinstance(args, list) or not args:
        raise ValueError(f"{kind}: expected a list, got {args!r}")
    if kind == "choice":
        return Values(kind=kind, args=tuple(args))
    if len(args) != 2 or not all(_number(a) for a in args) or not args[0] < args[1]:
        raise ValueError(f"{kind}: expected [low, high], two numbers with low < high, got {args!r}")
    if kind == "int" and not all(isinstance(a, int) for a in args):
        raise ValueError(f"int: expected two whole numbers [low, high], got {args!r}")
    if kind == "log_uniform" and args[0] <= 0:
        raise ValueError(f"log_uniform: the bounds must be above 0, got {args!r}")
    return Values(kind=kind, args=tuple(args))


class Sample(_Strict):
    """Draw ``n`` points at random instead of running every combination."""

    n: int = Field(ge=1, le=MAX_POINTS, description="How many points to draw.")
    seed: int = Field(0, description="The random seed: the same seed draws the same points.")


class GridSpec(_Strict):
    """A whole grid file."""

    name: str | None = Field(None, description="A name for the experiment, shown by `experiment list`.")
    # What a file writes (a list, or one distribution), for the JSON Schema; `_values` turns it into `Values`.
    parameters: dict[str, Annotated[Values, BeforeValidator(
        _values, json_schema_input_type=list[Any] | dict[Literal[DISTRIBUTIONS], list[Any]])]] = Field(
        min_length=1, description="A dotted path into the pipeline file -> a list of values, or a distribution."
    )
    sample: Sample | None = Field(None, description="Draw this many random points instead of the full grid.")
    metric: MetricName | None = Field(None, description="The metric to rank points by; default: the primary one.")

    def grid_size(self) -> int:
        """How many points the full grid has."""
        return math.prod(len(values.args) for values in self.parameters.values())

    def defining(self) -> dict:
        """What decides the points (parameters and sample; not the name or the metric), for the experiment's id."""
        return {"parameters": {path: values.to_yaml() for path, values in self.parameters.items()},
                "sample": self.sample.model_dump() if self.sample else None}

    def to_yaml(self) -> dict:
        """The grid as a grid file writes it (what the experiment record keeps)."""
        return {"name": self.name, "metric": self.metric, **self.defining()}


@dataclass(frozen=True)
class LoadedGrid:
    """A validated grid file with where it came from (its node tree gives the line of each parameter)."""

    spec: GridSpec
    path: Path
    node: yaml.Node | None

    def line(self, *loc: str | int) -> int:
        """The line of ``loc`` in the grid file (``("parameters", path)`` for a parameter)."""
        return line_of(self.node, loc) or 1


def load_grid(path: Path | str) -> LoadedGrid:
    """Read, parse and validate a grid file.

    Raises:
        SpecError: the file is missing, not YAML, or breaks the schema: a distribution without ``sample:``, a grid
            of more than ``MAX_POINTS`` points; the message names file:line, the field and the closest valid name.
    """
    path = Path(path)
    _text, node, data = read_mapping(path, "grid")
    grid = LoadedGrid(_validate(data, path, node), path, node)
    _check_mode(grid)
    return grid


def grid_from_record(data: dict, path: Path | str) -> LoadedGrid:
    """The grid an experiment record keeps (``GridSpec.to_yaml``), validated again.

    Raises:
        SpecError: the record's grid no longer validates (written by another version).
    """
    return LoadedGrid(_validate(data, Path(path), None), Path(path), None)


def _validate(data: dict, path: Path, node: yaml.Node | None) -> GridSpec:
    try:
        return GridSpec.model_validate(data)
    except ValidationError as exc:
        raise spec_error(path, node, exc, GridSpec) from None


def _check_mode(grid: LoadedGrid) -> None:
    spec, problems = grid.spec, []
    if spec.sample is None:
        for name, values in spec.parameters.items():
            if values.is_distribution:
                problems.append(f"{grid.path}:{grid.line('parameters', name)}: parameters.{name}: a distribution "
                                f"({values.kind}) is drawn from, not listed: add `sample: {{n: 8, seed: 1}}` for a "
                                f"random sample, or give a list of values")
        if not problems and spec.grid_size() > MAX_POINTS:
            problems.append(f"{grid.path}:{grid.line('parameters')}: the grid has {spec.grid_size():,} points, more "
                            f"than {MAX_POINTS:,}: give fewer values, or draw a random sample with `sample: {{n: ...}}`")
    if problems:
        raise SpecError("\n".join(problems))
