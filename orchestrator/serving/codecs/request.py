"""What decoding hands to validation, scoring and encoding: one checked request, whatever its wire format."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class RequestedOutput:
    """One output the client asked for, and whether it wants it in the binary tensor extension."""

    name: str
    binary: bool


@dataclass
class DecodedRequest:
    """A decoded inference request: one ``(rows, 1)`` array per model input."""

    feeds: dict[str, np.ndarray]
    rows: int
    outputs: list[RequestedOutput]
    request_id: str | None = None
    # {input name: [row indexes outside the card's range]}, filled by validation under the "flag" policy.
    flags: dict = field(default_factory=dict)
    # The same values as Python lists (JSON bodies only): checking a few rows is faster on these than with numpy.
    columns: dict[str, list] | None = None
