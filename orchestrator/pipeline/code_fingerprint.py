"""Fingerprints of user functions for the stage cache: a function's own code and what it uses, nothing else.

A fingerprint covers the function's source with comments, docstrings and layout left out (its syntax tree), its
default arguments and closure, and, followed transitively through the names its code reads: the functions and
classes of the user's own code it calls, the module constants it reads, and the version of every installed library it
uses (``np`` -> numpy's version). Editing a comment, a docstring or an unrelated function of the same module changes
nothing; editing the function, a helper it calls or a constant it reads changes the fingerprint, so exactly the stages
running that code (and what depends on them) are recomputed. The standard library counts as Python's own.
"""

from __future__ import annotations

import ast
import dis
import functools
import hashlib
import inspect
import json
import math
import sys
import textwrap
import types
from importlib import metadata
from typing import Any

# Constants larger than this are fingerprinted by their digest, not their text.
_LARGE = 10_000


def function_fingerprint(function: Any) -> str:
    """The sha256 of ``function``'s code and of everything it uses (``code_dependencies``).

    Args:
        function: a function (a lambda, a closure, a ``functools.partial`` or a callable object work too).

    Returns:
        A hex digest that changes exactly when the code the function runs changes.
    """
    return hashlib.sha256(json.dumps(code_dependencies(function), sort_keys=True).encode()).hexdigest()


def code_dependencies(function: Any) -> dict:
    """What ``function``'s fingerprint is made of, JSON-able.

    Returns:
        ``root`` (how the function itself is named in ``code``), ``code`` (each piece of user code reached, by
        ``module:qualified name``: its syntax tree, defaults, closure and the names it uses, each bound to a value,
        to other code or to a library) and ``libraries`` (distribution name: version, for every library used).
    """
    walk = _Walk()
    root = walk.value(function)
    return {"root": root, "code": walk.code, "libraries": walk.libraries}


@functools.lru_cache(maxsize=1)
def _distributions() -> dict[str, list[str]]:
    return metadata.packages_distributions()


@functools.cache
def _library(module_name: str) -> tuple[str, str] | None:
    """The installed distribution providing ``module_name`` and its version; None for the user's own code."""
    top = module_name.split(".")[0]
    for distribution in _distributions().get(top, []):
        try:
            return distribution, metadata.version(distribution)
        except metadata.PackageNotFoundError:
            continue
    return None


def _is_stdlib(module_name: str) -> bool:
    top = module_name.split(".")[0]
    return top in sys.stdlib_module_names or top in sys.builtin_module_names


class _StripDocstrings(ast.NodeTransformer):
    """Docstrings are documentation: editing one must not recompute anything."""

    def _strip(self, node):
        self.generic_visit(node)
        body = getattr(node, "body", None)
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
        return node

    visit_Module = visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _strip


def _source_tree(obj: Any) -> str | None:
    """The object's source as a syntax tree without comments, docstrings or layout; None without a source."""
    try:
        source = inspect.getsource(obj)
    except (OSError, TypeError):
        return None
    try:
        tree = ast.parse(textwrap.dedent(source))
    except SyntaxError:  # a lambda inside a larger expression: its lines alone do not parse
        return None
    return ast.dump(_StripDocstrings().visit(tree), include_attributes=False)


def _bytecode(code: types.CodeType) -> dict:
    """Code without a usable source (a lambda within an expression, code made at run time), by what it executes."""
    return {
        "bytecode": hashlib.sha256(code.co_code).hexdigest(),
        "names": list(code.co_names),
        "arguments": [code.co_argcount, code.co_posonlyargcount, code.co_kwonlyargcount, list(code.co_varnames)],
        "free": list(code.co_freevars),
        "consts": [_bytecode(c) if isinstance(c, types.CodeType) else _constant(c) for c in code.co_consts],
    }


def _codes(code: types.CodeType) -> list[types.CodeType]:
    """The code and every code nested in it (inner functions, lambdas, comprehensions)."""
    return [code] + [inner for const in code.co_consts if isinstance(const, types.CodeType) for inner in _codes(const)]


def _names(code: types.CodeType) -> list[str]:
    """Every global and attribute name the code reads (of which the module's globals are the ones that matter)."""
    return list(dict.fromkeys(name for inner in _codes(code) for name in inner.co_names))


def _imports(code: types.CodeType) -> list[str]:
    """The modules the code imports itself (``import x`` inside a function)."""
    return list(dict.fromkeys(instruction.argval for inner in _codes(code)
                              for instruction in dis.get_instructions(inner) if instruction.opname == "IMPORT_NAME"))


def _constant(value: Any) -> Any:
    """A JSON-able, deterministic token of a plain value; other objects by their type (and text, when stable)."""
    if value is None or isinstance(value, (bool, int, str)):
        return [type(value).__name__, value]
    if isinstance(value, float):
        return ["float", repr(value) if math.isfinite(value) else str(value)]
    if isinstance(value, (bytes, bytearray)):
        return ["bytes", hashlib.sha256(bytes(value)).hexdigest()]
    if isinstance(value, (tuple, list)):
        return [type(value).__name__, [_constant(v) for v in value]]
    if isinstance(value, (set, frozenset)):
        return [type(value).__name__, sorted((_constant(v) for v in value), key=json.dumps)]
    if isinstance(value, dict):
        return ["dict", [[_constant(k), _constant(v)] for k, v in value.items()]]
    kind = f"{type(value).__module__}.{type(value).__qualname__}"
    if hasattr(value, "tobytes") and hasattr(value, "dtype"):  # numpy arrays and scalars
        return [kind, str(value.dtype), list(getattr(value, "shape", ())), hashlib.sha256(value.tobytes()).hexdigest()]
    text = repr(value)
    if " at 0x" in text:  # an address, different in every process: the type is all that is stable
        return [kind]
    return [kind, text if len(text) <= _LARGE else hashlib.sha256(text.encode()).hexdigest()]


class _Walk:
    """Follows a function to everything it uses; ``code`` holds each piece of user code once, by its name."""

    def __init__(self) -> None:
        self.code: dict[str, dict] = {}
        self.libraries: dict[str, str] = {}
        self._keys: dict[int, str] = {}
        self._seen: list[Any] = []  # keeps walked objects alive, so that no id is reused during the walk

    def _key(self, obj: Any) -> tuple[str, bool]:
        """A name for ``obj`` in ``code`` and whether it is new; objects sharing a qualified name (closures made by
        one factory, lambdas) are told apart by their order of appearance, which the code's order fixes."""
        if id(obj) in self._keys:
            return self._keys[id(obj)], False
        key = base = f"{getattr(obj, '__module__', None) or ''}:{obj.__qualname__}"
        count = 1
        while key in self.code:
            count += 1
            key = f"{base}#{count}"
        self._keys[id(obj)] = key
        self._seen.append(obj)
        return key, True

    def value(self, value: Any) -> Any:
        """A token for ``value`` as something a function uses; user code is walked into ``code``."""
        if isinstance(value, types.ModuleType):
            return self._module(value)
        if isinstance(value, (tuple, list)):  # containers are walked: a table of lambdas is code
            return [type(value).__name__, [self.value(v) for v in value]]
        if isinstance(value, (set, frozenset)):
            return [type(value).__name__, sorted((self.value(v) for v in value), key=json.dumps)]
        if isinstance(value, dict):
            return ["dict", [[self.value(k), self.value(v)] for k, v in value.items()]]
        if isinstance(value, functools.partial):
            return ["partial", self.value(value.func), [self.value(a) for a in value.args],
                    {k: self.value(v) for k, v in sorted(value.keywords.items())}]
        if isinstance(value, types.MethodType):
            return ["method", self.value(value.__func__), self.value(value.__self__)]
        if isinstance(value, (staticmethod, classmethod)):
            return self.value(value.__func__)
        if isinstance(value, (types.FunctionType, type)):
            return self._defined(value)
        if isinstance(value, types.BuiltinFunctionType):
            module = getattr(value, "__module__", None) or ""
            return ["builtin", module, value.__name__, self._version_of(module)]
        if callable(value) and _is_user(type(value)):
            return ["instance", self._defined(type(value)), _constant(getattr(value, "__dict__", None))]
        # A plain value, or a library's object (a numpy ufunc, a compiled pattern): its value and its library.
        return ["value", _constant(value), self._version_of(type(value).__module__)]

    def _version_of(self, module_name: str) -> str | None:
        library = _library(module_name) if module_name else None
        if library:
            self.libraries[library[0]] = library[1]
            return library[0]
        return None

    def _module(self, module: types.ModuleType) -> list:
        name = module.__name__
        if library := self._version_of(name):
            return ["library", library]
        if _is_stdlib(name) or getattr(module, "__file__", None) is None:
            return ["python", name]
        # A module of the user's own (a helpers file beside the pipeline) used by attribute: all of its code.
        key = f"module {name}"
        if key not in self.code:
            self.code[key] = {"source": _source_tree(module)}
        return ["module", key]

    def _defined(self, obj: Any) -> list:
        """A function or class: a library's by its version, the user's by its code and what that code uses."""
        module = getattr(obj, "__module__", None) or ""
        if library := self._version_of(module):
            return ["library", library, getattr(obj, "__qualname__", "")]
        if _is_stdlib(module) or module == "builtins":
            return ["python", module, getattr(obj, "__qualname__", "")]
        key, new = self._key(obj)
        if not new:  # walked already (recursion, or two names for one helper)
            return ["code", key]
        entry: dict[str, Any] = {}
        self.code[key] = entry
        if isinstance(obj, type):
            entry["source"] = _source_tree(obj)
            entry["bases"] = [self.value(base) for base in obj.__bases__]
            methods = [m for m in vars(obj).values()
                       if isinstance(m, (types.FunctionType, staticmethod, classmethod, property))]
            functions = [f for m in methods for f in ((m.fget, m.fset) if isinstance(m, property) else (m,)) if f]
            codes = [(f.__func__ if isinstance(f, (staticmethod, classmethod)) else f) for f in functions]
            entry["uses"] = self._globals(codes)
            return ["code", key]
        source = _source_tree(obj)
        entry["source"] = source if source is not None else _bytecode(obj.__code__)
        entry["defaults"] = [self.value(v) for v in obj.__defaults__ or ()]
        entry["kwdefaults"] = {k: self.value(v) for k, v in sorted((obj.__kwdefaults__ or {}).items())}
        entry["closure"] = {name: self.value(_cell(cell))
                            for name, cell in zip(obj.__code__.co_freevars, obj.__closure__ or ())}
        entry["uses"] = self._globals([obj])
        return ["code", key]

    def _globals(self, functions: list[types.FunctionType]) -> dict[str, Any]:
        """What the names the functions' code reads are bound to in their modules (names bound nowhere: builtins,
        attributes, locals of an inner scope, are skipped; an import inside a function counts by its module)."""
        uses: dict[str, Any] = {}
        for function in functions:
            scope = function.__globals__
            for name in _names(function.__code__):
                if name in uses:
                    continue
                if name in scope:
                    uses[name] = self.value(scope[name])
            for name in _imports(function.__code__):
                if name in uses:
                    continue
                if library := self._version_of(name):  # whether imported yet or not (the function has not run)
                    uses[name] = ["library", library]
                elif name in sys.modules:
                    uses[name] = self._module(sys.modules[name])
                else:
                    uses[name] = ["import", name]
        return uses


def _cell(cell) -> Any:
    try:
        return cell.cell_contents
    except ValueError:  # a cell not filled yet
        return None


def _is_user(cls: type) -> bool:
    module = getattr(cls, "__module__", "") or ""
    return not (_library(module) or _is_stdlib(module) or module == "builtins")
