"""The ArtifactStore contract every backend (local folder, Swift) fulfils.

Keys are ``/``-separated relative names such as ``runs/20261123-1/record.json``. Two kinds of artifact:

* a *blob*: one object, written whole or not at all, with its sha256 returned and checkable on read;
* a *dataset*: a folder of files (a Parquet dataset, a model folder) published with a ``_manifest.json``
  listing every file's size and sha256. The manifest is written last: a dataset without one does not exist,
  so an interrupted write is never visible.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator, Protocol, runtime_checkable

MANIFEST = "_manifest.json"
CHUNK = 1 << 20


@dataclass(frozen=True)
class ArtifactInfo:
    """What the store knows of one published object."""

    key: str
    sha256: str
    size: int

    def as_dict(self) -> dict:
        return asdict(self)


def sha256_of_file(path: Path) -> str:
    """Hash a file in 1 MiB chunks, never reading it whole."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def build_manifest(folder: Path) -> dict:
    """List every file of ``folder`` (recursively) with size and sha256, sorted for a stable hash."""
    files = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST):
        rel = path.relative_to(folder).as_posix()
        files[rel] = {"size": path.stat().st_size, "sha256": sha256_of_file(path)}
    return {"files": files}


def manifest_digest(manifest: dict) -> str:
    """One sha256 naming a whole dataset: the hash of its sorted manifest."""
    return hashlib.sha256(json.dumps(manifest["files"], sort_keys=True).encode()).hexdigest()


@runtime_checkable
class URLSigner(Protocol):
    """A store's power to grant access to its objects by URL, to holders of no credentials (workers, nodes)."""

    def temp_url(self, key: str, expires_in: int, method: str = "GET", *, prefix: bool = False,
                 check: bool = True) -> str:
        """A URL granting ``method`` (GET, which allows HEAD, or PUT) on ``key`` for ``expires_in`` seconds.

        With ``prefix``, the URL signs the folder ``key/``: append ``/NAME`` to its path to name one object.
        With ``check`` (single-object GET only), fail now with ArtifactNotFound if the object does not exist.
        """


@runtime_checkable
class ArtifactStore(Protocol):
    """Storage for blobs and datasets, addressed by key."""

    uri: str

    def put_bytes(self, key: str, data: bytes) -> ArtifactInfo:
        """Publish ``data`` under ``key`` atomically and return its checksum."""

    def put_file(self, key: str, path: Path) -> ArtifactInfo:
        """Publish a local file under ``key`` atomically, streaming it."""

    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Publish ``data`` under ``key`` only if nothing is published there: a create-only write, atomic, which
        never overwrites. Of several writers racing for one key, exactly one gets True (leases are built on it).

        Returns:
            True if this call created the object; False if the key already held one (left as it was).
        """

    def get_bytes(self, key: str, sha256: str | None = None) -> bytes:
        """Read a blob; raise ArtifactError if ``sha256`` is given and does not match."""

    def get_file(self, key: str, dest: Path, sha256: str | None = None) -> Path:
        """Copy a blob to ``dest`` (streaming), checking ``sha256`` when given."""

    def exists(self, key: str) -> bool:
        """True if a blob or a complete dataset (manifest present) is published under ``key``."""

    def list(self, prefix: str = "") -> Iterator[str]:
        """Keys of blobs under ``prefix``, sorted."""

    def delete(self, key: str) -> None:
        """Remove a blob or a dataset; missing keys are ignored so cleanup can run twice."""

    def put_dataset(self, key: str, folder: Path) -> ArtifactInfo:
        """Publish a local folder as a dataset: files first, manifest last. ``sha256`` is the manifest digest."""

    def dataset_path(self, key: str, verify: bool = False) -> Path:
        """A local folder holding the dataset's files, ready for readers such as Dask.

        The local store returns the folder in place; remote stores download into a local cache first.
        With ``verify``, every file is checked against the manifest (ArtifactError on mismatch).
        """

    def scratch_dir(self) -> Path:
        """A local folder on the same filesystem as the store's staging area, for building datasets."""

    def url_signer(self) -> URLSigner | None:
        """The store's URL signer when its objects can be reached by signed URL from other machines, else None
        (a local folder: only this machine reaches it)."""
