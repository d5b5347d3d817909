"""Every column the pipeline file names, checked before any stage runs.

The columns of each source (its reader's schema: the CSV header and a sample's types, the Parquet schema, the
first JSON lines) are carried through the same code the stages run, on empty frames: validation's conversions,
each cleaning step, the joins, each feature step. A step that names a column the frame does not have at that
point, a join key missing on one side, a split column, a model feature or a target that nothing produces, is
reported at once with the file, its line, the field, the columns that were there and the closest name, instead of
after minutes of ingest.

A user function is not run here (user code may be slow, or need the real rows): the columns after it are what it
declares it adds and drops (``orchestrator.pipeline.declare.columns``). One that declares nothing leaves them
unknown: the names used after it are checked when its stage has run, before the next stage is built.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import dask
import dask.dataframe as dd
import pandas as pd
import yaml
from dask.dataframe.utils import meta_nonempty

from orchestrator.errors import SpecError
from orchestrator.pipeline.blend import blend_frames
from orchestrator.pipeline.declare import declared_columns
from orchestrator.pipeline.spec import LoadedPipeline, Step
from orchestrator.pipeline.transforms import apply_step, load_function
from orchestrator.pipeline.validate import REASON, check_partition
from orchestrator.yaml_files import line_of, suggest

_UNDEFINED = re.compile(r"name '(.+?)' is not defined")
_BACKTICKED = re.compile(r"`([^`]+)`")
_SHOWN = 30  # columns listed in a message; wider frames are cut with a count


class _Problems:
    """The mistakes found so far, each with file, line and field."""

    def __init__(self, path: Path, node: yaml.Node | None):
        self.path, self.node = path, node
        self.messages: list[str] = []

    def add(self, loc: tuple, message: str) -> None:
        field = ".".join(f"[{part}]" if isinstance(part, int) else str(part) for part in loc).replace(".[", "[")
        self.messages.append(f"{self.path}:{line_of(self.node, loc)}: field {field!r}: {message}")

    def unknown(self, loc: tuple, name: str, columns, where: str) -> None:
        self.add(loc, f"unknown column {name!r}{suggest(name, columns)}; {where} the columns are {_listed(columns)}")


def _listed(columns) -> str:
    names = [str(c) for c in columns]
    shown = ", ".join(names[:_SHOWN])
    return shown + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")


def check_pipeline_columns(pipeline: LoadedPipeline, source_schemas: Mapping[str, pd.DataFrame]) -> list[str]:
    """Check every column name of the pipeline file against the columns its sources give.

    Args:
        pipeline: The loaded pipeline.
        source_schemas: Each read source's frame as its reader gives it (an empty frame of the right columns and
            types is enough: the Dask reader's ``_meta``).

    Returns:
        The columns the model stage will find (after the feature steps); empty when they are unknown (after a
        function step that declares nothing).

    Raises:
        SpecError: the file names columns that will not be there; one line per mistake, with file:line.
    """
    spec = pipeline.spec
    problems = _Problems(pipeline.path, pipeline.node if pipeline.node is not None else _node(pipeline.text))
    # Everything here is on empty frames: computing them on the cluster would only add round trips.
    with dask.config.set(scheduler="sync"):
        ingested = {name: _ingested(name, schema, pipeline, problems) for name, schema in source_schemas.items()}
        blended = _blended(pipeline, ingested, problems)
        featured = _through_steps(blended, spec.features, ("features",), pipeline, problems)
    if featured is not None:
        _check_consumers(pipeline, featured, problems)
    if problems.messages:
        raise SpecError("\n".join(problems.messages))
    return [str(c) for c in featured.columns] if featured is not None else []


def _node(text: str) -> yaml.Node | None:
    try:
        return yaml.compose(text)
    except yaml.YAMLError:
        return None


def _ingested(name: str, schema: pd.DataFrame, pipeline: LoadedPipeline, problems: _Problems) -> pd.DataFrame | None:
    source = pipeline.spec.sources[name]
    frame = schema.iloc[:0]
    rules = source.validation.columns if source.validation else {}
    missing = [column for column in rules if column not in frame.columns]
    for column in missing:
        problems.unknown(("sources", name, "validation", "columns", column), column, frame.columns,
                         f"source {name!r} has no such column:")
    if missing:
        return None
    if rules:
        frame = check_partition(frame, rules).drop(columns=[REASON])
    return _through_steps(frame, source.steps, ("sources", name, "steps"), pipeline, problems)


def _through_steps(frame: pd.DataFrame | None, steps: list[Step], loc: tuple, pipeline: LoadedPipeline,
                   problems: _Problems) -> pd.DataFrame | None:
    """``frame`` after ``steps``, each run as its stage runs it; None from the first step that cannot be checked."""
    for index, step in enumerate(steps):
        if frame is None:
            return None
        where = (*loc, index)
        if step.kind in ("filter", "derive") and not _expressions_known(frame, step, where, problems):
            return None
        if step.kind == "function":
            frame = _declared_effect(frame, step, where, pipeline, problems)
            continue
        try:
            frame = apply_step(dd.from_pandas(frame, npartitions=1), step, pipeline.base_dir,
                               ".".join(map(str, where)))._meta
        except SpecError as exc:
            problems.add(where, str(exc).split(": ", 1)[-1])
            return None
    return frame


def _declared_effect(frame: pd.DataFrame, step: Step, where: tuple, pipeline: LoadedPipeline,
                     problems: _Problems) -> pd.DataFrame | None:
    """The columns after a user function, from what it declares; None (unknown until its stage has run) when it
    declares nothing. It is not run here: user code may be slow, or need the real rows."""
    declared = declared_columns(load_function(step.function, pipeline.base_dir))
    if declared is None:
        return None
    missing = [name for name in declared.drops if name not in frame.columns]
    for name in missing:
        problems.unknown((*where, "function"), name, frame.columns,
                         f"{step.function} declares it drops {name!r}, but")
    if missing:
        return None
    frame = frame.drop(columns=list(declared.drops))
    return frame.assign(**{name: pd.Series(dtype=dtype or "object") for name, dtype in declared.adds.items()})


def _expressions_known(frame: pd.DataFrame, step: Step, where: tuple, problems: _Problems) -> bool:
    """Whether every name the step's expressions read is a column there (``@name`` and functions aside)."""
    expressions = {(*where, "filter"): step.filter} if step.filter is not None else {
        (*where, "derive", column): text for column, text in (step.derive or {}).items()}
    stand_in = meta_nonempty(frame)
    known = True
    for loc, expression in expressions.items():
        try:
            value = stand_in.eval(expression)
        except NameError as exc:  # pandas' UndefinedVariableError: a name that is no column
            match = _UNDEFINED.search(str(exc))
            name = _as_written(match[1], expression) if match else str(exc)
            problems.unknown(loc, name, frame.columns, "there")
            known = False
            continue
        except Exception:  # noqa: BLE001 - stand-in values may not suit the expression; the stage will tell
            value = None
        if step.derive is not None:  # a later expression of the step may read this column
            stand_in = stand_in.assign(**{loc[-1]: value})
    return known


def _as_written(name: str, expression: str) -> str:
    """A name pandas reports undefined, as the expression writes it: pandas renames a backticked name
    (`` `Amount (EUR)` ``) to an identifier of its own before evaluating."""
    from pandas.core.computation.parsing import create_valid_python_identifier

    for written in _BACKTICKED.findall(expression):
        if create_valid_python_identifier(written) == name:
            return written
    return name


def _blended(pipeline: LoadedPipeline, ingested: Mapping[str, pd.DataFrame | None],
             problems: _Problems) -> pd.DataFrame | None:
    spec = pipeline.spec
    if spec.blend is None:
        (only,) = spec.sources
        return ingested.get(only)
    base = ingested.get(spec.blend.base)
    if base is None or any(ingested.get(join.source) is None for join in spec.blend.joins):
        return None
    left = base
    for index, join in enumerate(spec.blend.joins):
        right = ingested[join.source]
        loc = ("blend", "joins", index)
        left_keys = [("keys", i, k) for i, k in enumerate(join.keys)] + \
                    [("left_on", i, k) for i, k in enumerate(join.left_on or [])]
        right_keys = [("keys", i, k) for i, k in enumerate(join.keys)] + \
                     [("right_on", i, k) for i, k in enumerate(join.right_on or [])]
        if join.time is not None:
            left_keys.append(("time", "left", join.time.left))
            right_keys.append(("time", "right", join.time.right))
        found = True
        for field, position, column in left_keys:
            if column not in left.columns:
                problems.unknown((*loc, field, position), column, left.columns,
                                 "before this join the blended frame has no such column:")
                found = False
        for field, position, column in right_keys:
            if column not in right.columns:
                problems.unknown((*loc, field, position), column, right.columns,
                                 f"source {join.source!r} has no such column:")
                found = False
        for position, column in enumerate(join.columns or []):
            if column not in right.columns:
                problems.unknown((*loc, "columns", position), column, right.columns,
                                 f"source {join.source!r} has no such column:")
                found = False
        if not found:
            return None
        # Each join's columns, as the blend stage makes them, before the next join's keys are looked for.
        try:
            left = blend_frames(dd.from_pandas(left, npartitions=1),
                                [(join, dd.from_pandas(right, npartitions=1), 0)]).frame._meta
        except SpecError as exc:
            problems.add(loc, str(exc))
            return None
    return left


def _check_consumers(pipeline: LoadedPipeline, frame: pd.DataFrame, problems: _Problems) -> None:
    """The split and the model read columns of the featured frame."""
    spec = pipeline.spec
    after = "after the feature steps"
    split = spec.split
    if split.column not in frame.columns:
        problems.unknown(("split", "column"), split.column, frame.columns, after)
    for index, column in enumerate(split.key):
        if column not in frame.columns:
            problems.unknown(("split", "key", index), column, frame.columns, after)
    model = spec.model
    if model is None:
        return
    if model.target not in frame.columns:
        problems.unknown(("model", "target"), model.target, frame.columns, after)
    for kind in ("numeric", "categorical"):
        for index, column in enumerate(getattr(model.features, kind)):
            if column not in frame.columns:
                problems.unknown(("model", "features", kind, index), column, frame.columns, after)
