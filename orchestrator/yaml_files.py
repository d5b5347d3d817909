"""Reading the YAML files users write (pipeline, cluster and endpoint files) so that every mistake can be reported
by file and line, and the one formatter of their mistakes (``file:line: field: message``, with "did you mean")."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from orchestrator.errors import SpecError

ModelT = TypeVar("ModelT", bound=BaseModel)


def read_mapping(path: Path, kind: str) -> tuple[str, yaml.Node, dict]:
    """Read a YAML file that must hold a mapping; return its text, its node tree (for line numbers) and its data.

    Args:
        path: the file.
        kind: what the file is, for messages (``pipeline``, ``cluster``...).

    Raises:
        SpecError: the file cannot be read, is not YAML, or is not a mapping; the message names file and line.
    """
    try:
        text = path.read_text()
    except OSError as exc:
        raise SpecError(f"{path}: cannot read the {kind} file ({exc.strerror})") from exc
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise SpecError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    if not isinstance(data, dict):
        raise SpecError(f"{path}:1: expected a mapping of {kind} fields, got {type(data).__name__}")
    return text, node, data


def load_spec(path: Path, model: type[ModelT], kind: str, overrides: dict | None = None) -> ModelT:
    """Read a YAML file of ``kind`` and validate it as ``model``, with ``overrides`` (None values ignored) on top.

    Raises:
        SpecError: the file is missing, is not YAML, or a field is wrong; names file, line and field.
    """
    path = Path(path)
    _, node, data = read_mapping(path, kind)
    data = {**data, **{k: v for k, v in (overrides or {}).items() if v is not None}}
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise spec_error(path, node, exc, model) from None


def line_of(node: yaml.Node | None, loc: tuple) -> int | None:
    """Follow a location (mapping keys and list indexes) through the node tree to its line (1-based); a location
    that leaves the tree points at the closest existing parent."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if key_node.value == str(part):
                    line, node = key_node.start_mark.line + 1, value_node
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def suggest(word: str, choices: Iterable) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, or nothing when none is close.

    Args:
        word: What the user wrote.
        choices: The valid names.

    Returns:
        The suggestion, starting with a space, or an empty string.
    """
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def spec_error(path: Path, node: yaml.Node | None, exc: ValidationError, model: type[BaseModel]) -> SpecError:
    """One SpecError listing every problem of a pydantic ``ValidationError``, one ``file:line: field: message`` a
    line; an unknown field or choice names the closest valid one.

    Args:
        path: The file the data was read from.
        node: Its YAML node tree (from :func:`read_mapping`), for line numbers.
        exc: What pydantic found wrong.
        model: The model the whole file was validated against (``PipelineSpec``, ``ClusterSpec``...), whose fields
            are the valid names an unknown field is compared with.

    Returns:
        The error to raise, e.g. ``pipeline.yaml:23: unknown field 'split.boundaires' (did you mean 'boundaries'?)``.
    """
    problems = []
    for error in exc.errors():
        location = _error_location(tuple(error["loc"]))
        problems.append(f"{path}:{line_of(node, location) or 1}: {_describe(model, {**error, 'loc': location})}")
    return SpecError("\n".join(problems))


def _describe(model: type[BaseModel], error: dict) -> str:
    location = error["loc"]
    field = ".".join(str(part) for part in location)
    if error["type"] == "extra_forbidden":
        owner = _model_at(model, location[:-1])
        known = list(owner.model_fields) if owner else []
        expected = f"; expected one of: {', '.join(known)}" if known else ""
        return f"unknown field {field!r}{suggest(location[-1], known)}{expected}"
    if error["type"] in ("literal_error", "enum"):
        expected = error.get("ctx", {}).get("expected", "")
        options = re.findall(r"'([^']*)'", expected)
        return f"field {field!r}: got {error['input']!r}, expected {expected}{suggest(error['input'], options)}"
    if error["type"] == "missing":
        return f"field {field!r} is required"
    message = error["msg"].removeprefix("Value error, ")
    return f"{field}: {message}" if field else message


def _error_location(location: tuple) -> tuple:
    # pydantic puts a model-level validator's error on the model itself; union branches add type names.
    return tuple(
        part for part in location
        if not (isinstance(part, str) and part[:1].isupper() or part in ("str", "int", "float"))
    )


def _model_at(model: type[BaseModel], location: tuple) -> type[BaseModel] | None:
    """The pydantic model that owns the mapping at ``location`` (for suggesting field names)."""
    annotation: Any = model
    for part in location:
        annotation = _container_or_model(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(str(part))
            if field is None:
                return None
            annotation = field.annotation
        elif getattr(annotation, "__origin__", None) in (list, dict):
            annotation = annotation.__args__[-1]  # the part is a list index or a dict key
        else:
            return None
    annotation = _container_or_model(annotation)
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _container_or_model(annotation: Any) -> Any:
    """Strip ``X | None`` down to the model or container inside it."""
    if getattr(annotation, "__origin__", None) in (list, dict):
        return annotation
    if isinstance(annotation, type):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        if getattr(arg, "__origin__", None) in (list, dict) or (isinstance(arg, type) and issubclass(arg, BaseModel)):
            return arg
    return annotation
