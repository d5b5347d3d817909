"""Preparation steps (filter, derive, drop_nulls, ..., window, user functions) applied lazily to Dask DataFrames."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import linecache
import os
import sys
from pathlib import Path
from typing import Callable

import cloudpickle
import dask.dataframe as dd
import pandas as pd

from orchestrator.errors import SpecError, StageFailed
from orchestrator.pipeline.code_fingerprint import function_fingerprint
from orchestrator.pipeline.declare import check_declaration
from orchestrator.pipeline.spec import Step
from orchestrator.pipeline.windows import add_window_features
from orchestrator.yaml_files import suggest


def load_function(ref: str, base_dir: Path) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """Import ``module:function``, looking in the pipeline's folder first.

    The module is pickled by value, so workers on a remote cluster receive the code without installing it. A module
    edited since this process imported it is imported again: what runs is what the file says, as the cache key is.

    Raises:
        SpecError: the module or the function does not exist.
    """
    module_name, _, attr = ref.partition(":")
    if str(base_dir) not in sys.path:
        sys.path.insert(0, str(base_dir))
    try:
        module = _fresh(importlib.import_module(module_name), base_dir)
    except ImportError as exc:
        raise SpecError(f"function {ref!r}: cannot import module {module_name!r} ({exc})") from exc
    function = getattr(module, attr, None)
    if not callable(function):
        raise SpecError(f"function {ref!r}: module {module_name!r} has no function {attr!r}")
    if not module_name.startswith(("orchestrator.", "pandas", "numpy")):
        cloudpickle.register_pickle_by_value(module)
    return function


# The sha256 of each user module's file when it was imported (by content: timestamps can be coarser than edits).
_IMPORTED: dict[str, str | None] = {}


def _file_state(path: str) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def _source_file(module) -> str | None:
    path = getattr(module, "__file__", None)
    return path if path and path.endswith(".py") else None


def _edited(module) -> bool:
    """Whether the module's file changed since this process imported (or last saw) it."""
    path = _source_file(module)
    if path is None:
        return False
    state = _file_state(path)
    return _IMPORTED.setdefault(module.__name__, state) != state


def _reload(module):
    path = _source_file(module)
    # The compiled file and the source lines cached for ``inspect`` are checked by time and size: an edit within the
    # same tick, keeping the size, would go unseen.
    Path(importlib.util.cache_from_source(path)).unlink(missing_ok=True)
    linecache.cache.pop(path, None)
    module = importlib.reload(module)
    _IMPORTED[module.__name__] = _file_state(path)
    return module


def _fresh(module, base_dir: Path):
    """``module``, imported again when its file, or that of a module of the pipeline's folder (its helpers), changed
    since this process imported it (a long-lived process: a sweep, a tick loop)."""
    folders = tuple({f"{base_dir}{os.sep}", f"{Path(base_dir).resolve()}{os.sep}"})
    helpers = [m for m in list(sys.modules.values())
               if m is not module and (path := _source_file(m)) and path.startswith(folders)]
    edited = [m for m in helpers if _edited(m)]
    for helper in edited:  # first, so that the module imports their new code again
        _reload(helper)
    if _edited(module) or edited:
        module = _reload(module)
    return module


def code_version(steps: list[Step], base_dir: Path) -> str:
    """A hash of the code behind a list of steps: each user function's own code and what it uses
    (``orchestrator.pipeline.code_fingerprint``), so that only the stages running edited code recompute."""
    digest = hashlib.sha256()
    for step in steps:
        if step.function:
            digest.update(function_fingerprint(load_function(step.function, base_dir)).encode())
    return digest.hexdigest()


def _derive(frame: pd.DataFrame, expressions: dict[str, str]) -> pd.DataFrame:
    frame = frame.copy()
    for column, expression in expressions.items():
        frame[column] = frame.eval(expression)
    return frame


def _filter(frame: pd.DataFrame, expression: str) -> pd.DataFrame:
    return frame[frame.eval(expression).fillna(False).astype(bool)]


_LOADED: dict[bytes, Callable] = {}


def _unpack(payload: bytes) -> Callable:
    # Workers unpickle each user function once, not once per partition.
    if payload not in _LOADED:
        _LOADED[payload] = cloudpickle.loads(payload)
    return _LOADED[payload]


def _call_user(frame: pd.DataFrame, payload: bytes, ref: str) -> pd.DataFrame:
    function = _unpack(payload)
    try:
        result = function(frame)
    except Exception as exc:  # user code: report which function failed, keep its traceback as the cause
        raise StageFailed(f"function {ref!r} raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(result, pd.DataFrame):
        raise StageFailed(f"function {ref!r} must return a pandas DataFrame, returned {type(result).__name__}")
    return result


def _meta_of(frame: dd.DataFrame, function: Callable, *args) -> pd.DataFrame:
    """Run a step on a tiny non-empty sample of the schema to learn its output columns and dtypes."""
    sample = frame._meta_nonempty
    try:
        return function(sample, *args).iloc[:0]
    except Exception as exc:
        raise SpecError(f"step cannot be applied to columns {list(frame.columns)}: {type(exc).__name__}: {exc}") from exc


def apply_step(frame: dd.DataFrame, step: Step, base_dir: Path, where: str) -> dd.DataFrame:
    """Apply one step lazily.

    Raises:
        SpecError: the step names a column that does not exist (the message says where the step is declared).
    """
    kind = step.kind
    value = getattr(step, kind)
    _check_columns(frame, step, where)
    if kind == "filter":
        return frame.map_partitions(_filter, value, meta=frame._meta)
    if kind == "derive":
        return frame.map_partitions(_derive, value, meta=_meta_of(frame, _derive, value))
    if kind == "drop_nulls":
        return frame.dropna(subset=value)
    if kind == "fill_nulls":
        return frame.fillna(value)
    if kind == "drop":
        return frame.drop(columns=value)
    if kind == "rename":
        return frame.rename(columns=value)
    if kind == "keep":
        return frame[value]
    if kind == "window":
        return add_window_features(frame, value, where)
    # Shipped by value: workers (local or on a remote cluster) need not have the pipeline's folder on their path.
    function = load_function(value, base_dir)
    payload = cloudpickle.dumps(function)
    meta = _meta_of(frame, _call_user, payload, value)
    if broken := check_declaration(function, value, frame.columns, meta.columns):
        raise SpecError(f"{where}: {broken}")
    return frame.map_partitions(_call_user, payload, value, meta=meta)


def _check_columns(frame: dd.DataFrame, step: Step, where: str) -> None:
    named = {
        "drop_nulls": step.drop_nulls,
        "drop": step.drop,
        "keep": step.keep,
        "rename": list(step.rename or {}),
        "fill_nulls": list(step.fill_nulls or {}),
    }.get(step.kind) or []
    missing = [c for c in named if c not in frame.columns]
    if missing:
        text = ", ".join(f"{c!r}{suggest(c, frame.columns)}" for c in missing)
        raise SpecError(f"{where}: {step.kind} names unknown column {text}; columns are {list(frame.columns)}")


def apply_steps(frame: dd.DataFrame, steps: list[Step], base_dir: Path, where: str) -> dd.DataFrame:
    """Apply steps in order; ``where`` names the section for error messages (e.g. ``sources.flights.steps``)."""
    for index, step in enumerate(steps):
        frame = apply_step(frame, step, base_dir, f"{where}[{index}]")
    return frame
