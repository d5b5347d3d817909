"""Turn Open Inference Protocol tensors (JSON or binary extension) and people-friendly records into the
numpy arrays the model reads, checking each against the model card; and turn outputs back into tensors.

Every rejection is a ``BadRequest`` whose message names the input, what was expected and what came.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np
import orjson

from orchestrator.serving.card import InputSpec
from orchestrator.serving.errors import BadRequest
from orchestrator.serving.model import LoadedModel

REJECT = "reject"
FLAG = "flag"
RANGE_POLICIES = (REJECT, FLAG)
_NUMBER_TYPES = (int, float)
FP32_MAX = float(np.finfo(np.float32).max)
_NUMPY_OF = {"FP32": np.dtype("<f4"), "FP64": np.dtype("<f8"), "INT64": np.dtype("<i8"),
             "INT32": np.dtype("<i4"), "BOOL": np.dtype("?")}


@dataclass
class RequestedOutput:
    name: str
    binary: bool


@dataclass
class DecodedRequest:
    """A checked inference request: one ``(rows, 1)`` array per model input."""

    feeds: dict[str, np.ndarray]
    rows: int
    outputs: list[RequestedOutput]
    request_id: str | None = None
    flags: dict = field(default_factory=dict)
    # The same values as Python lists (JSON paths only): checking a few rows is faster on these than with numpy.
    columns: dict[str, list] | None = None


def _loads(body: bytes):
    """Parse JSON fast; fall back to the standard parser, which also takes the NaN/Infinity literals that
    Python clients (tritonclient among them) write for missing values."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as fast_error:
        try:
            return json.loads(body)
        except (ValueError, RecursionError):
            raise BadRequest(f"request body is not valid JSON: {fast_error}") from None


def _show(value) -> str:
    """A value as the client wrote it (JSON), cut short."""
    try:
        return orjson.dumps(value).decode()[:60]
    except TypeError:  # integers beyond 64 bits, NaN from the lenient parser
        return json.dumps(value)[:60]


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


def _numeric_array(values: list, spec: InputSpec, where: str) -> np.ndarray:
    for index, value in enumerate(values):
        if type(value) not in _NUMBER_TYPES:
            if value is None and spec.nullable:
                continue
            expected = "a number or null" if spec.nullable else "a number"
            raise BadRequest(f"{where(index)}: expected {expected} (FP32), got {_show(value)}")
        if abs(value) > FP32_MAX:
            raise BadRequest(f"{where(index)}: expected a finite FP32 value, got {_show(value)}")
    if spec.nullable:
        values = [math.nan if value is None else value for value in values]
    return np.array(values, dtype=np.float32), values


def _string_array(values: list, spec: InputSpec, where: str) -> np.ndarray:
    for index, value in enumerate(values):
        if type(value) is not str:
            if value is None and spec.nullable:
                continue
            expected = "a string or null" if spec.nullable else "a string"
            raise BadRequest(f"{where(index)}: expected {expected} (BYTES), got {_show(value)}")
    if spec.nullable:
        values = ["" if value is None else value for value in values]
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array, values


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


def _rows_of(shape, name: str, spec: InputSpec) -> int:
    if (type(shape) is not list or len(shape) != 2 or type(shape[0]) is not int or shape[0] < 1
            or type(shape[1]) is not int or shape[1] != 1):
        raise BadRequest(
            f"input {name!r}: expected shape [N, 1] with N >= 1 ({spec.datatype}, one column), "
            f"got {orjson.dumps(shape).decode()[:60]}"
        )
    return shape[0]


def decode_input(item, model: LoadedModel, binary: memoryview | None, offset: int):
    """Decode one V2 input tensor; returns its name, a ``(rows, 1)`` array, the new binary offset and the values
    as a Python list (None for binary tensors)."""
    if not isinstance(item, dict):
        raise BadRequest(f"each input must be an object with name, shape, datatype and data, got {type(item).__name__}")
    name = item.get("name")
    if not isinstance(name, str):
        raise BadRequest("an input has no 'name' (a string)")
    spec = model.input_specs.get(name)
    if spec is None:
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
    if size is not None:
        if binary is None:
            raise BadRequest(f"input {name!r}: binary_data_size given but the request has no binary part "
                             "(missing Inference-Header-Content-Length header)")
        if type(size) is not int or size < 0 or offset + size > len(binary):
            raise BadRequest(f"input {name!r}: binary_data_size {size!r} exceeds the {len(binary) - offset} "
                             "bytes of binary data left")
        raw = binary[offset:offset + size]
        offset += size
        if spec.is_numeric:
            if size != 4 * rows:
                raise BadRequest(f"input {name!r}: shape [{rows}, 1] FP32 needs {4 * rows} bytes, got {size}")
            array = np.frombuffer(raw, dtype="<f4").copy()
        else:
            array = np.empty(rows, dtype=object)
            array[:] = _split_bytes_tensor(raw, rows, name)
        values = None
    else:
        if "data" not in item:
            raise BadRequest(f"input {name!r}: no 'data' and no binary_data_size parameter")
        values = _flatten(item["data"], name)
        if len(values) != rows:
            raise BadRequest(f"input {name!r}: shape [{rows}, 1] needs {rows} values, got {len(values)}")
        where = lambda index: f"input {name!r}, element {index}"  # noqa: E731
        array, values = _numeric_array(values, spec, where) if spec.is_numeric else _string_array(values, spec, where)
    return name, array.reshape(rows, 1), offset, values


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


def decode_infer_request(body: bytes, header_length: str | None, model: LoadedModel) -> DecodedRequest:
    """Decode a V2 ``/infer`` body, JSON only or JSON header + binary tensors.

    Args:
        body: The raw request body.
        header_length: The ``Inference-Header-Content-Length`` header, if any.
        model: The model the request is for.

    Raises:
        BadRequest: anything about the request does not match the protocol or the model.
    """
    binary = None
    if header_length is not None:
        try:
            length = int(header_length)
        except ValueError as exc:
            raise BadRequest(f"Inference-Header-Content-Length: expected an integer, got {header_length[:30]!r}") from exc
        if not 0 <= length <= len(body):
            raise BadRequest(f"Inference-Header-Content-Length {length} is outside the body's {len(body)} bytes")
        binary = memoryview(body)[length:]
        body = body[:length]
    payload = _loads(body)
    if type(payload) is not dict or type(payload.get("inputs")) is not list:
        raise BadRequest("expected a JSON object with an 'inputs' list")
    specs = model.input_specs
    feeds: dict[str, np.ndarray] = {}
    columns: dict[str, list] | None = {}
    offset = 0
    rows = None
    for item in payload["inputs"]:
        # The usual input, a flat JSON list of plain values, is decoded here; anything else by decode_input.
        if type(item) is dict and "parameters" not in item:
            name = item.get("name")
            spec = specs.get(name) if type(name) is str else None
            values = item.get("data")
            shape = item.get("shape")
            if (spec is not None and item.get("datatype") == spec.datatype and type(values) is list and values
                    and type(shape) is list and len(shape) == 2 and shape[1] == 1 and shape[0] == len(values)
                    and type(shape[0]) is int and type(shape[1]) is int):
                array = _plain_array(values, spec)
                if array is not None:
                    if name in feeds:
                        raise BadRequest(f"input {name!r} is given twice")
                    feeds[name] = array
                    if columns is not None:
                        columns[name] = values
                    if rows is None:
                        rows = len(values)
                    elif rows != len(values):
                        rows = -1
                    continue
        name, array, offset, values = decode_input(item, model, binary, offset)
        if name in feeds:
            raise BadRequest(f"input {name!r} is given twice")
        feeds[name] = array
        if values is None:
            columns = None
        elif columns is not None:
            columns[name] = values
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


def _plain_array(values: list, spec: InputSpec) -> np.ndarray | None:
    """``values`` as a ``(rows, 1)`` array when every value is a finite number (FP32) or a string (BYTES); None
    when some value needs the careful path (nulls, nested lists, wrong types), which also names the culprit."""
    if spec.datatype == "FP32":
        for value in values:
            value_type = type(value)
            if (value_type is not float and value_type is not int) or not -FP32_MAX <= value <= FP32_MAX:
                return None
        return np.array(values, dtype=np.float32).reshape(-1, 1)
    for value in values:
        if type(value) is not str:
            return None
    array = np.empty((len(values), 1), dtype=object)
    array[:, 0] = values
    return array


def _check_complete(feeds: dict, model: LoadedModel) -> None:
    missing = [spec for spec in model.card.inputs if spec.name not in feeds]
    if missing:
        described = ", ".join(f"{spec.name!r} ({spec.datatype}, shape [-1, 1])" for spec in missing)
        raise BadRequest(f"missing input(s) {described} for model {model.name!r}")


def _common_rows(feeds: dict[str, np.ndarray]) -> int:
    rows = {name: len(array) for name, array in feeds.items()}
    if len(set(rows.values())) > 1:
        raise BadRequest(f"inputs have different numbers of rows: {rows}")
    return next(iter(rows.values()))


def decode_records(body: bytes, model: LoadedModel) -> DecodedRequest:
    """Decode the people-friendly body ``{"records": [{column: value, ...}, ...]}`` (or a bare list of records).

    Raises:
        BadRequest: a record misses a column or holds a value of the wrong type; the message names record and field.
    """
    payload = _loads(body)
    records = payload.get("records") if isinstance(payload, dict) else payload
    if not isinstance(records, list) or not records:
        raise BadRequest('expected {"records": [{column: value, ...}, ...]} with at least one record')
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise BadRequest(f"record {index}: expected an object of column: value, got {type(record).__name__}")
    feeds, columns = {}, {}
    for spec in model.card.inputs:
        column = []
        for index, record in enumerate(records):
            if spec.name not in record:
                raise BadRequest(f"record {index}: missing field {spec.name!r} ({spec.datatype})")
            column.append(record[spec.name])
        where = lambda index, name=spec.name: f"record {index}, field {name!r}"  # noqa: E731
        array, values = _numeric_array(column, spec, where) if spec.is_numeric else _string_array(column, spec, where)
        feeds[spec.name] = array.reshape(-1, 1)
        columns[spec.name] = values
    return DecodedRequest(feeds=feeds, rows=len(records), columns=columns,
                          outputs=[RequestedOutput(name, False) for name in model.output_names])


class _Limits:
    """A model card's value checks, arranged once per model so that checking a request costs a few array ops."""

    def __init__(self, model: LoadedModel):
        numeric = [spec for spec in model.card.inputs if spec.is_numeric]
        self.numeric = [spec.name for spec in numeric]
        self.specs = numeric
        self.nullable = np.array([spec.nullable for spec in numeric], dtype=bool)
        self.low = np.array([-np.inf if spec.min is None else spec.min for spec in numeric], dtype=np.float32)
        self.high = np.array([np.inf if spec.max is None else spec.max for spec in numeric], dtype=np.float32)
        self.categorical = [spec for spec in model.card.inputs if not spec.is_numeric and spec.allowed is not None]
        self.numeric_bounds = [(spec, -math.inf if spec.min is None else spec.min,
                                math.inf if spec.max is None else spec.max) for spec in numeric]


def _limits(model: LoadedModel) -> _Limits:
    limits = model.__dict__.get("_limits")
    if limits is None:
        limits = model.__dict__["_limits"] = _Limits(model)
    return limits


def _out_of_range(spec: InputSpec, rows: list[int], column: np.ndarray, policy: str, flags: dict) -> None:
    if policy == REJECT:
        row = rows[0]
        if spec.is_numeric:
            expected, got = f"a value in the training range [{spec.min}, {spec.max}]", float(column[row])
        else:
            expected, got = f"one of the training categories {sorted(spec.allowed)[:20]}", column[row]
        raise BadRequest(
            f"input {spec.name!r}, row {row}: expected {expected}, got {got!r}"
            f" ({len(rows)} of {len(column)} values out of range; the server rejects them)"
        )
    flags[spec.name] = rows


PYTHON_CHECK_MAX_ROWS = 64  # below this, plain Python comparisons beat numpy's per-call overhead


def _check_columns(columns: dict[str, list], model: LoadedModel, policy: str) -> dict:
    """``check_values`` on Python lists (values are already finite or NaN: decoding refused the rest)."""
    flags: dict[str, list[int]] = {}
    limits = _limits(model)
    for spec, low, high in limits.numeric_bounds:
        values = columns[spec.name]
        rows = None
        for index, value in enumerate(values):
            if not low <= value <= high:  # False for NaN as well as for a value out of range
                if value != value:
                    if not spec.nullable:
                        raise BadRequest(f"input {spec.name!r}, row {index}: NaN where the model card says not nullable")
                    continue
                if rows is None:
                    rows = []
                rows.append(index)
        if rows:
            _out_of_range(spec, rows, np.asarray(values, dtype=np.float32), policy, flags)
    for spec in limits.categorical:
        values = columns[spec.name]
        allowed = spec.allowed
        rows = [i for i, value in enumerate(values) if value not in allowed and not (spec.nullable and value == "")]
        if rows:
            _out_of_range(spec, rows, np.asarray(values, dtype=object), policy, flags)
    return flags


def check_values(request: DecodedRequest, model: LoadedModel, policy: str) -> dict:
    """Refuse NaN where the card does not allow it and infinities always; check training ranges.

    Args:
        request: The decoded request; its ``flags`` are filled when ``policy`` is "flag".
        model: The model whose card holds the ranges.
        policy: "reject" answers 400 for a value outside the card's range; "flag" accepts and reports it.

    Returns:
        ``{input name: [row indexes outside the range]}`` (empty when everything is in range).

    Raises:
        BadRequest: a value is NaN/infinite where not allowed, or out of range under "reject".
    """
    if request.columns is not None and request.rows <= PYTHON_CHECK_MAX_ROWS:
        flags = _check_columns(request.columns, model, policy)
        request.flags = flags
        return flags
    limits = _limits(model)
    flags: dict[str, list[int]] = {}
    feeds = request.feeds
    if limits.numeric:
        matrix = np.hstack([feeds[name] for name in limits.numeric])
        nan = np.isnan(matrix)
        if nan.any():
            refused = nan & ~limits.nullable
            if refused.any():
                row, col = (int(i[0]) for i in np.nonzero(refused))
                raise BadRequest(f"input {limits.numeric[col]!r}, row {row}: NaN where the model card says not nullable")
        infinite = np.isinf(matrix)
        if infinite.any():
            row, col = (int(i[0]) for i in np.nonzero(infinite))
            raise BadRequest(f"input {limits.numeric[col]!r}, row {row}: expected a finite FP32 value, "
                             f"got {float(matrix[row, col])}")
        outside = (matrix < limits.low) | (matrix > limits.high)  # NaN compares False: nulls are never flagged
        if outside.any():
            for col in np.flatnonzero(outside.any(axis=0)):
                _out_of_range(limits.specs[col], np.flatnonzero(outside[:, col]).tolist(), matrix[:, col], policy, flags)
    for spec in limits.categorical:
        column = feeds[spec.name][:, 0]
        allowed = spec.allowed
        rows = [i for i, value in enumerate(column) if value not in allowed and not (spec.nullable and value == "")]
        if rows:
            _out_of_range(spec, rows, column, policy, flags)
    request.flags = flags
    return flags


def _bytes_tensor(array: np.ndarray) -> bytes:
    parts = []
    for value in array.reshape(-1):
        data = value if isinstance(value, bytes) else str(value).encode("utf-8")
        parts.append(len(data).to_bytes(4, "little"))
        parts.append(data)
    return b"".join(parts)


def encode_infer_response(model: LoadedModel, request: DecodedRequest, results: dict[str, np.ndarray]) -> tuple[bytes, int | None]:
    """Encode a V2 response; returns the body and, when some outputs are binary, the JSON header length."""
    outputs = []
    chunks = []
    datatypes = {meta.name: meta.datatype for meta in model.outputs}
    for wanted in request.outputs:
        array = results[wanted.name]
        entry = {"name": wanted.name, "datatype": datatypes[wanted.name], "shape": list(array.shape)}
        if wanted.binary:
            if array.dtype == object:
                data = _bytes_tensor(array)
            else:
                data = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
            entry["parameters"] = {"binary_data_size": len(data)}
            chunks.append(data)
        else:
            entry["data"] = array.reshape(-1).tolist()
        outputs.append(entry)
    response = {"model_name": model.name, "model_version": str(model.version), "outputs": outputs}
    if request.request_id is not None:
        response["id"] = request.request_id
    if request.flags:
        response["parameters"] = {"out_of_range": orjson.dumps(request.flags).decode()}
    header = orjson.dumps(response, option=orjson.OPT_SERIALIZE_NUMPY)
    if not chunks:
        return header, None
    return header + b"".join(chunks), len(header)


def encode_predictions(model: LoadedModel, request: DecodedRequest, results: dict[str, np.ndarray]) -> bytes:
    """Encode the people-friendly answer: labels and probabilities (classifiers) or values (regressors)."""
    answer: dict = {"model_name": model.name, "model_version": model.version}
    if "label" in results:
        answer["labels"] = results["label"].reshape(-1).tolist()
    if "probabilities" in results:
        answer["probabilities"] = results["probabilities"].tolist()
        if model.card.classes is not None:
            answer["classes"] = list(model.card.classes)
    if "variable" in results:
        answer["values"] = results["variable"].reshape(-1).tolist()
    for name, array in results.items():
        if name not in ("label", "probabilities", "variable"):
            answer.setdefault("outputs", {})[name] = array.tolist()
    if request.flags:
        answer["out_of_range"] = request.flags
    return orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY)
