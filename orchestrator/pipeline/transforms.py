"""Preparation steps (filter, derive, drop_nulls, ..., user functions) applied lazily to Dask DataFrames."""

from __future__ import annotations

import hashlib
import importlib
import inspect
import sys
from pathlib import Path
from typing import Callable

import cloudpickle
import dask.dataframe as dd
import pandas as pd

from orchestrator.errors import SpecError, StageFailed
from orchestrator.pipeline.spec import Step
from orchestrator.yaml_files import suggest


def load_function(ref: str, base_dir: Path) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """Import ``module:function``, looking in the pipeline's folder first.

    The module is pickled by value, so workers on a remote cluster receive the code without installing it.

    Raises:
        SpecError: the module or the function does not exist.
    """
    module_name, _, attr = ref.partition(":")
    if str(base_dir) not in sys.path:
        sys.path.insert(0, str(base_dir))
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SpecError(f"function {ref!r}: cannot import module {module_name!r} ({exc})") from exc
    function = getattr(module, attr, None)
    if not callable(function):
        raise SpecError(f"function {ref!r}: module {module_name!r} has no function {attr!r}")
    if not module_name.startswith(("orchestrator.", "pandas", "numpy")):
        cloudpickle.register_pickle_by_value(module)
    return function


def code_version(steps: list[Step], base_dir: Path) -> str:
    """A hash of the source code behind a list of steps, so editing a user function invalidates the cache."""
    digest = hashlib.sha256()
    for step in steps:
        if step.function:
            function = load_function(step.function, base_dir)
            digest.update(inspect.getsource(inspect.getmodule(function)).encode())
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
    # Shipped by value: workers (local or on a remote cluster) need not have the pipeline's folder on their path.
    payload = cloudpickle.dumps(load_function(value, base_dir))
    return frame.map_partitions(_call_user, payload, value, meta=_meta_of(frame, _call_user, payload, value))


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
