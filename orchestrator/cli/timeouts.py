"""The ``--timeout`` option of the commands that wait for Heat stacks, and how it resolves against the settings."""

from __future__ import annotations

import typer

from orchestrator.config import DEFAULTS, duration_setting


def timeout_option(setting_name: str):
    """A ``--timeout`` option for the wait that the setting ``setting_name`` bounds (``stack_timeout``...)."""
    return typer.Option(
        None, "--timeout",
        help=f"Longest wait for the Heat stack, e.g. 45m (default: DATAOPS_{setting_name.upper()}, then "
             f"{setting_name} in dataops.yaml, then {DEFAULTS[setting_name]}).",
    )


def stack_timeout_s(setting_name: str, text: str | None) -> float:
    """Seconds of the wait: ``--timeout`` when given, else the setting.

    Raises:
        InvalidDuration: The value is not a duration; the message names where it came from.
    """
    return duration_setting(setting_name, text, "--timeout")
