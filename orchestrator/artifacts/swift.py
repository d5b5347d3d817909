"""Artifacts in OpenStack Swift: ``swift://container/prefix``.

Every transfer is streamed and checked twice: Swift's ETag (MD5) against the MD5 computed while sending or
receiving, and the sha256 recorded in the object's metadata against the sha256 of the bytes. Files above
``segment_threshold`` become static large objects: segments are uploaded in parallel to a hidden
``<container>_segments`` container and the manifest is written last, so an interrupted upload never shows;
they are downloaded segment by segment in parallel too, each segment checked against its ETag.
A dataset's files go first and its ``_manifest.json`` last, as in the local store.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import queue
import re
import secrets
import shutil
import tempfile
import threading
import time
import uuid
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import BinaryIO, Callable, Iterator
from urllib.parse import quote, urlparse

from orchestrator.artifacts.store import (
    CHUNK,
    MANIFEST,
    SHA256_HEADER,
    ArtifactInfo,
    build_manifest,
    manifest_digest,
    sha256_of_file,
)
from orchestrator.errors import ArtifactError, ArtifactNotFound, CloudError, DataopsError
from orchestrator.openstack import cloud_errors, connect

SEGMENT_SUFFIX = "_segments"
DEFAULT_SEGMENT_SIZE = 64 << 20
DEFAULT_THRESHOLD = 128 << 20
RETRIES = 5
RETRY_STATUSES = frozenset({500, 502, 503, 504})
DOWNLOAD_CHUNK = 4 << 20


class _TransientError(Exception):
    """A 5xx answer or a dropped connection: worth another try."""


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
        workers: parallel segment uploads.
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
    ):
        if not container or "/" in container:
            raise DataopsError(f"invalid Swift container name {container!r}")
        self.container = container
        self.prefix = prefix.strip("/")
        self.uri = f"swift://{container}" + (f"/{self.prefix}" if self.prefix else "")
        self.conn = conn if conn is not None else connect(cloud)
        self.segment_size = segment_size
        self.segment_threshold = max(segment_threshold, segment_size)
        self.workers = workers
        root = Path(cache_dir or os.environ.get("DATAOPS_SWIFT_CACHE", "~/.cache/dataops/swift")).expanduser()
        self.cache_root = root / container / (self.prefix or "_")
        self._containers_ready: set[str] = set()
        self._segments_exist: bool | None = None
        self._lock = threading.Lock()
        self._secret: str | None = None
        self._secret_lock = threading.Lock()

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

    # --- keys and HTTP ---------------------------------------------------------------------------

    def _name(self, key: str) -> str:
        key = key.strip("/")
        if not key or ".." in key.split("/"):
            raise ArtifactError(f"invalid artifact key {key!r}")
        return f"{self.prefix}/{key}" if self.prefix else key

    @staticmethod
    def _url(container: str, name: str | None = None) -> str:
        path = quote(container, safe="")
        return path if name is None else f"{path}/{quote(name, safe='/')}"

    def _request(self, method: str, url: str, *, ok: tuple[int, ...], data_factory: Callable | None = None, **kwargs):
        """One Swift request, retried with exponential backoff on 5xx answers and connection failures.

        ``data_factory`` returns a fresh request body for each attempt (a stream cannot be replayed).
        Statuses in ``ok`` are returned; any other raises CloudError (404 is returned when listed in ``ok``).
        """
        delay = 0.5
        for attempt in range(1, RETRIES + 1):
            try:
                if data_factory is not None:
                    kwargs["data"] = data_factory()
                with cloud_errors(f"Swift {method} {url}"):
                    response = self.conn.object_store.request(url, method, raise_exc=False, **kwargs)
                if response.status_code in RETRY_STATUSES:
                    raise _TransientError(f"HTTP {response.status_code}")
                if response.status_code not in ok:
                    raise CloudError(
                        f"Swift {method} {url} answered {response.status_code}: {response.text[:200].strip()}"
                    )
                return response
            except (_TransientError, CloudError) as exc:
                if isinstance(exc, CloudError) and not _is_connection_failure(exc):
                    raise
                if attempt == RETRIES:
                    raise CloudError(f"Swift {method} {url} failed {RETRIES} times, last: {exc}") from exc
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    def _ensure_container(self, container: str) -> None:
        with self._lock:
            if container in self._containers_ready:
                return
        # Private: no read ACL, whatever the container had before.
        headers = {"X-Remove-Container-Read": "x"}
        self._request("PUT", self._url(container), ok=(201, 202, 204), headers=headers)
        with self._lock:
            self._containers_ready.add(container)

    def _head(self, name: str):
        response = self._request("HEAD", self._url(self.container, name), ok=(200, 204, 404))
        return None if response.status_code == 404 else response

    # --- blobs -----------------------------------------------------------------------------------

    def put_bytes(self, key: str, data: bytes) -> ArtifactInfo:
        return self._put_stream(key, lambda: io.BytesIO(data), len(data))

    def put_file(self, key: str, path: Path) -> ArtifactInfo:
        path = Path(path)
        size = path.stat().st_size
        if size > self.segment_threshold:
            return self._put_large(key, path, size)
        return self._put_stream(key, lambda: open(path, "rb"), size)

    def _put_stream(self, key: str, opener: Callable[[], BinaryIO], size: int) -> ArtifactInfo:
        """One PUT streamed from ``opener()``, hashing as it sends; the ETag must equal the MD5 sent."""
        name = self._name(key)
        self._ensure_container(self.container)
        # sha256 goes in the PUT's own headers, so it must be known first: one local read to hash.
        with opener() as source:
            sha256, md5 = _hash_stream(source)
        headers = {SHA256_HEADER: sha256, "ETag": md5, "Content-Type": "application/octet-stream"}
        sources: list[BinaryIO] = []

        def body():
            source = opener()
            sources.append(source)
            return _SizedReader(source, size)

        try:
            response = self._request(
                "PUT", self._url(self.container, name), ok=(201,), headers=headers, data_factory=body
            )
        finally:
            for source in sources:
                source.close()
        # Swift refuses (422) a body whose MD5 differs from the ETag sent; check the answer too.
        if response.headers.get("Etag", "").strip('"') != md5:
            raise ArtifactError(f"upload of {key!r}: Swift stored ETag {response.headers.get('Etag')}, sent MD5 {md5}")
        if self._has_segments():
            # The name may have been a large object: its segments are now unreferenced.
            self._drop_stale_segments(self.container + SEGMENT_SUFFIX, name, keep="")
        return ArtifactInfo(key, sha256, size)

    def _has_segments(self) -> bool:
        """Whether the segments container exists (asked once; a large upload creates it)."""
        if self._segments_exist is None:
            response = self._request("HEAD", self._url(self.container + SEGMENT_SUFFIX), ok=(200, 204, 404))
            self._segments_exist = response.status_code != 404
        return self._segments_exist

    def _put_large(self, key: str, path: Path, size: int) -> ArtifactInfo:
        """Static large object: segments in parallel, each checked by its ETag, then the manifest."""
        name = self._name(key)
        segments_container = self.container + SEGMENT_SUFFIX
        self._ensure_container(self.container)
        self._ensure_container(segments_container)
        self._segments_exist = True
        upload_id = uuid.uuid4().hex
        sha256 = hashlib.sha256()
        manifest: list[dict] = []
        futures: list[Future] = []
        # At most workers+1 segments are held in memory: the file itself is never read whole.
        slots = threading.BoundedSemaphore(self.workers + 1)
        with ThreadPoolExecutor(self.workers, thread_name_prefix="swift-segment") as pool:
            try:
                with open(path, "rb") as source:
                    index = 0
                    while True:
                        slots.acquire()
                        chunk = source.read(self.segment_size)
                        if not chunk:
                            slots.release()
                            break
                        sha256.update(chunk)
                        segment = f"{name}/{upload_id}/{index:08d}"
                        manifest.append({"path": f"/{segments_container}/{segment}", "size_bytes": len(chunk)})
                        future = pool.submit(self._put_segment, segments_container, segment, chunk)
                        future.add_done_callback(lambda _f: slots.release())
                        manifest[-1]["etag"] = future
                        futures.append(future)
                        index += 1
                        if any(f.done() and f.exception() for f in futures):
                            break
                done, _ = wait(futures, return_when=FIRST_EXCEPTION)
                for future in futures:
                    future.result()
            except BaseException:
                for future in futures:
                    future.cancel()
                wait(futures)
                self._delete_segments(segments_container, f"{name}/{upload_id}/")
                raise
        for entry in manifest:
            entry["etag"] = entry["etag"].result()
        digest = sha256.hexdigest()
        body = json.dumps(manifest).encode()
        headers = {SHA256_HEADER: digest, "Content-Type": "application/octet-stream"}
        try:
            self._request(
                "PUT",
                self._url(self.container, name) + "?multipart-manifest=put",
                ok=(201,),
                headers=headers,
                data=body,
            )
        except BaseException:
            self._delete_segments(segments_container, f"{name}/{upload_id}/")
            raise
        self._drop_stale_segments(segments_container, name, keep=upload_id)
        return ArtifactInfo(key, digest, size)

    def _drop_stale_segments(self, container: str, name: str, keep: str) -> None:
        """Delete the segments of earlier uploads of ``name``, now that its manifest names only ``keep``'s."""
        pattern = re.compile(re.escape(name) + r"/([0-9a-f]{32})/\d{8}")
        for segment in list(self._object_names(container, f"{name}/")):
            match = pattern.fullmatch(segment)
            if match and match.group(1) != keep:
                self._request("DELETE", self._url(container, segment), ok=(204, 404))

    def _put_segment(self, container: str, name: str, chunk: bytes) -> str:
        md5 = hashlib.md5(chunk, usedforsecurity=False).hexdigest()
        response = self._request(
            "PUT", self._url(container, name), ok=(201,), headers={"ETag": md5}, data_factory=lambda: chunk
        )
        etag = response.headers.get("Etag", "").strip('"')
        if etag != md5:
            raise ArtifactError(f"segment {name}: Swift stored ETag {etag}, sent MD5 {md5}")
        return md5

    def _delete_segments(self, container: str, prefix: str) -> None:
        for name in self._object_names(container, prefix):
            self._request("DELETE", self._url(container, name), ok=(204, 404))

    def get_bytes(self, key: str, sha256: str | None = None) -> bytes:
        buffer = io.BytesIO()
        self._download(key, buffer, sha256)
        return buffer.getvalue()

    def get_file(self, key: str, dest: Path, sha256: str | None = None) -> Path:
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
        try:
            with os.fdopen(fd, "wb") as out:
                self._download(key, out, sha256)
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return dest

    def _download(self, key: str, out: BinaryIO, expected_sha256: str | None) -> None:
        """Stream ``key`` into ``out``, checking MD5s against ETags and the sha256 against the metadata.

        ``multipart-manifest=get`` answers a plain object's bytes as usual, and a large object's segment list
        instead of its bytes: the same single request tells which download to do.
        """
        name = self._name(key)
        url = self._url(self.container, name) + "?multipart-manifest=get"
        for attempt in range(1, RETRIES + 1):
            response = self._request("GET", url, ok=(200, 404), stream=True)
            if response.status_code == 404:
                raise ArtifactNotFound(f"no artifact {key!r} in {self.uri}")
            if response.headers.get("X-Static-Large-Object", "").lower() == "true":
                segments = json.loads(response.content)
                # The sha256 over every byte is the end-to-end check; hashing each segment's MD5 as well would
                # double the CPU a download costs, so it is done only when no sha256 is known.
                known = response.headers.get(SHA256_HEADER) or expected_sha256
                actual = self._download_segments(key, segments, out, hash_segments=not known)
                break
            start = out.tell() if out.seekable() else None
            sha256, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
            try:
                _receive(response.iter_content(DOWNLOAD_CHUNK), out, (sha256, md5))
            except Exception as exc:  # a connection dropped mid-body: start again from the beginning
                if attempt == RETRIES or start is None:
                    raise CloudError(f"download of {key!r} from {self.uri} failed: {exc}") from exc
                out.seek(start)
                out.truncate()
                time.sleep(0.5 * 2**attempt)
                continue
            finally:
                response.close()
            etag = response.headers.get("Etag", "").strip('"')
            if etag != md5.hexdigest():
                raise ArtifactError(f"artifact {key!r} is corrupted in transfer: MD5 {md5.hexdigest()}, ETag {etag}")
            actual = sha256.hexdigest()
            break
        recorded = response.headers.get(SHA256_HEADER)
        if recorded and recorded != actual:
            raise ArtifactError(f"artifact {key!r} is corrupted: sha256 {actual}, recorded {recorded}")
        if expected_sha256 is not None and actual != expected_sha256:
            raise ArtifactError(f"artifact {key!r} is corrupted: sha256 {actual}, expected {expected_sha256}")

    def _download_segments(self, key: str, segments: list[dict], out: BinaryIO, hash_segments: bool) -> str:
        """Fetch a large object's segments in parallel, each checked against its ETag; return the sha256.

        Segments are written in order and hashed as they are written; at most ``workers + 1`` are fetched and
        not yet written, which bounds the memory held.
        """
        sha256 = hashlib.sha256()
        with ThreadPoolExecutor(self.workers, thread_name_prefix="swift-segment") as pool:
            pending: list[Future] = []
            try:
                for segment in segments:
                    pending.append(pool.submit(self._get_segment, key, segment, hash_segments))
                    if len(pending) > self.workers:
                        _write_segment(pending.pop(0).result(), out, sha256)
                for future in pending:
                    _write_segment(future.result(), out, sha256)
            except BaseException:
                for future in pending:
                    future.cancel()
                raise
        return sha256.hexdigest()

    def _get_segment(self, key: str, segment: dict, hash_bytes: bool) -> bytes:
        """One segment's bytes (whole: segments are bounded), whose ETag must be the one in the manifest.

        With ``hash_bytes`` the bytes' MD5 must match too; a mismatch is fetched once more, in case the
        transfer and not the stored segment was at fault.
        """
        container, _, name = segment["name"].lstrip("/").partition("/")
        url = self._url(container, name)
        for _attempt in (1, 2):
            response = self._request("GET", url, ok=(200, 404), stream=True)
            try:
                if response.status_code == 404:
                    raise ArtifactError(f"artifact {key!r} is damaged: its segment {segment['name']} is missing")
                # One read of the whole body: requests' .content would assemble it from 10 KiB pieces.
                data = response.raw.read()
            finally:
                response.close()
            etag = response.headers.get("Etag", "").strip('"')
            if etag != segment["hash"]:
                raise ArtifactError(
                    f"artifact {key!r} is corrupted: segment {segment['name']} has ETag {etag}, "
                    f"the manifest says {segment['hash']}"
                )
            md5 = hashlib.md5(data, usedforsecurity=False).hexdigest() if hash_bytes else etag
            if md5 == etag and len(data) == segment["bytes"]:
                return data
        raise ArtifactError(f"artifact {key!r} is corrupted in transfer: segment {segment['name']} has MD5 {md5}, "
                            f"ETag {etag}, {len(data)} bytes of {segment['bytes']}")

    def exists(self, key: str) -> bool:
        name = self._name(key)
        return self._head(name) is not None or self._head(f"{name}/{MANIFEST}") is not None

    def _object_names(self, container: str, prefix: str) -> Iterator[str]:
        marker = ""
        while True:
            response = self._request(
                "GET",
                self._url(container),
                ok=(200, 204, 404),
                params={"format": "json", "prefix": prefix, "marker": marker},
            )
            if response.status_code != 200:
                return
            page = response.json()
            if not page:
                return
            for entry in page:
                yield entry["name"]
            marker = page[-1]["name"]

    def list(self, prefix: str = "") -> Iterator[str]:
        base = f"{self.prefix}/" if self.prefix else ""
        wanted = prefix.strip("/")
        names = self._object_names(self.container, base + wanted)
        keys = (name[len(base) :] for name in names)
        # As in the local store, a prefix names a folder: "runs" lists "runs/..." but not "runs2/...".
        return iter(sorted(k for k in keys if not wanted or k == wanted or k.startswith(wanted + "/")))

    def delete(self, key: str) -> None:
        name = self._name(key)
        head = self._head(name)
        if head is not None:
            query = "?multipart-manifest=delete" if head.headers.get("X-Static-Large-Object", "").lower() == "true" else ""
            self._request("DELETE", self._url(self.container, name) + query, ok=(200, 204, 404))
            return
        # A dataset: drop the manifest first so a half-deleted dataset is never taken for a complete one.
        self._request("DELETE", self._url(self.container, f"{name}/{MANIFEST}"), ok=(204, 404))
        for child in list(self._object_names(self.container, f"{name}/")):
            self._request("DELETE", self._url(self.container, child), ok=(204, 404))

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
        if self._head(f"{self._name(key)}/{MANIFEST}") is not None:
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
        if check and method == "GET" and not prefix and self._head(name) is None:
            raise ArtifactNotFound(f"no artifact {key!r} in {self.uri}")
        endpoint = urlparse(self.conn.object_store.get_endpoint())
        path = f"{endpoint.path.rstrip('/')}/{self._url(self.container, name)}"
        expires = int(time.time()) + int(expires_in)
        signed = f"prefix:{path}/" if prefix else path
        signature = hmac.new(self._temp_url_secret().encode(), f"{method}\n{expires}\n{signed}".encode(),
                             hashlib.sha256).hexdigest()
        query = f"temp_url_sig={signature}&temp_url_expires={expires}"
        if prefix:
            # First: readers such as dask strip a trailing "/" from a path, which would cut the prefix's.
            query = f"temp_url_prefix={quote(name + '/', safe='/')}&{query}"
        return f"{endpoint.scheme}://{endpoint.netloc}{path}?{query}"

    def _temp_url_secret(self) -> str:
        # Its own lock: two threads each setting a new key would invalidate the URLs signed with the first.
        with self._secret_lock:
            if self._secret is None:
                container_url = self._url(self.container)
                head = self._request("HEAD", container_url, ok=(200, 204, 404))
                if head.status_code == 404:
                    self._ensure_container(self.container)
                    head = self._request("HEAD", container_url, ok=(200, 204))
                secret = head.headers.get("X-Container-Meta-Temp-Url-Key")
                if not secret:
                    secret = secrets.token_hex(32)
                    self._request("POST", container_url, ok=(204,), headers={"X-Container-Meta-Temp-URL-Key": secret})
                self._secret = secret
            return self._secret


class _SizedReader(io.RawIOBase):
    """A file wrapper with a length, so the HTTP client sends Content-Length and streams the body."""

    def __init__(self, source: BinaryIO, size: int):
        self._source = source
        self._size = size

    def __len__(self) -> int:
        return self._size

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self._source.read() if size is None or size < 0 else self._source.read(size)


def _write_segment(data: bytes, out: BinaryIO, sha256) -> None:
    sha256.update(data)
    out.write(data)


def _receive(chunks: Iterator[bytes], out: BinaryIO, digests: tuple) -> None:
    """Write ``chunks`` to ``out`` and feed them to ``digests``, hashing in a second thread.

    Socket reads, hashing and file writes all release the GIL: receiving the next chunk while the previous
    one is hashed and written keeps a download as fast as one that does not check anything.
    """
    pending: queue.Queue = queue.Queue(maxsize=4)
    failure: list[BaseException] = []

    def consume() -> None:
        try:
            while (chunk := pending.get()) is not None:
                for digest in digests:
                    digest.update(chunk)
                out.write(chunk)
        except BaseException as exc:  # handed to the receiving thread, which re-raises it
            failure.append(exc)
            while pending.get() is not None:  # drain so the producer never blocks
                pass

    worker = threading.Thread(target=consume, name="swift-download-hash", daemon=True)
    worker.start()
    try:
        for chunk in chunks:
            if failure:
                break
            pending.put(chunk)
    finally:
        pending.put(None)
        worker.join()
    if failure:
        raise failure[0]


def _hash_stream(source: BinaryIO) -> tuple[str, str]:
    sha256, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    for chunk in iter(lambda: source.read(CHUNK), b""):
        sha256.update(chunk)
        md5.update(chunk)
    return sha256.hexdigest(), md5.hexdigest()


def _is_connection_failure(exc: CloudError) -> bool:
    import keystoneauth1.exceptions

    cause = exc.__cause__
    return isinstance(cause, (keystoneauth1.exceptions.ConnectFailure, keystoneauth1.exceptions.ConnectionError))
