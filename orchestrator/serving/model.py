"""One loaded model: its card, one onnxruntime InferenceSession, and the checks that the two agree.

V2 tensors and the metadata's inputs use the ONNX input names; ``/predict`` records use the columns' names. Where
the card maps a column to an input of another name, the metadata lists the column beside it
(``parameters.column``); a model whose inputs are named as its columns answers metadata as it always has.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from orchestrator.serving.card import MODEL_FILE, ModelCard, read_card
from orchestrator.serving.errors import ModelLoadError

# ONNX type strings -> Open Inference Protocol datatypes.
ONNX_TO_V2 = {
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(int64)": "INT64",
    "tensor(int32)": "INT32",
    "tensor(string)": "BYTES",
    "tensor(bool)": "BOOL",
}
PLATFORM = "onnx_onnxv1"


def choose_providers(device: str) -> list[str]:
    """Execution providers for ``device`` ("cpu", "cuda" or "auto"), always ending with the CPU one.

    Raises:
        ModelLoadError: "cuda" was asked for and this onnxruntime build has no CUDA provider.
    """
    available = ort.get_available_providers()
    if device == "cpu":
        return ["CPUExecutionProvider"]
    has_cuda = "CUDAExecutionProvider" in available
    if device == "cuda" and not has_cuda:
        raise ModelLoadError(f"device 'cuda' asked for but onnxruntime offers only {available}")
    if device in ("cuda", "auto") and has_cuda:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if device == "auto":
        return ["CPUExecutionProvider"]
    raise ModelLoadError(f"unknown device {device!r}: expected cpu, cuda or auto")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class TensorMeta:
    """Name, V2 datatype and shape (-1 for a free dimension) of one tensor, for metadata answers."""

    name: str
    datatype: str
    shape: list[int]

    def as_dict(self) -> dict:
        return {"name": self.name, "datatype": self.datatype, "shape": self.shape}


def _tensor_meta(node) -> TensorMeta:
    shape = [d if isinstance(d, int) else -1 for d in (node.shape or [])]
    return TensorMeta(node.name, ONNX_TO_V2.get(node.type, node.type), shape)


class LoadedModel:
    """A model ready to answer: immutable after construction, safe to call from several threads."""

    def __init__(self, folder: Path, card: ModelCard, session: ort.InferenceSession):
        self.folder = folder
        self.card = card
        self.session = session
        self.name = card.name
        self.version = card.version
        self.inputs = [_tensor_meta(node) for node in session.get_inputs()]
        self.outputs = [_tensor_meta(node) for node in session.get_outputs()]
        self.output_names = [meta.name for meta in self.outputs]
        self.providers = session.get_providers()
        self.input_specs = {spec.name: spec for spec in card.inputs}
        # A column named otherwise than its input, by column name: what a V2 client sending the column's name meant.
        self.renamed_columns = {spec.column: spec for spec in card.inputs if spec.column != spec.name}
        self._check_agreement()

    def _check_agreement(self) -> None:
        onnx_inputs = {meta.name: meta for meta in self.inputs}
        card_inputs = {spec.name for spec in self.card.inputs}
        if set(onnx_inputs) != card_inputs:
            raise ModelLoadError(
                f"{self.folder}: model card inputs {sorted(card_inputs)} differ from ONNX inputs {sorted(onnx_inputs)}"
            )
        for spec in self.card.inputs:
            meta = onnx_inputs[spec.name]
            if meta.datatype != spec.datatype:
                raise ModelLoadError(
                    f"{self.folder}: input {spec.name!r} is {spec.datatype} in the card but {meta.datatype} in model.onnx"
                )

    def metadata(self) -> dict:
        """The V2 model metadata answer: inputs by ONNX name, with the column each one reads where they differ."""
        inputs = []
        for meta in self.inputs:
            entry = meta.as_dict()
            column = self.input_specs[meta.name].column
            if column != meta.name:
                entry["parameters"] = {"column": column}
            inputs.append(entry)
        return {
            "name": self.name,
            "versions": [str(self.version)],
            "platform": PLATFORM,
            "inputs": inputs,
            "outputs": [meta.as_dict() for meta in self.outputs],
        }

    def by_column(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``feeds`` (or anything keyed by input) keyed by the columns' names instead: what captures record, as the
        reference profile names them, and what a records answer names."""
        if not self.renamed_columns:
            return feeds
        return {self.input_specs[name].column: array for name, array in feeds.items()}

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Score already validated input arrays; returns every output by name."""
        values = self.session.run(self.output_names, feeds)
        return dict(zip(self.output_names, values))


def load_model_folder(folder: Path, device: str = "cpu", intra_op_threads: int = 1) -> LoadedModel:
    """Open a model folder (``model.onnx`` + ``model_card.json``) and check it against its card.

    Args:
        folder: The model folder.
        device: "cpu", "cuda" or "auto".
        intra_op_threads: onnxruntime intra-op threads (0 lets onnxruntime decide).

    Returns:
        The loaded model.

    Raises:
        ModelLoadError: a file is missing, the checksum in the card does not match, or card and ONNX disagree.
    """
    folder = Path(folder).resolve()
    card = read_card(folder)
    model_path = folder / MODEL_FILE
    if not model_path.is_file():
        raise ModelLoadError(f"{folder}: no {MODEL_FILE}")
    if card.model_sha256 and _sha256(model_path) != card.model_sha256:
        raise ModelLoadError(f"{model_path}: sha256 differs from the one recorded in the model card")
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(model_path), sess_options=options, providers=choose_providers(device))
    except ModelLoadError:
        raise
    except Exception as exc:  # onnxruntime raises its own untyped errors for unreadable graphs
        raise ModelLoadError(f"{model_path}: onnxruntime cannot load it: {exc}") from exc
    return LoadedModel(folder, card, session)
