"""A container's objects when Swift misbehaves: answers lost after the write took effect, bodies that break off or
arrive short under a length that matches them, listings cut in the middle.

The transport is an in-memory Swift (objects, listings, static large objects) with a hook that spoils chosen
requests; ``tests/chaos/test_swift_faults.py`` does the same against the real Swift through a faulty proxy.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Callable
from urllib.parse import unquote

import pytest
from requests.structures import CaseInsensitiveDict

from orchestrator.artifacts.object_client import SHA256_HEADER, ObjectClient
from orchestrator.artifacts.swift_objects import SEGMENT_SUFFIX, SwiftContainer
from orchestrator.errors import ArtifactError, CloudError

KIB = 1024


class MemoryReply:
    def __init__(self, status: int, headers: dict | None = None, body: bytes = b"", breaks_after: int | None = None):
        self.status = status
        self.headers = CaseInsensitiveDict(headers or {})
        self._body = body
        self._breaks_after = breaks_after

    def read(self) -> bytes:
        if self._breaks_after is not None:
            raise ConnectionError("the answer broke off")
        return self._body

    def iter_chunks(self, size: int):
        for start in range(0, len(self._body), size):
            if self._breaks_after is not None and start >= self._breaks_after:
                raise ConnectionError("the answer broke off")
            yield self._body[start:start + size]

    def close(self) -> None:
        pass


class MemorySwift:
    """Swift in memory, as an object-client transport. ``spoil(method, url)`` picks a fault for a request: None,
    ``"drop"`` (never arrives), ``"lose answer"`` (takes effect, no answer), ``"short"`` (the body's first half, as if
    whole) or ``"break"`` (the body breaks off)."""

    dropped = (TimeoutError, ConnectionError)

    def __init__(self):
        self.objects: dict[str, tuple[bytes, dict]] = {}
        self.containers: set[str] = set()
        self.spoil: Callable[[str, str], str | None] = lambda method, url: None
        self.requests: list[tuple[str, str]] = []

    def send(self, method, url, *, headers, params, data, stream):
        self.requests.append((method, url))
        fault = self.spoil(method, url)
        if fault == "drop":
            raise ConnectionError("no answer")
        body = data.read() if hasattr(data, "read") else (data or b"")
        reply = self._serve(method, url, headers, params or {}, body)
        if fault == "lose answer":
            raise ConnectionError("no answer")
        if fault == "short":
            reply._body = reply._body[: len(reply._body) // 2]
        if fault == "break":
            reply._breaks_after = len(reply._body) // 2
        return reply

    def _serve(self, method, url, headers, params, body) -> MemoryReply:
        path, _, query = url.partition("?")
        container, _, name = unquote(path).partition("/")
        if not name:
            return self._container(method, container, params)
        key = f"{container}/{name}"
        if method == "PUT" and "multipart-manifest=put" in query:
            segments = [{"name": s["path"], "hash": s["etag"], "bytes": s["size_bytes"]} for s in json.loads(body)]
            stored = json.dumps(segments).encode()
            self.objects[key] = (stored, {**_md5_headers(stored), "X-Static-Large-Object": "True",
                                          SHA256_HEADER: headers[SHA256_HEADER]})
            return MemoryReply(201, {"Etag": '"slo"'})
        if method == "PUT":
            if headers.get("If-None-Match") == "*" and key in self.objects:
                return MemoryReply(412)
            if hashlib.md5(body).hexdigest() != headers.get("ETag"):
                return MemoryReply(422)
            meta = {k: v for k, v in headers.items() if k.lower().startswith("x-object-meta-")}
            self.objects[key] = (body, {**_md5_headers(body), **meta})
            return MemoryReply(201, _md5_headers(body))
        if key not in self.objects:
            return MemoryReply(404)
        stored, meta = self.objects[key]
        if method == "DELETE":
            if "multipart-manifest=delete" in query:
                for segment in json.loads(stored):
                    self.objects.pop(segment["name"].lstrip("/"), None)
            del self.objects[key]
            return MemoryReply(204)
        return MemoryReply(200, meta, stored if method == "GET" else b"")

    def _container(self, method, container, params) -> MemoryReply:
        if method == "PUT":
            self.containers.add(container)
            return MemoryReply(201)
        if container not in self.containers:
            return MemoryReply(404)
        if method == "HEAD":
            return MemoryReply(204)
        prefix, marker = f"{container}/{params.get('prefix', '')}", params.get("marker", "")
        names = sorted(k.split("/", 1)[1] for k in self.objects if k.startswith(prefix))
        page = [{"name": n} for n in names if n > marker]
        return MemoryReply(200, {}, json.dumps(page).encode())

    def segments(self, container: str = "c") -> list[str]:
        return sorted(k for k in self.objects if k.startswith(container + SEGMENT_SUFFIX + "/"))


def _md5_headers(body: bytes) -> dict:
    return {"Etag": hashlib.md5(body).hexdigest(), "Content-Length": str(len(body))}


@pytest.fixture
def swift() -> MemorySwift:
    return MemorySwift()


@pytest.fixture
def container(swift) -> SwiftContainer:
    return SwiftContainer(ObjectClient(swift, backoff_s=0), "c", segment_size=4 * KIB, segment_threshold=8 * KIB,
                          workers=2)


def spoil(swift: MemorySwift, fault: str, method: str, marker: str, times: int | None = None) -> None:
    """Spoil the requests ``method`` whose URL contains ``marker``: all of them, or the first ``times``."""
    left = [times]

    def pick(m, url):
        if m == method and marker in url and (left[0] is None or left[0] > 0):
            left[0] = None if left[0] is None else left[0] - 1
            return fault
        return None

    swift.spoil = pick


def download(container: SwiftContainer, name: str) -> bytes:
    out = io.BytesIO()
    assert container.download(name, out, None, f"artifact {name!r}")
    return out.getvalue()


def test_an_object_put_whose_answers_were_all_lost_is_recognised_by_its_bytes(swift, container):
    data = os.urandom(3 * KIB)
    spoil(swift, "lose answer", "PUT", "c/runs/r1")
    assert container.put_bytes("runs/r1", data) == hashlib.sha256(data).hexdigest()
    assert download(container, "runs/r1") == data


def test_an_object_put_that_never_arrived_fails_and_the_version_before_stays(swift, container):
    container.put_bytes("runs/r1", b"version one")
    spoil(swift, "drop", "PUT", "c/runs/r1")
    with pytest.raises(CloudError, match=r"PUT c/runs/r1 failed 5 times, last: connection dropped"):
        container.put_bytes("runs/r1", b"version two")
    assert download(container, "runs/r1") == b"version one"


def test_a_large_object_whose_manifest_answers_were_lost_keeps_its_segments(swift, container, tmp_path):
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(18 * KIB))
    spoil(swift, "lose answer", "PUT", "multipart-manifest=put")
    sha256, size = container.put_file("data/big", source)
    assert sha256 == hashlib.sha256(source.read_bytes()).hexdigest() and size == 18 * KIB
    assert len(swift.segments()) == 5
    assert download(container, "data/big") == source.read_bytes()


def test_a_manifest_put_that_never_arrived_fails_and_removes_its_segments(swift, container, tmp_path):
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(18 * KIB))
    spoil(swift, "drop", "PUT", "multipart-manifest=put")
    with pytest.raises(CloudError, match=r"PUT c/data/big failed 5 times"):
        container.put_file("data/big", source)
    assert container.head("data/big") is None and swift.segments() == []


def test_segments_stay_unreferenced_when_swift_cannot_say_whether_the_manifest_landed(swift, container, tmp_path):
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(18 * KIB))
    swift.spoil = lambda m, url: "drop" if "multipart-manifest" in url or m == "DELETE" else None
    with pytest.raises(CloudError):
        container.put_file("data/big", source)
    assert container.head("data/big") is None and len(swift.segments()) == 5
    # Invisible, and dropped as stale by the next upload of the name.
    swift.spoil = lambda m, url: None
    container.put_file("data/big", source)
    assert len(swift.segments()) == 5 and download(container, "data/big") == source.read_bytes()


@pytest.mark.parametrize("fault", ["short", "break"])
def test_a_body_that_arrives_short_or_breaks_off_once_is_fetched_again(swift, container, fault):
    data = os.urandom(6 * KIB)
    container.put_bytes("models/m1", data)
    spoil(swift, fault, "GET", "c/models/m1", times=1)
    assert download(container, "models/m1") == data


def test_a_body_that_always_arrives_short_is_never_taken_for_the_object(swift, container):
    container.put_bytes("models/m1", os.urandom(6 * KIB))
    spoil(swift, "short", "GET", "c/models/m1")
    out = io.BytesIO()
    with pytest.raises(ArtifactError, match=r"artifact 'models/m1' failed 5 times, last: corrupted in transfer"):
        container.download("models/m1", out, None, "artifact 'models/m1'")


@pytest.mark.parametrize("fault, where", [("short", "c/data/big?"), ("break", "c/data/big?"),
                                          ("short", "c_segments/"), ("break", "c_segments/")])
def test_a_large_objects_segment_list_and_segments_are_fetched_again_when_damaged(swift, container, tmp_path, fault,
                                                                                  where):
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(18 * KIB))
    container.put_file("data/big", source)
    spoil(swift, fault, "GET", where, times=1)
    assert download(container, "data/big") == source.read_bytes()


def test_a_listing_cut_in_the_middle_is_asked_for_again_and_a_lasting_one_is_an_error(swift, container):
    for n in range(3):
        container.put_bytes(f"runs/r{n}", b"x")
    spoil(swift, "short", "GET", "c", times=1)
    assert list(container.names("runs/")) == ["runs/r0", "runs/r1", "runs/r2"]
    spoil(swift, "break", "GET", "c")
    with pytest.raises(CloudError, match=r"listing of Swift container c \(prefix 'runs/'\) arrived damaged 5 times"):
        list(container.names("runs/"))
