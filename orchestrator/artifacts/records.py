"""Records of named things (clusters, endpoints) shared through a store, so that every machine holding the cloud's
credentials (the operator's laptop, a colleague's, a schedule runner) sees the same things and their clocks.

One JSON object per thing, ``<kind>/<name>.json``; the folder of the machine that created a thing still holds what
must stay private to it (SSH keys, TLS keys, tokens), never the shared record.
"""

from __future__ import annotations

import json

from orchestrator.artifacts.store import ArtifactStore
from orchestrator.errors import ArtifactNotFound


class SharedRecords:
    """The records of one kind of thing in ``store``.

    Args:
        store: Where the records are kept (the ``records_store`` setting: a private Swift container).
        kind: The folder of that kind, such as ``clusters``.
    """

    def __init__(self, store: ArtifactStore, kind: str):
        self.store = store
        self.kind = kind

    def _key(self, name: str) -> str:
        return f"{self.kind}/{name}.json"

    def get(self, name: str) -> dict | None:
        """The record of ``name``, or None."""
        try:
            return json.loads(self.store.get_bytes(self._key(name)))
        except ArtifactNotFound:
            return None

    def put(self, name: str, record: dict) -> None:
        self.store.put_bytes(self._key(name), json.dumps(record, indent=1, sort_keys=True).encode())

    def update(self, name: str, **fields) -> dict:
        """Change some fields of the record of ``name`` (created if missing) and return it."""
        record = {**(self.get(name) or {}), **fields}
        self.put(name, record)
        return record

    def delete(self, name: str) -> None:
        if self.store.exists(self._key(name)):
            self.store.delete(self._key(name))

    def all(self) -> dict[str, dict]:
        """Every record of this kind, by name."""
        found = {}
        for key in self.store.list(f"{self.kind}/"):
            if key.endswith(".json") and key.count("/") == 1:
                record = json.loads(self.store.get_bytes(key))
                found[key.split("/", 1)[1].removesuffix(".json")] = record
        return found
