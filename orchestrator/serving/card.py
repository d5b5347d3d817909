"""The model card a model folder carries (``model_card.json``), read the way the server needs it.

Only the fields serving relies on are parsed; unknown keys are kept in ``raw`` and otherwise ignored,
as the model folder contract asks of every reader.

An input of the card names its column in the data (``name``, what ``/predict`` records carry) and its ONNX input
(``onnx_name``, what V2 tensors carry). A card without ``onnx_name`` (written before columns could have any name)
names both by ``name``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.serving.errors import ModelLoadError

CARD_FILE = "model_card.json"
MODEL_FILE = "model.onnx"
INPUT_DATATYPES = ("FP32", "BYTES")


@dataclass(frozen=True)
class InputSpec:
    """One raw feature column: an ONNX input of shape ``[-1, 1]``.

    Attributes:
        name: the ONNX input's name (V2 tensors, feeds, messages about tensors).
        column: the column's name in the data (``/predict`` records); ``name`` unless the card maps it.
    """

    name: str
    datatype: str
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    allowed: frozenset[str] | None = None
    column: str = ""
    # A categorical input's stand-in for a missing value (the card's ``missing_value``): a null becomes it, as the
    # training rows' missing categories did, instead of being refused.
    missing_value: str | None = None

    def __post_init__(self):
        if not self.column:
            object.__setattr__(self, "column", self.name)

    @property
    def is_numeric(self) -> bool:
        return self.datatype == "FP32"

    @property
    def label(self) -> str:
        """How messages name the input: ``'grosse'``, or ``'grosse' (column 'Größe')`` when the names differ."""
        return repr(self.name) if self.column == self.name else f"{self.name!r} (column {self.column!r})"


@dataclass(frozen=True)
class OutputSpec:
    """One model output as the card declares it."""

    name: str
    datatype: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class ModelCard:
    """What the server knows of a model before opening its ONNX file."""

    name: str
    version: int
    task: str
    inputs: tuple[InputSpec, ...]
    outputs: tuple[OutputSpec, ...]
    classes: tuple | None = None
    model_sha256: str | None = None
    raw: dict = field(default_factory=dict, compare=False, repr=False)

    def input(self, name: str) -> InputSpec | None:
        for spec in self.inputs:
            if spec.name == name:
                return spec
        return None


def _require(data: dict, key: str, where: str):
    if key not in data:
        raise ModelLoadError(f"{where}: missing required field {key!r}")
    return data[key]


def _finite_or_none(value, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ModelLoadError(f"{where}: expected a finite number, got {value!r}")
    return float(value)


def _parse_input(item: dict, where: str) -> InputSpec:
    column = str(_require(item, "name", where))
    name = str(item.get("onnx_name", column))
    datatype = _require(item, "datatype", where)
    if datatype not in INPUT_DATATYPES:
        raise ModelLoadError(f"{where} ({name}): datatype must be one of {INPUT_DATATYPES}, got {datatype!r}")
    allowed = item.get("allowed")
    if allowed is not None:
        if not isinstance(allowed, list) or not all(isinstance(v, str) for v in allowed):
            raise ModelLoadError(f"{where} ({name}): 'allowed' must be a list of strings")
        allowed = frozenset(allowed)
    return InputSpec(
        name=name,
        column=column,
        datatype=datatype,
        nullable=bool(item.get("nullable", False)),
        min=_finite_or_none(item.get("min"), f"{where} ({name}).min"),
        max=_finite_or_none(item.get("max"), f"{where} ({name}).max"),
        allowed=allowed,
        missing_value=item["missing_value"] if isinstance(item.get("missing_value"), str) else None,
    )


def parse_card(data: dict, source: str = CARD_FILE) -> ModelCard:
    """Check and convert a decoded ``model_card.json``.

    Args:
        data: The decoded JSON object.
        source: Where it came from, used in error messages.

    Returns:
        The parsed card.

    Raises:
        ModelLoadError: a required field is missing or malformed; the message names it.
    """
    if not isinstance(data, dict):
        raise ModelLoadError(f"{source}: expected a JSON object, got {type(data).__name__}")
    name = _require(data, "name", source)
    version = _require(data, "version", source)
    if version is None:
        version = 1  # an exported folder not yet published by the registry: served as version 1
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ModelLoadError(f"{source}: 'version' must be an integer >= 1, got {version!r}")
    inputs = _require(data, "inputs", source)
    if not isinstance(inputs, list) or not inputs:
        raise ModelLoadError(f"{source}: 'inputs' must be a non-empty list")
    parsed_inputs = tuple(_parse_input(item, f"{source}: inputs[{i}]") for i, item in enumerate(inputs))
    outputs = tuple(
        OutputSpec(
            name=str(_require(item, "name", f"{source}: outputs[{i}]")),
            datatype=str(_require(item, "datatype", f"{source}: outputs[{i}]")),
            shape=tuple(int(d) for d in item.get("shape", [-1])),
        )
        for i, item in enumerate(data.get("outputs", []))
    )
    classes = data.get("classes")
    model_file = (data.get("files") or {}).get(MODEL_FILE) or {}
    return ModelCard(
        name=str(name),
        version=version,
        task=str(data.get("task", "classification")),
        inputs=parsed_inputs,
        outputs=outputs,
        classes=tuple(classes) if isinstance(classes, list) else None,
        model_sha256=model_file.get("sha256"),
        raw=data,
    )


def read_card(folder: Path) -> ModelCard:
    """Read ``model_card.json`` from a model folder.

    Raises:
        ModelLoadError: the file is missing, is not JSON, or does not follow the contract.
    """
    path = Path(folder) / CARD_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ModelLoadError(f"{path}: no model card (expected {CARD_FILE} beside {MODEL_FILE})") from exc
    except json.JSONDecodeError as exc:
        raise ModelLoadError(f"{path}: line {exc.lineno}: not valid JSON ({exc.msg})") from exc
    return parse_card(data, str(path))
