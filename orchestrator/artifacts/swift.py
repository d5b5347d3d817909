"""Artifacts in OpenStack Swift: ``swift://container/prefix``.

Keys live under the prefix in one private container; the objects themselves (streamed, checksummed transfers, static
large objects) are ``SwiftContainer``'s job, and every request goes through the one object client. A dataset's
files go first and its ``_manifest.json`` last, as in the local store.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Iterator
from urllib.parse import quote, urlparse

from orchestrator.artifacts.object_client import ObjectClient
from orchestrator.artifacts.store import (
    MANIFEST,
    ArtifactInfo,
    build_manifest,
    manifest_digest,
    sha256_of_file,
)
from orchestrator.artifacts.swift_objects import (
    DEFAULT_SEGMENT_SIZE,
    DEFAULT_THRESHOLD,
    INTERNAL_PREFIX,
    SEGMENT_SUFFIX,
    SHA256_HEADER,
    SwiftContainer,
    object_path,
)
from orchestrator.atomic import atomic_file
from orchestrator.errors import ArtifactError, ArtifactNotFound, DataopsError
from orchestrator.openstack import connect
from orchestrator.openstack.object_transport import READ_TIMEOUT_S, SessionTransport

__all__ = ["SEGMENT_SUFFIX", "SHA256_HEADER", "SwiftStore"]


class SwiftStore:
    """An ArtifactStore on one Swift container, with keys under an optional prefix.

    Args:
        container: the container holding the artifacts; created private on first use.
        prefix: prepended (with ``/``) to every key.
        conn: an openstacksdk connection; by default one is opened for ``cloud`` / ``OS_CLOUD``.
        cloud: clouds.yaml entry used when ``conn`` is not given.
        cache_dir: local folder for downloaded datasets and scratch space.
        segment_size: bytes per segment of a static large object.
        segment_threshold: files larger than this are uploaded as static large objects.
        workers: parallel segment transfers.
        read_timeout_s: seconds Swift may stay silent (before answering, or within an answer) before the request is
            given up and tried again.
    """

    def __init__(
        self,
        container: str,
        prefix: str = "",
        *,
        conn=None,
        cloud: str | None = None,
        cache_dir: Path | str | None = None,
        segment_size: int = DEFAULT_SEGMENT_SIZE,
        segment_threshold: int = DEFAULT_THRESHOLD,
        workers: int = 4,
        read_timeout_s: float = READ_TIMEOUT_S,
    ):
        if not container or "/" in container:
            raise DataopsError(f"invalid Swift container name {container!r}")
        self.container = container
        self.prefix = prefix.strip("/")
        self.uri = f"swift://{container}" + (f"/{self.prefix}" if self.prefix else "")
        self.conn = conn if conn is not None else connect(cloud)
        # Nothing is sent before the first transfer: making the client only keeps the connection.
        self.client = ObjectClient(SessionTransport(self.conn, read_timeout_s=read_timeout_s))
        self.objects = SwiftContainer(self.client, container, segment_size=segment_size,
                                      segment_threshold=segment_threshold, workers=workers)
        root = Path(cache_dir or os.environ.get("DATAOPS_SWIFT_CACHE", "~/.cache/dataops/swift")).expanduser()
        self.cache_root = root / container / (self.prefix or "_")

    @classmethod
    def from_url(cls, url: str, **kwargs) -> "SwiftStore":
        """Open ``swift://container[/prefix]`` with the cloud named by ``OS_CLOUD``.

        Raises:
            DataopsError: the URL is not a swift:// URL with a container.
        """
        parsed = urlparse(url)
        if parsed.scheme != "swift" or not parsed.netloc:
            raise DataopsError(f"invalid Swift store {url!r}: expected swift://CONTAINER[/PREFIX]")
        return cls(parsed.netloc, parsed.path, **kwargs)

    def __repr__(self) -> str:
        return f"SwiftStore({self.uri})"

    @property
    def segment_threshold(self) -> int:
        return self.objects.segment_threshold

    def _name(self, key: str) -> str:
        key = key.strip("/")
        if not key or ".." in key.split("/"):
            raise ArtifactError(f"invalid artifact key {key!r}")
        name = f"{self.prefix}/{key}" if self.prefix else key
        if f"{name}/".startswith(INTERNAL_PREFIX):
            raise ArtifactError(f"invalid artifact key {key!r}: {INTERNAL_PREFIX} holds the container's own objects")
        return name

    # --- blobs -----------------------------------------------------------------------------------

    def put_bytes(self, key: str, data: bytes) -> ArtifactInfo:
        return ArtifactInfo(key, self.objects.put_bytes(self._name(key), data), len(data))

    def put_if_absent(self, key: str, data: bytes) -> bool:
        return self.objects.put_bytes_if_absent(self._name(key), data)

    def put_file(self, key: str, path: Path) -> ArtifactInfo:
        sha256, size = self.objects.put_file(self._name(key), Path(path))
        return ArtifactInfo(key, sha256, size)

    def get_bytes(self, key: str, sha256: str | None = None) -> bytes:
        buffer = io.BytesIO()
        self._download(key, buffer, sha256)
        return buffer.getvalue()

    def get_file(self, key: str, dest: Path, sha256: str | None = None) -> Path:
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(dest) as out:
            self._download(key, out, sha256)
        return dest

    def _download(self, key: str, out, sha256: str | None) -> None:
        if not self.objects.download(self._name(key), out, sha256, f"artifact {key!r}"):
            raise ArtifactNotFound(f"no artifact {key!r} in {self.uri}")

    def exists(self, key: str) -> bool:
        name = self._name(key)
        return self.objects.head(name) is not None or self.objects.head(f"{name}/{MANIFEST}") is not None

    def list(self, prefix: str = "") -> Iterator[str]:
        base = f"{self.prefix}/" if self.prefix else ""
        wanted = prefix.strip("/")
        keys = (name[len(base):] for name in self.objects.names(base + wanted) if not name.startswith(INTERNAL_PREFIX))
        # As in the local store, a prefix names a folder: "runs" lists "runs/..." but not "runs2/...".
        return iter(sorted(k for k in keys if not wanted or k == wanted or k.startswith(wanted + "/")))

    def delete(self, key: str) -> None:
        name = self._name(key)
        head = self.objects.head(name)
        if head is not None:
            self.objects.delete(name, head)
            return
        # A dataset: drop the manifest first so a half-deleted dataset is never taken for a complete one.
        self.objects.delete(f"{name}/{MANIFEST}")
        for child in list(self.objects.names(f"{name}/")):
            self.objects.delete(child)

    # --- datasets --------------------------------------------------------------------------------

    def put_dataset(self, key: str, folder: Path, written: dict[str, dict] | None = None) -> ArtifactInfo:
        """Publish ``folder`` under ``key``, manifest last.

        ``written`` lists files already uploaded under ``key`` by others (cluster workers through a TempURL), as
        ``{relative path: {"size", "sha256"}}``; they join the manifest without being sent again.
        """
        folder = Path(folder)
        manifest = build_manifest(folder)
        local = set(manifest["files"])
        manifest["files"].update(written or {})
        digest = manifest_digest(manifest)
        size = sum(f["size"] for f in manifest["files"].values())
        if self.objects.head(f"{self._name(key)}/{MANIFEST}") is not None:
            # Content-addressed keys: a complete dataset already there has this content.
            return ArtifactInfo(key, digest, size)
        for rel in sorted(local):
            meta = manifest["files"][rel]
            info = self.put_file(f"{key}/{rel}", folder / rel)
            if info.sha256 != meta["sha256"]:
                raise ArtifactError(f"dataset {key!r}: {rel} changed while it was uploaded")
        self.put_bytes(f"{key}/{MANIFEST}", json.dumps(manifest, indent=1, sort_keys=True).encode())
        return ArtifactInfo(key, digest, size)

    def dataset_path(self, key: str, verify: bool = False) -> Path:
        """Download the dataset into the local cache (once) and return that folder.

        Every download is checked against the manifest; ``verify`` also re-hashes files already cached.
        """
        try:
            manifest_bytes = self.get_bytes(f"{key}/{MANIFEST}")
        except ArtifactNotFound:
            raise ArtifactNotFound(f"no dataset {key!r} in {self.uri}") from None
        manifest = json.loads(manifest_bytes)
        local = self.cache_root / "datasets" / key.strip("/")
        cached_manifest = local / MANIFEST
        if cached_manifest.is_file() and cached_manifest.read_bytes() == manifest_bytes:
            if verify:
                for rel, meta in manifest["files"].items():
                    file = local / rel
                    if not file.is_file() or sha256_of_file(file) != meta["sha256"]:
                        raise ArtifactError(f"dataset {key!r}: file {rel} is missing or corrupted")
            return local
        staging = self.scratch_dir()
        for rel, meta in manifest["files"].items():
            self.get_file(f"{key}/{rel}", staging / rel, sha256=meta["sha256"])
        (staging / MANIFEST).write_bytes(manifest_bytes)
        if local.exists():
            shutil.rmtree(local)
        local.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging, local)
        return local

    def scratch_dir(self) -> Path:
        path = self.cache_root / ".staging" / uuid.uuid4().hex
        path.mkdir(parents=True)
        return path

    # --- sharing ---------------------------------------------------------------------------------

    def url_signer(self) -> "SwiftStore":
        return self

    def temp_url(self, key: str, expires_in: int, method: str = "GET", *, prefix: bool = False,
                 check: bool = True) -> str:
        """A URL granting ``method`` on one artifact for ``expires_in`` seconds, without credentials.

        The signing key is a random container key (X-Container-Meta-Temp-URL-Key), created on first use.

        Args:
            key: the artifact; with ``prefix``, a folder whose every object the URL grants (append ``/NAME``
                to the URL's path to name one; the query string stays the same).
            expires_in: seconds the URL stays valid.
            method: GET (which also allows HEAD) or PUT.
            prefix: sign the folder ``key/`` instead of one object.
            check: for a single-object GET, fail now if the object does not exist.

        Raises:
            ArtifactNotFound: ``check`` and no blob under ``key``.
        """
        name = self._name(key)
        if check and method == "GET" and not prefix and self.objects.head(name) is None:
            raise ArtifactNotFound(f"no artifact {key!r} in {self.uri}")
        endpoint = urlparse(self.client.transport.endpoint)
        path = f"{endpoint.path.rstrip('/')}/{object_path(self.container, name)}"
        expires = int(time.time()) + int(expires_in)
        signed = f"prefix:{path}/" if prefix else path
        signature = hmac.new(self.objects.temp_url_key().encode(), f"{method}\n{expires}\n{signed}".encode(),
                             hashlib.sha256).hexdigest()
        query = f"temp_url_sig={signature}&temp_url_expires={expires}"
        if prefix:
            # First: readers such as dask strip a trailing "/" from a path, which would cut the prefix's.
            query = f"temp_url_prefix={quote(name + '/', safe='/')}&{query}"
        return f"{endpoint.scheme}://{endpoint.netloc}{path}?{query}"
