"""Encode answers: V2 ``/infer`` responses (JSON, or a JSON header followed by binary tensors) and the
people-friendly ``/predict`` answer."""

from __future__ import annotations

import numpy as np
import orjson

from orchestrator.serving.codecs.request import DecodedRequest
from orchestrator.serving.model import LoadedModel


def encode_infer_response(model: LoadedModel, request: DecodedRequest,
                          results: dict[str, np.ndarray]) -> tuple[bytes, int | None]:
    """Encode a V2 response with the outputs the request asked for, each in JSON or binary as it asked.

    Args:
        model: The model that answered.
        request: The decoded request (its outputs, id and out-of-range flags).
        results: The model's outputs by name.

    Returns:
        The body and, when some outputs are binary, the length of its JSON header (else None).
    """
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
    """Encode the people-friendly answer: labels and probabilities (classifiers) or values (regressors).

    Args:
        model: The model that answered.
        request: The decoded request (its out-of-range flags, answered by column name).
        results: The model's outputs by name.

    Returns:
        The JSON body.
    """
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
        # Records speak of columns: their flags name the columns, as the records named them.
        answer["out_of_range"] = model.by_column(request.flags)
    return orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY)


def _bytes_tensor(array: np.ndarray) -> bytes:
    """The binary BYTES layout: each element as a 4-byte little-endian length then its UTF-8 bytes."""
    parts = []
    for value in array.reshape(-1):
        data = value if isinstance(value, bytes) else str(value).encode("utf-8")
        parts.append(len(data).to_bytes(4, "little"))
        parts.append(data)
    return b"".join(parts)
