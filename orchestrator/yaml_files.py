"""Reading the YAML files users write (pipeline, cluster and deploy files) so that every mistake can be reported
by file and line."""

from __future__ import annotations

from pathlib import Path

import yaml

from orchestrator.errors import SpecError


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


def spec_error(path: Path, node: yaml.Node | None, exc) -> SpecError:
    """One SpecError listing every problem of a pydantic ``ValidationError`` as ``file:line: field: message``."""
    problems = []
    for error in exc.errors():
        location = tuple(error["loc"])
        field = ".".join(str(p) for p in location) or "(file)"
        message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{path}:{line_of(node, location) or 1}: {field}: {message}")
    return SpecError("\n".join(problems))
