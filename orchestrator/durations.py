"""The one way a duration is written, in every option and file: ``90s``, ``30m`` (or ``30min``), ``8h``, ``7d``,
or several parts from the largest unit to the smallest, such as ``1h30m`` or ``1d12h``."""

from __future__ import annotations

import re

from orchestrator.errors import DataopsError

_UNIT_SECONDS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))

# Each unit at most once, largest first; spaces are allowed around and inside parts (``30 min``, ``1h 30m``).
# ``min`` is the pandas spelling that pipeline files have always used; ``m`` the one of the command line.
_DURATION = re.compile(
    r"\s*(?:(?P<d>\d+)\s*d)?"
    r"\s*(?:(?P<h>\d+)\s*h)?"
    r"\s*(?:(?P<m>\d+)\s*(?:min|m))?"
    r"\s*(?:(?P<s>\d+)\s*s)?\s*"
)

EXAMPLES = "8h, 30m, 90s, 1h30m or 7d"


class InvalidDuration(DataopsError, ValueError):
    """A duration is not written as this module's grammar says.

    On the command line it is a usage mistake (the root exit code); in a file, pydantic reports it against the
    field it checks, because it is a ``ValueError`` too, and the file's loader turns that into a ``SpecError``.
    """


def parse_duration(text: str, what: str, *, allow_zero: bool = False) -> float:
    """Read a duration such as ``90s``, ``30m``, ``30min``, ``8h``, ``1h30m`` or ``7d``.

    Args:
        text: The duration as written by the user.
        what: Where it was written, for the message: an option (``--ttl``) or a field (``the join tolerance``).
        allow_zero: Accept a zero duration (``0s``); by default a duration must be longer than zero.

    Returns:
        The duration in seconds.

    Raises:
        InvalidDuration: The text is not such a duration, or is zero where zero is not allowed; the message names
            the text, where it was given and what is expected.
    """
    match = _DURATION.fullmatch(text) if isinstance(text, str) else None
    if match is None or not any(match.groups()):
        raise InvalidDuration(
            f"invalid duration {text!r} for {what}: expected a duration such as {EXAMPLES} (for each part, expected "
            "a positive number and a unit s, m or min, h, d; several parts go from the largest unit to the smallest)"
        )
    seconds = float(sum(int(match[unit] or 0) * factor for unit, factor in _UNIT_SECONDS))
    if seconds == 0 and not allow_zero:
        raise InvalidDuration(
            f"invalid duration {text!r} for {what}: expected a positive number and a unit, longer than zero, "
            f"such as {EXAMPLES}"
        )
    return seconds


def format_duration(seconds: float) -> str:
    """Write a number of seconds in the grammar :func:`parse_duration` reads (``5400`` -> ``1h30m``).

    Args:
        seconds: A duration, zero or longer; fractions of a second are rounded to the closest second.

    Returns:
        The duration with its largest units first, ``0s`` for zero.

    Raises:
        ValueError: The duration is negative.
    """
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative, got {seconds} s")
    remaining = round(seconds)
    parts = []
    for unit, factor in _UNIT_SECONDS:
        count, remaining = divmod(remaining, factor)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"
