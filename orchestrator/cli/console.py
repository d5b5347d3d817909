"""All human output goes through here, to stderr; data (JSON, tables meant for pipes) goes to stdout."""

from __future__ import annotations

import json
import sys

from rich.console import Console

err = Console(stderr=True, highlight=False, soft_wrap=True)
# Piped into another command, a table keeps every value whole: rich would otherwise cut it to 80 columns.
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 100_000)


def emit_json(data) -> None:
    """Print machine-readable data on stdout, nothing else."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
