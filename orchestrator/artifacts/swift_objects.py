"""The objects of one Swift container, through the object client: streamed, checksummed transfers, and large files
as static large objects.

Every transfer is checked twice: Swift's ETag (MD5) against the MD5 computed while sending or receiving, and the
sha256 recorded in the object's metadata against the sha256 of the bytes. A body that breaks off, stalls or arrives
short (even under a ``Content-Length`` that matches it) is fetched again, within the object client's retry policy;
an upload whose answer was lost is taken as done only once Swift shows its bytes. Files above ``segment_threshold``
become static large objects: segments are uploaded in parallel to a hidden ``<container>_segments`` container and the
manifest is written last, so an interrupted upload never shows; they are downloaded segment by segment in parallel
too, each segment checked against its ETag. Names here are object names; artifact keys are the store's business.
"""

from __future__ import annotations

import hashlib
import io
import json
import queue
import re
import secrets
import threading
import time
import uuid
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import BinaryIO, Callable, Iterator
from urllib.parse import quote

from orchestrator.artifacts.object_client import (
    SHA256_HEADER,
    UPLOAD_RETRY_STATUSES,
    ObjectClient,
    Reply,
    describe_failure,
    etag_of,
    upload_headers,
)
from orchestrator.artifacts.store import CHUNK
from orchestrator.errors import ArtifactError, CloudError

SEGMENT_SUFFIX = "_segments"
DEFAULT_SEGMENT_SIZE = 64 << 20
DEFAULT_THRESHOLD = 128 << 20
DOWNLOAD_CHUNK = 4 << 20
# Longer than a small object's PUT takes from the object server's existence check to its commit.
CREATE_SETTLE_S = 0.5
# The container's own objects, never an artifact: the first TempURL key (see SwiftContainer.temp_url_key).
INTERNAL_PREFIX = ".dataops/"
TEMP_URL_KEY_OBJECT = INTERNAL_PREFIX + "temp-url-key"


def object_path(container: str, name: str | None = None) -> str:
    """The URL path of a container, or of one object in it, relative to the object-store endpoint."""
    path = quote(container, safe="")
    return path if name is None else f"{path}/{quote(name, safe='/')}"


def is_large_object(reply: Reply) -> bool:
    return reply.headers.get("X-Static-Large-Object", "").lower() == "true"


class SwiftContainer:
    """One container's objects (and its segments container's).

    Args:
        client: the object client (with credentials) every request goes through.
        container: the container's name; created private on first write.
        segment_size: bytes per segment of a static large object.
        segment_threshold: files larger than this are uploaded as static large objects.
        workers: parallel segment transfers.
    """

    def __init__(self, client: ObjectClient, container: str, *, segment_size: int = DEFAULT_SEGMENT_SIZE,
                 segment_threshold: int = DEFAULT_THRESHOLD, workers: int = 4):
        self.client = client
        self.name = container
        self.segments = container + SEGMENT_SUFFIX
        self.segment_size = segment_size
        self.segment_threshold = max(segment_threshold, segment_size)
        self.workers = workers
        self._ready: set[str] = set()
        self._segments_exist: bool | None = None
        self._lock = threading.Lock()
        self._secret: str | None = None
        self._secret_lock = threading.Lock()

    # --- containers and metadata -----------------------------------------------------------------

    def ensure(self, container: str | None = None) -> None:
        """Create ``container`` (this one by default) if needed, private: no read ACL, whatever it had before."""
        container = container or self.name
        with self._lock:
            if container in self._ready:
                return
        self.client.request("PUT", object_path(container), ok=(201, 202, 204), headers={"X-Remove-Container-Read": "x"})
        with self._lock:
            self._ready.add(container)

    def head(self, name: str, newest: bool = False) -> Reply | None:
        """The object's metadata, or None if it does not exist; ``newest`` asks every replica (``X-Newest``)."""
        headers = {"X-Newest": "true"} if newest else None
        reply = self.client.request("HEAD", object_path(self.name, name), ok=(200, 204, 404), headers=headers)
        return None if reply.status == 404 else reply

    def names(self, prefix: str, container: str | None = None) -> Iterator[str]:
        """Object names under ``prefix``, in Swift's (sorted) order, page by page."""
        container = container or self.name
        marker = ""
        while True:
            page = self._listing_page(container, prefix, marker)
            if not page:
                return
            for entry in page:
                yield entry["name"]
            marker = page[-1]["name"]

    def _listing_page(self, container: str, prefix: str, marker: str) -> list[dict]:
        """One page of a container listing (empty when the container does not exist).

        A listing carries no checksum: a page whose body breaks off or is not whole JSON is asked for again.

        Raises:
            CloudError: the page kept arriving damaged.
        """
        params = {"format": "json", "prefix": prefix, "marker": marker}
        for attempt in range(1, self.client.retries + 1):
            reply = self.client.request("GET", object_path(container), ok=(200, 204, 404), params=params)
            if reply.status != 200:
                return []
            try:
                return json.loads(reply.read())
            except (ValueError, *self.client.transport.dropped) as exc:
                failure = exc
            finally:
                reply.close()
            if attempt < self.client.retries:
                self.client.pause(attempt)
        raise CloudError(f"listing of Swift container {container} (prefix {prefix!r}) arrived damaged "
                         f"{self.client.retries} times, last: {type(failure).__name__}: {failure}")

    def temp_url_key(self) -> str:
        """The container's TempURL signing key (X-Container-Meta-Temp-URL-Key): a random one, set on first use.

        Processes signing their first URLs at the same time (two runners ticking the same store) must not each set a
        key of their own: the last one set would invalidate the URLs the others signed. So the first key is created
        as an object, which only one writer can create; every process then sets the container's key from that object,
        all to the same value. The object is as private as the container, and outside every prefix a URL signs.
        """
        with self._secret_lock:  # threads of one process: one HEAD, one candidate
            if self._secret is None:
                path = object_path(self.name)
                head = self.client.request("HEAD", path, ok=(200, 204, 404))
                if head.status == 404:
                    self.ensure()
                    head = self.client.request("HEAD", path, ok=(200, 204))
                secret = head.headers.get("X-Container-Meta-Temp-Url-Key")
                if not secret:
                    self.put_bytes_if_absent(TEMP_URL_KEY_OBJECT, secrets.token_hex(32).encode())
                    stored = io.BytesIO()
                    if not self.download(TEMP_URL_KEY_OBJECT, stored, None, "the container's TempURL key"):
                        raise CloudError(f"Swift container {self.name}: its TempURL key vanished as it was created")
                    secret = stored.getvalue().decode()
                    self.client.request("POST", path, ok=(204,), headers={"X-Container-Meta-Temp-URL-Key": secret})
                self._secret = secret
            return self._secret

    # --- uploads ---------------------------------------------------------------------------------

    def put_bytes(self, name: str, data: bytes) -> str:
        """Upload ``data`` as ``name``; return its sha256."""
        return self._put_stream(name, lambda: io.BytesIO(data), len(data))

    def put_bytes_if_absent(self, name: str, data: bytes) -> bool:
        """Upload ``data`` as ``name`` only if no object has that name (``If-None-Match: *``; Swift answers 412 when
        one has); return whether this call created it.

        A retried PUT whose first answer was lost meets its own object and is answered 412: an object holding
        exactly these bytes (same sha256) counts as created by this call. Writers racing for a name must therefore
        write different bytes (leases carry their holder and a random token).

        Raises:
            ArtifactError: Swift stored another ETag than the MD5 sent.
        """
        self.ensure()
        sha256 = hashlib.sha256(data).hexdigest()
        md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
        headers = {**upload_headers(sha256, md5), "If-None-Match": "*"}
        reply = self.client.request("PUT", object_path(self.name, name), ok=(201, 412), headers=headers,
                                    data_factory=lambda: data, retry_statuses=UPLOAD_RETRY_STATUSES)
        if reply.status == 201:
            if etag_of(reply) != md5:
                raise ArtifactError(f"upload of {name}: Swift stored ETag {etag_of(reply)}, sent MD5 {md5}")
            # Swift has no compare-and-swap: PUTs racing within the object server's check-to-commit window all pass
            # the condition, and the newest of them is what stays. Anything arriving later meets the object and is
            # refused. So once such a race has settled, the object is read back from its newest replica: only the
            # writer whose bytes stayed created it.
            time.sleep(CREATE_SETTLE_S)
        existing = self.head(name, newest=True)
        return existing is not None and existing.headers.get(SHA256_HEADER) == sha256

    def put_file(self, name: str, path: Path) -> tuple[str, int]:
        """Upload a local file as ``name`` (a static large object above the threshold); return sha256 and size."""
        size = path.stat().st_size
        if size > self.segment_threshold:
            return self._put_large(name, path), size
        return self._put_stream(name, lambda: open(path, "rb"), size), size

    def _put_stream(self, name: str, opener: Callable[[], BinaryIO], size: int) -> str:
        """One PUT streamed from ``opener()``; the ETag must equal the MD5 sent."""
        self.ensure()
        # sha256 goes in the PUT's own headers, so it must be known first: one local read to hash.
        with opener() as source:
            sha256, md5 = _hash_stream(source)
        sources: list[BinaryIO] = []

        def body():
            source = opener()
            sources.append(source)
            return _SizedReader(source, size)

        try:
            self.client.put_checked(object_path(self.name, name), body, sha256, md5)
        except CloudError:
            # The last attempt may have reached Swift and only its answer been lost: the bytes there say.
            if not self._landed(name, sha256, md5):
                raise
        finally:
            for source in sources:
                source.close()
        if self._has_segments():
            # The name may have been a large object: its segments are now unreferenced.
            self._drop_stale_segments(name, keep="")
        return sha256

    def _landed(self, name: str, sha256: str, md5: str) -> bool:
        """Whether the newest replica of ``name`` holds exactly the bytes with these checksums (False when that
        cannot be told either)."""
        try:
            head = self.head(name, newest=True)
        except CloudError:
            return False
        return head is not None and head.headers.get(SHA256_HEADER) == sha256 and etag_of(head) == md5

    def _has_segments(self) -> bool:
        """Whether the segments container exists (asked once; a large upload creates it)."""
        if self._segments_exist is None:
            reply = self.client.request("HEAD", object_path(self.segments), ok=(200, 204, 404))
            self._segments_exist = reply.status != 404
        return self._segments_exist

    def _put_large(self, name: str, path: Path) -> str:
        """Static large object: segments in parallel, each checked by its ETag, then the manifest."""
        self.ensure()
        self.ensure(self.segments)
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
                        manifest.append({"path": f"/{self.segments}/{segment}", "size_bytes": len(chunk)})
                        future = pool.submit(self._put_segment, segment, chunk)
                        future.add_done_callback(lambda _f: slots.release())
                        manifest[-1]["etag"] = future
                        futures.append(future)
                        index += 1
                        if any(f.done() and f.exception() for f in futures):
                            break
                wait(futures, return_when=FIRST_EXCEPTION)
                for future in futures:
                    future.result()
            except BaseException:
                for future in futures:
                    future.cancel()
                wait(futures)
                self._discard_segments(f"{name}/{upload_id}/")
                raise
        for entry in manifest:
            entry["etag"] = entry["etag"].result()
        digest = sha256.hexdigest()
        headers = {SHA256_HEADER: digest, "Content-Type": "application/octet-stream"}
        try:
            self.client.request("PUT", object_path(self.name, name) + "?multipart-manifest=put", ok=(201,),
                                headers=headers, data=json.dumps(manifest).encode())
        except Exception:
            # The manifest may have been stored with only its answer lost: then these segments are the object's, and
            # deleting them would publish a large object whose bytes are gone.
            referenced = self._manifest_upload(name)
            if referenced == upload_id:
                self._drop_stale_segments(name, keep=upload_id)
                return digest
            if referenced is not None:
                self._discard_segments(f"{name}/{upload_id}/")
            # Otherwise Swift could not be asked: the segments stay, unreferenced and invisible, until the next
            # upload of this name drops them as stale.
            raise
        self._drop_stale_segments(name, keep=upload_id)
        return digest

    def _manifest_upload(self, name: str) -> str | None:
        """The upload whose segments the large object ``name`` now references: its id, ``""`` when ``name`` is no
        large object of this container, None when Swift cannot tell."""
        try:
            # Streamed: should the name hold a plain object, its bytes are not fetched only to be ignored.
            reply = self.client.request("GET", object_path(self.name, name) + "?multipart-manifest=get",
                                        ok=(200, 404), headers={"X-Newest": "true"}, stream=True)
            if reply.status == 404 or not is_large_object(reply):
                reply.close()
                return ""
            segments = json.loads(self._whole_body(reply, "manifest of " + name))
        except (CloudError, ArtifactError, _Damaged, ValueError):
            return None
        match = re.fullmatch(rf"/{re.escape(self.segments)}/{re.escape(name)}/([0-9a-f]{{32}})/\d{{8}}",
                             segments[0]["name"]) if segments else None
        return match.group(1) if match else ""

    def _put_segment(self, segment: str, chunk: bytes) -> str:
        md5 = hashlib.md5(chunk, usedforsecurity=False).hexdigest()
        self.client.put_checked(object_path(self.segments, segment), lambda: chunk, None, md5)
        return md5

    def _drop_stale_segments(self, name: str, keep: str) -> None:
        """Delete the segments of earlier uploads of ``name``, now that its manifest names only ``keep``'s."""
        pattern = re.compile(re.escape(name) + r"/([0-9a-f]{32})/\d{8}")
        for segment in list(self.names(f"{name}/", self.segments)):
            match = pattern.fullmatch(segment)
            if match and match.group(1) != keep:
                self.client.request("DELETE", object_path(self.segments, segment), ok=(204, 404))

    def _delete_segments(self, prefix: str) -> None:
        for segment in list(self.names(prefix, self.segments)):
            self.client.request("DELETE", object_path(self.segments, segment), ok=(204, 404))

    def _discard_segments(self, prefix: str) -> None:
        """Delete a failed upload's segments if Swift lets us now; otherwise they stay unreferenced (never visible)
        and the next upload of the name drops them, so the upload's own error is the one reported."""
        try:
            self._delete_segments(prefix)
        except CloudError:
            pass

    # --- downloads -------------------------------------------------------------------------------

    def download(self, name: str, out: BinaryIO, expected_sha256: str | None, what: str) -> bool:
        """Stream object ``name`` into ``out``, checking MD5s against ETags and the sha256 against the metadata.

        ``multipart-manifest=get`` answers a plain object's bytes as usual, and a large object's segment list
        instead of its bytes: the same single request tells which download to do.

        Args:
            name: the object.
            out: where the bytes go; a seekable file lets a download that dropped mid-body start again.
            expected_sha256: the sha256 the bytes must have, when known.
            what: the object as the caller's messages call it (``artifact 'runs/r1/record.json'``).

        Returns:
            False if there is no such object (nothing written), True once every byte is written and checked.

        Raises:
            ArtifactError: the bytes do not match their ETag, their recorded sha256 or ``expected_sha256``.
            CloudError: the download kept failing.
        """
        url = object_path(self.name, name) + "?multipart-manifest=get"
        start = out.tell() if out.seekable() else None
        retries = self.client.retries
        for attempt in range(1, retries + 1):
            reply = self.client.request("GET", url, ok=(200, 404), stream=True)
            if reply.status == 404:
                reply.close()
                return False
            if is_large_object(reply):
                try:
                    segments = json.loads(self._whole_body(reply, f"the segment list of {what}"))
                except _Damaged as exc:
                    if attempt == retries:
                        raise CloudError(f"download of {what} failed {retries} times, last: {exc}") from exc
                    self.client.pause(attempt)
                    continue
                # The sha256 over every byte is the end-to-end check; hashing each segment's MD5 as well would
                # double the CPU a download costs, so it is done only when no sha256 is known.
                known = reply.headers.get(SHA256_HEADER) or expected_sha256
                actual = self._download_segments(segments, out, not known, what)
                break
            sha256, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
            try:
                _receive(reply.iter_chunks(DOWNLOAD_CHUNK), out, (sha256, md5))
                failure = None
            except self.client.transport.dropped as exc:  # the body broke off or stalled
                failure = describe_failure(exc)
            except OSError as exc:  # ``out`` could not take the bytes (a full disk): no other try can help
                raise ArtifactError(f"download of {what} could not be written: {exc}") from exc
            finally:
                reply.close()
            etag = etag_of(reply)
            if failure is None and etag != md5.hexdigest():
                # A body shorter or other than the object, under a Content-Length that matched it: only the ETag
                # tells. The stored object is checked again on the next try.
                failure = f"corrupted in transfer: MD5 {md5.hexdigest()}, ETag {etag}"
            if failure is None:
                actual = sha256.hexdigest()
                break
            if attempt == retries or start is None:
                error = ArtifactError if failure.startswith("corrupted") else CloudError
                raise error(f"download of {what} failed {attempt} times, last: {failure}")
            out.seek(start)
            out.truncate()
            self.client.pause(attempt)
        recorded = reply.headers.get(SHA256_HEADER)
        if recorded and recorded != actual:
            raise ArtifactError(f"{what} is corrupted: sha256 {actual}, recorded {recorded}")
        if expected_sha256 is not None and actual != expected_sha256:
            raise ArtifactError(f"{what} is corrupted: sha256 {actual}, expected {expected_sha256}")
        return True

    def _whole_body(self, reply: Reply, what: str) -> bytes:
        """A small answer's whole body, checked against its ETag when it has one (then closed).

        Raises:
            _Damaged: the body broke off, stalled, or is not the one its ETag names.
        """
        try:
            data = reply.read()
        except self.client.transport.dropped as exc:
            raise _Damaged(f"{what}: {describe_failure(exc)}") from exc
        finally:
            reply.close()
        etag = etag_of(reply)
        md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
        if etag and etag != md5:
            raise _Damaged(f"{what} is corrupted in transfer: MD5 {md5}, ETag {etag}")
        return data

    def _download_segments(self, segments: list[dict], out: BinaryIO, hash_segments: bool, what: str) -> str:
        """Fetch a large object's segments in parallel, each checked against its ETag; return the sha256.

        Segments are written in order and hashed as they are written; at most ``workers + 1`` are fetched and
        not yet written, which bounds the memory held.
        """
        sha256 = hashlib.sha256()
        with ThreadPoolExecutor(self.workers, thread_name_prefix="swift-segment") as pool:
            pending: list[Future] = []
            try:
                for segment in segments:
                    pending.append(pool.submit(self._get_segment, segment, hash_segments, what))
                    if len(pending) > self.workers:
                        _write_segment(pending.pop(0).result(), out, sha256)
                for future in pending:
                    _write_segment(future.result(), out, sha256)
            except BaseException:
                for future in pending:
                    future.cancel()
                raise
        return sha256.hexdigest()

    def _get_segment(self, segment: dict, hash_bytes: bool, what: str) -> bytes:
        """One segment's bytes (whole: segments are bounded), whose ETag must be the one in the manifest.

        A body that breaks off or arrives short is fetched again (the object client's attempts); with ``hash_bytes``
        the bytes' MD5 must match too, and a mismatch is fetched again as well, in case the transfer and not the
        stored segment was at fault.

        Raises:
            ArtifactError: the segment is missing, or its stored ETag or bytes are not the manifest's.
            CloudError: the segment kept breaking off on the way.
        """
        container, _, name = segment["name"].lstrip("/").partition("/")
        url = object_path(container, name)
        retries = self.client.retries
        for attempt in range(1, retries + 1):
            reply = self.client.request("GET", url, ok=(200, 404), stream=True)
            try:
                if reply.status == 404:
                    raise ArtifactError(f"{what} is damaged: its segment {segment['name']} is missing")
                data = reply.read()
            except self.client.transport.dropped as exc:
                if attempt == retries:
                    raise CloudError(f"download of {what} failed {retries} times, last: segment {segment['name']} "
                                     f"{describe_failure(exc)}") from exc
                self.client.pause(attempt)
                continue
            finally:
                reply.close()
            etag = etag_of(reply)
            if etag != segment["hash"]:
                raise ArtifactError(
                    f"{what} is corrupted: segment {segment['name']} has ETag {etag}, the manifest says {segment['hash']}"
                )
            md5 = hashlib.md5(data, usedforsecurity=False).hexdigest() if hash_bytes else etag
            if md5 == etag and len(data) == segment["bytes"]:
                return data
            if attempt < retries:
                self.client.pause(attempt)
        raise ArtifactError(f"{what} is corrupted in transfer: segment {segment['name']} has MD5 {md5}, "
                            f"ETag {etag}, {len(data)} bytes of {segment['bytes']}")

    # --- deletion --------------------------------------------------------------------------------

    def delete(self, name: str, head: Reply | None = None) -> None:
        """Delete one object (a large object with its segments); a missing object is no error."""
        head = head if head is not None else self.head(name)
        query = "?multipart-manifest=delete" if head is not None and is_large_object(head) else ""
        self.client.request("DELETE", object_path(self.name, name) + query, ok=(200, 204, 404))


class _Damaged(Exception):
    """An answer's body did not arrive whole (internal: a try to repeat, never seen by callers)."""


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
