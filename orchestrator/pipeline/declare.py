"""What a user function declares about the columns it returns, for the checks made before any stage runs.

A function step is user code: the pipeline's columns after it are unknown until it has run, so the names used
after it are checked only then. Declaring what it adds and drops lets every later step, join, the split and the
model be checked at once::

    from orchestrator.pipeline.declare import columns

    @columns(adds={"route": "string", "late": "int64"}, drops=["arr_delay"])
    def add_features(frame): ...

The declaration is held to when the stage runs: a function whose output differs from it fails the stage.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

ATTRIBUTE = "dataops_columns"


@dataclass(frozen=True)
class DeclaredColumns:
    """The columns a function adds (with their dtypes, ``None`` when not said) and drops."""

    adds: dict[str, str | None] = field(default_factory=dict)
    drops: tuple[str, ...] = ()


def columns(adds: Mapping[str, str] | Iterable[str] = (), drops: Iterable[str] = ()) -> Callable:
    """Declare the columns a step function adds (a list of names, or names and pandas dtypes) and drops.

    Args:
        adds: Columns the function adds (or replaces), e.g. ``["route"]`` or ``{"route": "string"}``.
        drops: Columns of its input that its output no longer has.
    """
    added = dict(adds) if isinstance(adds, Mapping) else dict.fromkeys(adds)
    declared = DeclaredColumns(added, tuple(drops))

    def mark(function: Callable) -> Callable:
        setattr(function, ATTRIBUTE, declared)
        return function

    return mark


def declared_columns(function: Callable) -> DeclaredColumns | None:
    """What ``function`` declares, or None when it declares nothing."""
    declared = getattr(function, ATTRIBUTE, None)
    return declared if isinstance(declared, DeclaredColumns) else None


def check_declaration(function: Callable, ref: str, before: Iterable[str], after: Iterable[str]) -> str | None:
    """How the columns a function returned (``after``, from ``before``) break its declaration, or None.

    A declaration is the whole of what the function changes, since the checks before the run trusted it.
    """
    declared = declared_columns(function)
    if declared is None:
        return None
    before, after = list(before), list(after)
    problems = []
    if missing := [name for name in declared.adds if name not in after]:
        problems.append(f"declares it adds {missing}, but its output has no such column")
    if kept := [name for name in declared.drops if name in after]:
        problems.append(f"declares it drops {kept}, but its output still has them")
    expected = [name for name in before if name not in declared.drops] + list(declared.adds)
    if extra := [name for name in after if name not in expected and name not in kept]:
        problems.append(f"returns columns it does not declare: {extra} (add them to `adds`)")
    if gone := [name for name in before if name not in after and name not in declared.drops]:
        problems.append(f"drops columns it does not declare: {gone} (add them to `drops`)")
    return f"function {ref!r} " + "; ".join(problems) if problems else None
