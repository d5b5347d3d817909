"""Where monitoring state lives in the artifact store, in one place for the drift use cases and the loop."""

from __future__ import annotations

MONITORING = "monitoring"


def monitoring_prefix(name: str, version: int) -> str:
    """Where a model version's monitoring state lives in the store (profile, checks, the latest check)."""
    return f"{MONITORING}/{name}/{version}"


def checks_prefix(name: str, version: int) -> str:
    """Where the drift checks of a model version are kept, one folder per check."""
    return f"{monitoring_prefix(name, version)}/checks/"
