"""Turn a ``--store`` value (a path, ``file://...`` or ``swift://container/prefix``) into an ArtifactStore."""

from __future__ import annotations

from urllib.parse import urlparse

from orchestrator.artifacts.local import LocalStore
from orchestrator.artifacts.store import ArtifactStore
from orchestrator.errors import DataopsError


def open_store(location: str) -> ArtifactStore:
    """Open the store named by ``location``.

    Raises:
        DataopsError: the scheme is not one of file:// or swift://.
    """
    parsed = urlparse(location)
    if parsed.scheme in ("", "file"):
        return LocalStore(parsed.path if parsed.scheme else location)
    if parsed.scheme == "swift":
        from orchestrator.artifacts.swift import SwiftStore  # only clouds pay for the SDK import

        return SwiftStore.from_url(location)
    raise DataopsError(f"unknown artifact store {location!r}: expected a path, file://PATH or swift://CONTAINER[/PREFIX]")
