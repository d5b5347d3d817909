"""List a store's artifacts, share one through a signed, expiring URL."""

from __future__ import annotations

from collections.abc import Iterator

from orchestrator.artifacts.open import open_store
from orchestrator.config import setting
from orchestrator.errors import DataopsError


def list_artifacts(prefix: str = "", store: str | None = None) -> Iterator[str]:
    """Keys under ``prefix``, sorted."""
    return open_store(setting("store", store)).list(prefix)


def share_artifact(key: str, expires_in: int, store: str | None = None) -> str:
    """A URL that downloads ``key`` without credentials for ``expires_in`` seconds.

    Raises:
        DataopsError: the store cannot sign URLs (a local folder).
        ArtifactNotFound: no artifact under ``key``.
    """
    target = open_store(setting("store", store))
    signer = target.url_signer()
    if signer is None:
        raise DataopsError(f"{target.uri} cannot share artifacts: sharing needs a swift:// store")
    return signer.temp_url(key, expires_in)
