"""ONNX input names for feature columns of any name, and the renaming of an exported graph's inputs to them.

A column may be called ``Amount (EUR)``, ``unit.price``, ``Größe`` or ``2nd try``; an ONNX input name should be an
identifier. A name that already is one (``[A-Za-z_][A-Za-z0-9_]*``) is kept as it is, so models of such columns
export exactly as before. Any other is transliterated to lower-case ASCII (accents dropped, ``ß`` to ``ss``...),
every run of other characters becomes ``_``, a leading digit gets a ``_`` before it, an empty result is ``input``,
and a name already taken (by a kept name, an earlier input or a value of the graph such as an output) gets ``_2``,
``_3``... The result depends only on the feature list, in its order, and on the graph's own names.

skl2onnx names a graph's inputs its own way (``Amount__EUR_``); :func:`rename_graph_inputs` gives them ours.
"""

from __future__ import annotations

import re
import unicodedata

import onnx

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NOT_ALPHANUMERIC = re.compile(r"[^a-z0-9]+")
# Letters that Unicode does not decompose into an ASCII letter and a mark.
_LETTERS = str.maketrans({"ß": "ss", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ø": "o", "Ø": "O", "đ": "d",
                          "Đ": "D", "ł": "l", "Ł": "L", "þ": "th", "Þ": "TH", "ð": "d", "Ð": "D", "ı": "i"})
EMPTY_NAME = "input"


def is_onnx_identifier(name: str) -> bool:
    """Whether ``name`` is kept as its own ONNX input name."""
    return _IDENTIFIER.fullmatch(name) is not None


def sanitise(name: str) -> str:
    """``name`` as an identifier, before any collision suffix (``Amount (EUR)`` -> ``amount_eur``)."""
    if is_onnx_identifier(name):
        return name
    ascii_text = unicodedata.normalize("NFKD", name.translate(_LETTERS)).encode("ascii", "ignore").decode()
    text = _NOT_ALPHANUMERIC.sub("_", ascii_text.lower()).strip("_") or EMPTY_NAME
    return "_" + text if text[0].isdigit() else text


def onnx_input_names(columns: list[str], reserved: frozenset[str] = frozenset()) -> dict[str, str]:
    """The ONNX input name of every column: valid, unique, deterministic.

    Args:
        columns: the feature columns, in input order (unique).
        reserved: names no input may take (the graph's outputs, say).

    Returns:
        ``{column: ONNX name}`` in the order of ``columns``.
    """
    # Names kept as they are come first, so that a sanitised name never takes one of them.
    taken = set(reserved) | {c for c in columns if is_onnx_identifier(c) and c not in reserved}
    names = {}
    for column in columns:
        if is_onnx_identifier(column) and column not in reserved:
            names[column] = column
            continue
        base = sanitise(column)
        candidate, n = base, 1
        while candidate in taken:
            n += 1
            candidate = f"{base}_{n}"
        taken.add(candidate)
        names[column] = candidate
    return names


def graph_names(graph: onnx.GraphProto) -> set[str]:
    """Every value name a graph uses: inputs, outputs, initializers and node outputs."""
    names = {v.name for v in graph.input} | {v.name for v in graph.output} | {t.name for t in graph.initializer}
    for node in graph.node:
        names.update(node.output)
    return names


def rename_graph_inputs(model: onnx.ModelProto, new_names: list[str]) -> onnx.ModelProto:
    """Give the graph's inputs, in order, the names ``new_names`` (in place), and every node reading them.

    Args:
        model: the exported model.
        new_names: one name per graph input, in the graph's input order.

    Returns:
        ``model``.

    Raises:
        ValueError: the counts differ, or a new name is a value of the graph other than the input it renames.
    """
    graph = model.graph
    if len(new_names) != len(graph.input):
        raise ValueError(f"{len(new_names)} names for {len(graph.input)} graph inputs")
    renames = {old.name: new for old, new in zip(graph.input, new_names) if old.name != new}
    clashes = (graph_names(graph) - set(renames)) & set(renames.values())
    if clashes:
        raise ValueError(f"input names {sorted(clashes)} are already values of the graph")
    for value in graph.input:
        value.name = renames.get(value.name, value.name)
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name in renames:
                node.input[i] = renames[name]
    return model
