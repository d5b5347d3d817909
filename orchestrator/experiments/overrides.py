"""Each point's pipeline: the pipeline file with the point's values put at the grid's dotted paths, validated as a
pipeline file.

A path names fields of the pipeline file's schema (``model.params.max_depth``, ``split.boundaries.train``), keys of
its mappings (``sources.flights.location``) and list indexes (``features.0.function``); one that is not a field is
reported at its line of the grid file with the closest field path. The point's pipeline keeps the file's path, so
relative paths resolve against the pipeline file's folder and no file is written anywhere.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import re
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from orchestrator.errors import SpecError
from orchestrator.experiments.grid import LoadedGrid
from orchestrator.pipeline.spec import LoadedPipeline, PipelineSpec, load_pipeline
from orchestrator.yaml_files import read_mapping, spec_error, suggest

Location = tuple[str | int, ...]
_MAX_DEPTH = 8


@dataclass(frozen=True)
class PipelineFile:
    """A validated pipeline file with its data and node tree, what points are made from."""

    pipeline: LoadedPipeline
    data: dict
    node: yaml.Node


def read_pipeline_file(path: Path | str) -> PipelineFile:
    """Load a pipeline file (validated) with its data and node tree.

    Raises:
        SpecError: the file is malformed, or it changed while it was being read.
    """
    pipeline = load_pipeline(path)
    text, node, data = read_mapping(Path(path), "pipeline")
    if hashlib.sha256(text.encode()).hexdigest() != pipeline.sha256:
        raise SpecError(f"{path}: the pipeline file changed while it was being read; run the command again")
    return PipelineFile(pipeline, data, node)


def parameter_locations(grid: LoadedGrid, source: PipelineFile) -> dict[str, Location]:
    """Where each parameter of the grid goes in the pipeline file's data (keys and list indexes).

    Raises:
        SpecError: a path is not a field of the pipeline file; one line per such path, naming the grid file's line
            and the closest field path.
    """
    found, problems = {}, []
    for dotted in grid.spec.parameters:
        try:
            found[dotted] = _resolve(dotted, source.data)
        except ValueError as exc:
            problems.append(f"{grid.path}:{grid.line('parameters', dotted)}: {exc}")
    if problems:
        raise SpecError("\n".join(problems))
    return found


def point_pipeline(source: PipelineFile, locations: dict[str, Location], point: dict[str, Any], number: int,
                   grid: LoadedGrid) -> LoadedPipeline:
    """The pipeline of one point: the file's data with the point's values in place, validated as a pipeline file.

    Args:
        source: the pipeline file the experiment varies.
        locations: each parameter's place in the file (from :func:`parameter_locations`).
        point: dotted path -> value.
        number: the point's number, for messages.
        grid: the grid file, for messages.

    Raises:
        SpecError: the point's values make an invalid pipeline; names the grid file's line of the parameter at
            fault, the point, and what the pipeline file's schema says about it.
    """
    data = copy.deepcopy(source.data)
    for dotted, value in point.items():
        _put(data, locations[dotted], copy.deepcopy(value))
    try:
        spec = PipelineSpec.model_validate(data)
    except ValidationError as exc:
        detail = str(spec_error(source.pipeline.path, source.node, exc, PipelineSpec)).replace("\n", "\n  ")
        line = grid.line("parameters", _culprit(exc, locations, point))
        raise SpecError(f"{grid.path}:{line}: point {number} ({describe_point(point)}) is not a valid pipeline:\n"
                        f"  {detail}") from None
    loaded = copy.copy(source.pipeline)
    loaded.spec = spec  # the file's path, folder and sha256 stay: it is the file's pipeline, at this point
    return loaded


def describe_point(point: dict[str, Any]) -> str:
    """``model.params.max_depth=3, split.boundaries.train='2013-06-01'``."""
    return ", ".join(f"{path}={value!r}" for path, value in point.items())


def _put(data: dict, location: Location, value: Any) -> None:
    target: Any = data
    for part in location[:-1]:
        if isinstance(part, int):
            target = target[part]
            continue
        inner = target.get(part)
        if not isinstance(inner, (dict, list)):  # a section the file leaves out (or sets to null) is created
            inner = target[part] = {}
        target = inner
    target[location[-1]] = value


def _culprit(exc: ValidationError, locations: dict[str, Location], point: dict[str, Any]) -> str:
    """The parameter whose path a validation error is on (or under, or above); else the first parameter."""
    for error in exc.errors():
        where = tuple(str(part) for part in error["loc"])
        for dotted in point:
            mine = tuple(str(part) for part in locations[dotted])
            shorter = min(len(where), len(mine))
            if shorter and where[:shorter] == mine[:shorter]:
                return dotted
    return next(iter(point))


# ---------------------------------------------------------------- paths through the pipeline file's schema


def _unwrap(annotation: Any) -> Any:
    """``X | None`` and ``Annotated[X, ...]`` down to ``X`` (a model, a container, or a plain type)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _unwrap(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        options = [arg for arg in get_args(annotation) if arg is not type(None)]
        structured = [arg for arg in options if _is_model(_unwrap(arg)) or get_origin(_unwrap(arg)) in (dict, list)]
        return _unwrap((structured or options)[0]) if len(options) == 1 or structured else Any
    return annotation


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _literal_keys(annotation: Any) -> tuple | None:
    annotation = _unwrap(annotation)
    return get_args(annotation) if get_origin(annotation) is Literal else None


def _resolve(dotted: str, data: dict) -> Location:
    """The location of ``dotted`` in the pipeline data, checked against the schema.

    Raises:
        ValueError: the path leaves the schema; says where, what is there, and the closest field path.
    """
    parts = dotted.split(".")
    if not all(parts):
        raise ValueError(f"{dotted!r} is not a dotted path such as model.params.max_depth")
    annotation: Any = PipelineSpec
    value: Any = data
    location: list[str | int] = []
    for index, part in enumerate(parts):
        here, rest = ".".join(parts[:index]), parts[index + 1:]
        kind = _unwrap(annotation)
        if kind is Any:  # free data (estimator parameters, reader options): anything goes below
            location.append(int(part) if isinstance(value, list) and part.isdigit() else part)
        elif _is_model(kind):
            if part not in kind.model_fields:
                raise ValueError(_unknown(dotted, here, part, rest, list(kind.model_fields), annotation, value))
            location.append(part)
            annotation = kind.model_fields[part].annotation
        elif get_origin(kind) is dict:
            key_type, annotation = get_args(kind)
            keys = _literal_keys(key_type)
            present = list(value) if isinstance(value, dict) else []
            if keys is not None and part not in keys:
                raise ValueError(_unknown(dotted, here, part, rest, list(keys), kind, value))
            if keys is None and _is_model(_unwrap(annotation)) and rest and part not in present:
                raise ValueError(f"the pipeline file has no {part!r} under {here!r}{suggest(part, present)}; it has: "
                                 f"{', '.join(map(str, present)) or 'none'}")
            location.append(part)
        elif get_origin(kind) in (list, tuple):
            items = value if isinstance(value, list) else []
            if not (part.isdigit() and int(part) < len(items)):
                span = f"an index from 0 to {len(items) - 1}" if items else "no index: the file's list is empty"
                raise ValueError(f"{here!r} is a list of {len(items)} in the pipeline file: {part!r} is not an "
                                 f"index of it ({span})")
            location.append(int(part))
            annotation = get_args(kind)[0]
        else:
            raise ValueError(f"{here!r} is a single value: it has no field {part!r}; give {here!r} itself as the "
                             "parameter")
        value = _child(value, location[-1])
    return tuple(location)


def _child(value: Any, part: str | int) -> Any:
    if isinstance(part, int) and isinstance(value, list):
        return value[part] if part < len(value) else None
    return value.get(part) if isinstance(value, dict) else None


def _unknown(dotted: str, here: str, part: str, rest: list[str], names: list, annotation: Any, value: Any) -> str:
    """An unknown field's message: the path, the closest field path, and the fields that are there."""
    prefix = f"{here}." if here else ""
    close = difflib.get_close_matches(part, [str(n) for n in names], n=1, cutoff=0.6)
    if close:
        guess = prefix + ".".join([close[0], *rest])
    else:
        guess = _closest_path(part, rest, annotation, value, prefix)
    hint = f" (did you mean {guess!r}?)" if guess else ""
    where = f"{here!r} has" if here else "a pipeline file has"
    return f"unknown field {dotted!r}{hint}; {where}: {', '.join(map(str, names))}"


def _words(text: str) -> set[str]:
    return {word for word in re.split(r"[._\-]", text.lower()) if word}


def _closest_path(part: str, rest: list[str], annotation: Any, value: Any, prefix: str) -> str | None:
    """The field path below ``prefix`` sharing most words with what was written (``split.train_until`` ->
    ``split.boundaries.train``), preferring a field the file sets."""
    wanted = _words(".".join([part, *rest]))
    best, best_score = None, (0, False, 0.0)
    for path, present in _paths(annotation, value, _MAX_DEPTH):
        shared = len(wanted & _words(path))
        score = (shared, present, difflib.SequenceMatcher(None, part, path.rsplit(".", 1)[-1]).ratio())
        if shared and score > best_score:
            best, best_score = prefix + path, score
    return best


def _paths(annotation: Any, value: Any, depth: int) -> Iterator[tuple[str, bool]]:
    """Every field path below a place of the schema, each with whether the file sets it."""
    kind = _unwrap(annotation)
    if depth == 0:
        return
    if _is_model(kind):
        entries = [(name, field.annotation) for name, field in kind.model_fields.items()]
    elif get_origin(kind) is dict:
        key_type, inner = get_args(kind)
        keys = _literal_keys(key_type) or (list(value) if isinstance(value, dict) else [])
        entries = [(str(key), inner) for key in keys]
    elif get_origin(kind) in (list, tuple) and isinstance(value, list):
        entries = [(str(index), get_args(kind)[0]) for index in range(len(value))]
    else:
        return
    for name, inner in entries:
        child = _child(value, int(name) if isinstance(value, list) else name)
        yield name, child is not None
        for below, present in _paths(inner, child, depth - 1):
            yield f"{name}.{below}", present
