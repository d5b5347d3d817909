"""Decode request bodies into a ``DecodedRequest``: V2 ``/infer`` bodies (JSON tensors or the binary tensor
extension) and the people-friendly ``/predict`` records.

Decoding checks the protocol (names, datatypes, shapes, binary layout) and each element's type; the card's
ranges are validation's (``validate.check_values``). Every refusal is a ``BadRequest`` whose message names the
input (or record and field), what was expected and what came.

V2 tensors are named by the ONNX inputs (the metadata's names); records by the columns (the card's ``name``), and
a record may also name a field by its ONNX input. A V2 tensor named by its column is refused with the input's
name, so that a client learns the one name V2 takes.
"""

from __future__ import annotations

import difflib

import numpy as np
import orjson

from orchestrator.serving.card import InputSpec
from orchestrator.serving.codecs.columns import BadElement, bytes_column, fp32_column, parse_json
from orchestrator.serving.codecs.request import DecodedRequest, RequestedOutput
from orchestrator.serving.errors import BadRequest
from orchestrator.serving.model import LoadedModel


# The fields the protocol defines: any other is refused, so that a misspelt one ("paramters", "output") is an
# error naming it rather than an option silently not taken.
REQUEST_FIELDS = frozenset({"id", "parameters", "inputs", "outputs"})
TENSOR_FIELDS = frozenset({"name", "shape", "datatype", "parameters", "data"})


def _unknown_field(fields, allowed: frozenset, where: str) -> BadRequest:
    unknown = sorted(str(f) for f in fields if f not in allowed)[0]
    close = difflib.get_close_matches(unknown, sorted(allowed), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else f"; the protocol's are {', '.join(sorted(allowed))}"
    return BadRequest(f"{where}: unknown field {unknown[:60]!r}{hint}")


def decode_infer_request(body: bytes, header_length: str | None, model: LoadedModel) -> DecodedRequest:
    """Decode a V2 ``/infer`` body, JSON only or JSON header + binary tensors.

    Args:
        body: The raw request body.
        header_length: The ``Inference-Header-Content-Length`` header, if any.
        model: The model the request is for.

    Returns:
        The request's inputs as ``(rows, 1)`` arrays, and the outputs it asks for.

    Raises:
        BadRequest: anything about the request does not match the protocol or the model.
    """
    binary = None
    if header_length is not None:
        try:
            length = int(header_length)
        except ValueError as exc:
            raise BadRequest(
                f"Inference-Header-Content-Length: expected an integer, got {header_length[:30]!r}") from exc
        if not 0 <= length <= len(body):
            raise BadRequest(f"Inference-Header-Content-Length {length} is outside the body's {len(body)} bytes")
        binary = memoryview(body)[length:]
        body = body[:length]
    payload = parse_json(body)
    if type(payload) is not dict or type(payload.get("inputs")) is not list:
        raise BadRequest("expected a JSON object with an 'inputs' list")
    if not payload.keys() <= REQUEST_FIELDS:
        raise _unknown_field(payload, REQUEST_FIELDS, "request")
    specs = model.input_specs
    feeds: dict[str, np.ndarray] = {}
    columns: dict[str, list] | None = {}
    offset = 0
    rows = None
    for item in payload["inputs"]:
        # The usual input (JSON data of shape [N, 1], no parameters) passes the protocol's checks at a glance.
        # Any other, or one with an element refused here (its data may be nested), goes the careful way, which
        # checks each part in turn and names what is wrong. Both ways use the same element checks.
        if type(item) is dict and "parameters" not in item and item.keys() <= TENSOR_FIELDS:
            name = item.get("name")
            spec = specs.get(name) if type(name) is str else None
            values = item.get("data")
            shape = item.get("shape")
            if (spec is not None and item.get("datatype") == spec.datatype and type(values) is list and values
                    and type(shape) is list and len(shape) == 2 and type(shape[0]) is int
                    and shape[0] == len(values) and type(shape[1]) is int and shape[1] == 1):
                try:
                    array, values = (fp32_column if spec.datatype == "FP32" else bytes_column)(values, spec)
                except BadElement:
                    pass  # the careful way flattens nested data, or names the element
                else:
                    if name in feeds:
                        raise _given_twice(name)
                    feeds[name] = array
                    if columns is not None:
                        columns[name] = values
                    if rows is None:
                        rows = len(values)
                    elif rows != len(values):
                        rows = -1
                    continue
        name, spec, values, array, offset = _decode_input(item, model, binary, offset)
        if values is None:
            columns = None
        else:
            array, values = _json_column(name, values, spec)
            if columns is not None:
                columns[name] = values
        if name in feeds:
            raise _given_twice(name)
        feeds[name] = array
        rows = -1  # counted again below
    if len(feeds) != len(specs):
        _check_complete(feeds, model)
    if rows is None or rows < 0:
        rows = _common_rows(feeds)
    request_id = payload.get("id")
    return DecodedRequest(
        feeds=feeds,
        rows=rows,
        outputs=_requested_outputs(payload, model),
        request_id=request_id if type(request_id) is str else None,
        columns=columns,
    )


def decode_records(body: bytes, model: LoadedModel) -> DecodedRequest:
    """Decode the people-friendly body ``{"records": [{column: value, ...}, ...]}`` (or a bare list of records).

    Args:
        body: The raw request body.
        model: The model the request is for.

    Returns:
        One ``(rows, 1)`` array per model input, and every output of the model (as JSON).

    Raises:
        BadRequest: a record misses a column or holds a value of the wrong type; the message names record and field.
    """
    payload = parse_json(body)
    records = payload.get("records") if isinstance(payload, dict) else payload
    if not isinstance(records, list) or not records:
        raise BadRequest('expected {"records": [{column: value, ...}, ...]} with at least one record')
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise BadRequest(f"record {index}: expected an object of column: value, got {type(record).__name__}")
    feeds, columns = {}, {}
    for spec in model.card.inputs:
        column = []
        field = spec.column
        for index, record in enumerate(records):
            if field in record:
                column.append(record[field])
            elif spec.name in record:  # the ONNX input's name, where it differs from the column's
                column.append(record[spec.name])
            else:
                raise BadRequest(f"record {index}: missing field {field!r} ({spec.datatype})")
        try:
            feeds[spec.name], columns[spec.name] = (fp32_column if spec.is_numeric else bytes_column)(column, spec)
        except BadElement as bad:
            raise BadRequest(f"record {bad.index}, field {field!r}: {bad.problem}") from None
    return DecodedRequest(feeds=feeds, rows=len(records), columns=columns,
                          outputs=[RequestedOutput(name, False) for name in model.output_names])


def _json_column(name: str, values: list, spec: InputSpec) -> tuple[np.ndarray, list]:
    """One input's flat JSON values as its column (see ``columns``)."""
    try:
        return (fp32_column if spec.datatype == "FP32" else bytes_column)(values, spec)
    except BadElement as bad:
        raise BadRequest(f"input {name!r}, element {bad.index}: {bad.problem}") from None


def _given_twice(name: str) -> BadRequest:
    return BadRequest(f"input {name!r} is given twice")


def _decode_input(item, model: LoadedModel, binary: memoryview | None, offset: int):
    """Check one V2 input tensor against every part of the protocol, and decode it if it is binary.

    Returns:
        Its name, its spec, its JSON values as a flat list (None for a binary tensor), its ``(rows, 1)`` array (a
        binary tensor's; None for JSON values, which the caller turns into a column) and the new binary offset.
    """
    if not isinstance(item, dict):
        raise BadRequest(f"each input must be an object with name, shape, datatype and data, got {type(item).__name__}")
    name = item.get("name")
    if not isinstance(name, str):
        raise BadRequest("an input has no 'name' (a string)")
    if not item.keys() <= TENSOR_FIELDS:
        raise _unknown_field(item, TENSOR_FIELDS, f"input {name[:60]!r}")
    spec = model.input_specs.get(name)
    if spec is None:
        renamed = model.renamed_columns.get(name)
        if renamed is not None:
            raise BadRequest(f"unknown input {name!r}: V2 tensors use ONNX input names; column {name!r} is input "
                             f"{renamed.name!r} of model {model.name!r}")
        expected = ", ".join(s.name for s in model.card.inputs)
        raise BadRequest(f"unknown input {name!r}: model {model.name!r} expects inputs [{expected}]")
    datatype = item.get("datatype")
    if datatype != spec.datatype:
        raise BadRequest(f"input {name!r}: expected datatype {spec.datatype}, got {datatype!r}")
    rows = _rows_of(item.get("shape"), name, spec)
    parameters = item.get("parameters")
    if parameters is None:
        size = None
    elif isinstance(parameters, dict):
        size = parameters.get("binary_data_size")
    else:
        raise BadRequest(f"input {name!r}: 'parameters' must be an object")
    if size is None:
        if "data" not in item:
            raise BadRequest(f"input {name!r}: no 'data' and no binary_data_size parameter")
        values = _flatten(item["data"], name)
        if len(values) != rows:
            raise BadRequest(f"input {name!r}: shape [{rows}, 1] needs {rows} values, got {len(values)}")
        return name, spec, values, None, offset
    if binary is None:
        raise BadRequest(f"input {name!r}: binary_data_size given but the request has no binary part "
                         "(missing Inference-Header-Content-Length header)")
    if type(size) is not int or size < 0 or offset + size > len(binary):
        raise BadRequest(f"input {name!r}: binary_data_size {size!r} exceeds the {len(binary) - offset} "
                         "bytes of binary data left")
    raw = binary[offset:offset + size]
    if spec.is_numeric:
        if size != 4 * rows:
            raise BadRequest(f"input {name!r}: shape [{rows}, 1] FP32 needs {4 * rows} bytes, got {size}")
        array = np.frombuffer(raw, dtype="<f4").copy()
    else:
        array = np.empty(rows, dtype=object)
        array[:] = _split_bytes_tensor(raw, rows, name)
    return name, spec, None, array.reshape(rows, 1), offset + size


def _rows_of(shape, name: str, spec: InputSpec) -> int:
    if (type(shape) is not list or len(shape) != 2 or type(shape[0]) is not int or shape[0] < 1
            or type(shape[1]) is not int or shape[1] != 1):
        raise BadRequest(
            f"input {name!r}: expected shape [N, 1] with N >= 1 ({spec.datatype}, one column), "
            f"got {orjson.dumps(shape).decode()[:60]}"
        )
    return shape[0]


def _flatten(data, name: str) -> list:
    """Row-major flatten of nested JSON lists (the protocol allows both flat and nested data)."""
    if not isinstance(data, list):
        raise BadRequest(f"input {name!r}: expected 'data' to be a list, got {type(data).__name__}")
    if not data or not isinstance(data[0], list):
        return data
    flat: list = []
    stack = [iter(data)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            flat.append(item)
        else:
            stack.pop()
    return flat


def _split_bytes_tensor(raw: bytes | memoryview, count: int, name: str) -> list[str]:
    """Decode the binary BYTES layout: each element is a 4-byte little-endian length then its bytes."""
    items: list[str] = []
    offset, end = 0, len(raw)
    while offset < end:
        if offset + 4 > end:
            raise BadRequest(f"input {name!r}: truncated BYTES element length at byte {offset}")
        length = int.from_bytes(raw[offset:offset + 4], "little")
        offset += 4
        if offset + length > end:
            raise BadRequest(f"input {name!r}: BYTES element of {length} bytes runs past the tensor's data")
        try:
            items.append(bytes(raw[offset:offset + length]).decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise BadRequest(f"input {name!r}: BYTES element {len(items)} is not UTF-8") from exc
        offset += length
    if len(items) != count:
        raise BadRequest(f"input {name!r}: shape asks for {count} elements, binary data holds {len(items)}")
    return items


def _check_complete(feeds: dict, model: LoadedModel) -> None:
    missing = [spec for spec in model.card.inputs if spec.name not in feeds]
    if missing:
        described = ", ".join(f"{spec.label} ({spec.datatype}, shape [-1, 1])" for spec in missing)
        raise BadRequest(f"missing input(s) {described} for model {model.name!r}")


def _common_rows(feeds: dict[str, np.ndarray]) -> int:
    rows = {name: len(array) for name, array in feeds.items()}
    if len(set(rows.values())) > 1:
        raise BadRequest(f"inputs have different numbers of rows: {rows}")
    return next(iter(rows.values()))


def _requested_outputs(payload: dict, model: LoadedModel) -> list[RequestedOutput]:
    parameters = payload.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise BadRequest("request 'parameters' must be an object")
    binary_default = parameters.get("binary_data_output") is True
    asked = payload.get("outputs")
    if asked is None:
        return _all_outputs(model, binary_default)
    if not isinstance(asked, list):
        raise BadRequest("'outputs' must be a list of {name, parameters} objects")
    outputs = []
    for item in asked:
        name = item.get("name") if isinstance(item, dict) else None
        if name not in model.output_names:
            raise BadRequest(f"unknown output {name!r}: model {model.name!r} has outputs {model.output_names}")
        params = item.get("parameters") or {}
        binary = params.get("binary_data", binary_default) if isinstance(params, dict) else binary_default
        outputs.append(RequestedOutput(name, binary is True))
    return outputs


def _all_outputs(model: LoadedModel, binary: bool) -> list[RequestedOutput]:
    """Every output of the model, all binary or all JSON (the usual request names none): made once per model."""
    cache = model.__dict__.setdefault("_all_outputs", {})
    outputs = cache.get(binary)
    if outputs is None:
        outputs = cache[binary] = [RequestedOutput(name, binary) for name in model.output_names]
    return outputs
