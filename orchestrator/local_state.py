"""The one local state record: what the operator's machine keeps about a named thing (a cluster, an endpoint), a
folder per thing holding a JSON record, written atomically and private to the operator.

A kind of thing is a subclass naming its record file, its word in messages and the error for a missing record;
:func:`state_root` and :func:`records_under` find the folder of all things of that kind and list them.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, TypeVar

from orchestrator.atomic import write_atomically
from orchestrator.errors import DataopsError

# The folders hold SSH keys and bearer tokens next to the records: only the operator may read them.
FOLDER_MODE = 0o700
RECORD_MODE = 0o600

RecordT = TypeVar("RecordT", bound="LocalRecord")


@dataclass
class LocalRecord:
    """The folder of one named thing and the JSON record in it (the folder's name is the thing's name)."""

    directory: Path

    record_file: ClassVar[str] = "record.json"
    kind: ClassVar[str] = "thing"
    not_found: ClassVar[type[DataopsError]] = DataopsError

    @property
    def name(self) -> str:
        """The thing's name."""
        return self.directory.name

    @property
    def record(self) -> Path:
        """The record's file."""
        return self.directory / self.record_file

    def exists(self) -> bool:
        """Whether the thing has a record on this machine."""
        return self.record.exists()

    def ensure_directory(self) -> Path:
        """Create the thing's folder, private to the operator, unless present; return it."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=FOLDER_MODE)
        return self.directory

    def read(self) -> dict:
        """The record.

        Raises:
            DataopsError: The thing has no record here (the kind's own error, e.g. ``ClusterNotFound``); the
                message names the thing and the folder looked in.
        """
        if not self.exists():
            raise self.not_found(f"no {self.kind} named {self.name!r} (looked in {self.directory})")
        return json.loads(self.record.read_text())

    def write(self, record: dict) -> None:
        """Replace the record atomically (readers see the previous record or this one, never a mix)."""
        self.ensure_directory()
        write_atomically(self.record, json.dumps(record, indent=2, sort_keys=True), RECORD_MODE)

    def merge(self, **fields) -> dict:
        """Merge ``fields`` into the record (an absent record starts empty), write it and return it."""
        record = {**(self.read() if self.exists() else {}), **fields}
        self.write(record)
        return record

    def remove(self) -> None:
        """Delete the thing's folder and everything in it; a missing folder is not an error."""
        shutil.rmtree(self.directory, ignore_errors=True)


def state_root(variable: str, default_folder: str) -> Path:
    """The folder of all things of one kind: the environment variable ``variable``, or ``~/.dataops/<folder>``.

    Args:
        variable: The environment variable that moves the folder (``DATAOPS_CLUSTERS_DIR``).
        default_folder: The folder's name under ``~/.dataops`` otherwise (``clusters``).

    Returns:
        The folder, which may not exist yet.
    """
    return Path(os.environ.get(variable, Path.home() / ".dataops" / default_folder))


def records_under(root: Path, record_type: type[RecordT]) -> list[RecordT]:
    """Every thing under ``root`` that has a record, sorted by name.

    Args:
        root: The folder of all things of one kind.
        record_type: The kind's :class:`LocalRecord` subclass.

    Returns:
        One record per sub-folder holding a record file; none when ``root`` does not exist.
    """
    if not root.is_dir():
        return []
    return [record_type(d) for d in sorted(root.iterdir()) if (d / record_type.record_file).exists()]
