"""A tiny pipeline file whose ``monitoring:`` section the tests write, and the line a text stands on in it."""

from __future__ import annotations

from pathlib import Path

PIPELINE = """
name: tiny
sources:
  events:
    location: events.csv
split:
  by: hash
  column: id
  fractions: {train: 0.7, validation: 0.1, test: 0.1, serve: 0.1}
"""


def pipeline_with_monitoring(folder: Path, monitoring: str = "") -> Path:
    """Write the tiny pipeline, with ``monitoring`` (YAML text) appended, as ``folder/pipeline.yaml``."""
    path = folder / "pipeline.yaml"
    path.write_text(PIPELINE + monitoring)
    return path


def line_with(path: Path, text: str) -> int:
    """The number of the first line of ``path`` holding ``text``."""
    return next(n for n, row in enumerate(path.read_text().splitlines(), 1) if text in row)
