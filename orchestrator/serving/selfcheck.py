"""Before a model is served, its card's examples are scored: a model that does not reproduce its own card is refused."""

from __future__ import annotations

import numpy as np
import orjson

from orchestrator.serving.codecs import decode_records
from orchestrator.serving.errors import BadRequest, ModelLoadError
from orchestrator.serving.model import LoadedModel

DEFAULT_TOLERANCE = 1e-4


def verify_card_examples(model: LoadedModel) -> int:
    """Score ``examples.inputs`` of the card and compare with ``examples.outputs``.

    Returns:
        The number of example rows checked (0 when the card has none).

    Raises:
        ModelLoadError: an example cannot be read, or the model's answer differs from the card's.
    """
    examples = model.card.raw.get("examples") or {}
    records, expected = examples.get("inputs"), examples.get("outputs") or {}
    if not records:
        return 0
    tolerance = float((model.card.raw.get("parity") or {}).get("tolerance") or DEFAULT_TOLERANCE)
    try:
        decoded = decode_records(orjson.dumps({"records": records}, option=orjson.OPT_SERIALIZE_NUMPY), model)
    except (BadRequest, TypeError) as exc:
        raise ModelLoadError(f"{model.folder}: the model card's examples cannot be scored: {exc}") from exc
    results = model.run(decoded.feeds)
    for name, wanted in expected.items():
        if name not in results:
            continue
        got = results[name]
        wanted = np.asarray(wanted, dtype=got.dtype if got.dtype != object else object)
        if got.shape != wanted.shape:
            raise ModelLoadError(f"{model.folder}: example output {name!r} has shape {list(got.shape)}, "
                                 f"the card says {list(wanted.shape)}")
        if got.dtype.kind == "f":
            worst = float(np.max(np.abs(got - wanted))) if got.size else 0.0
            if not worst <= tolerance:
                raise ModelLoadError(f"{model.folder}: example output {name!r} differs from the model card by "
                                     f"{worst:.3g} (tolerance {tolerance:g})")
        elif got.tolist() != wanted.tolist():
            raise ModelLoadError(f"{model.folder}: example output {name!r} is {got.tolist()}, "
                                 f"the model card says {wanted.tolist()}")
    return len(records)
