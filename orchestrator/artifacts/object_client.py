"""One HTTP client for object-store (Swift) requests, with one retry policy and one checksum policy.

It runs over a ``Transport``: with the store's credentials (a keystoneauth session, in ``orchestrator.openstack``)
or with signed URLs alone (``SignedURLTransport``: the standard library only, for Dask workers and inference nodes,
which hold no credentials and no openstacksdk).

* Retries: a 5xx answer or a dropped connection is tried again, with exponential backoff; any other answer not in
  the caller's ``ok`` statuses is final. A request body comes from a factory, since a stream cannot be replayed.
* Checksums: every upload sends its MD5 as ``ETag`` (Swift refuses a body that does not match, with 422, which is
  retried: the body was damaged on the way) and its sha256 in ``SHA256_HEADER``; the ETag Swift answers must be the
  MD5 that was sent.
"""

from __future__ import annotations

import hashlib
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from typing import Protocol

from orchestrator.errors import ArtifactError, CloudError

# Object-store metadata carrying an object's sha256, set by every writer (the store, and workers through TempURLs).
SHA256_HEADER = "X-Object-Meta-Sha256"
RETRIES = 5
RETRY_STATUSES = frozenset({500, 502, 503, 504})
# 422: Swift found that the body it received does not match the ETag sent; the bytes were damaged on the way.
UPLOAD_RETRY_STATUSES = RETRY_STATUSES | {422}


class Reply(Protocol):
    """One HTTP answer, whatever the transport."""

    status: int
    headers: Mapping[str, str]  # case-insensitive

    def read(self) -> bytes:
        """The whole body."""

    def iter_chunks(self, size: int) -> Iterator[bytes]:
        """The body in pieces of at most ``size`` bytes, streamed."""

    def close(self) -> None:
        """Release the connection."""


class Transport(Protocol):
    """Sends one request and returns the answer, whatever its status; raises one of ``dropped`` when no answer came
    (worth another try)."""

    dropped: tuple[type[BaseException], ...]

    def send(self, method: str, url: str, *, headers: dict, params: dict | None, data, stream: bool) -> Reply:
        """Send ``method`` to ``url`` (relative to the object store's endpoint, or an absolute signed URL)."""


def etag_of(reply: Reply) -> str:
    return reply.headers.get("Etag", "").strip('"')


def upload_headers(sha256: str | None, md5: str) -> dict:
    """Headers of every object upload: Swift checks the MD5, readers check the sha256 (a large object's segments
    carry none: the sha256 of the whole object, on its manifest, is the end-to-end check)."""
    headers = {"ETag": md5, "Content-Type": "application/octet-stream"}
    if sha256 is not None:
        headers[SHA256_HEADER] = sha256
    return headers


class ObjectClient:
    """Object-store requests over ``transport``, retried and checked the same way for every caller.

    Args:
        transport: how requests are sent (credentials or signed URLs).
        retries: attempts per request.
        backoff_s: the first pause between attempts, doubled after each.
    """

    def __init__(self, transport: Transport, retries: int = RETRIES, backoff_s: float = 0.5):
        self.transport = transport
        self.retries = retries
        self.backoff_s = backoff_s

    def request(
        self,
        method: str,
        url: str,
        *,
        ok: tuple[int, ...],
        headers: dict | None = None,
        params: dict | None = None,
        data: bytes | None = None,
        data_factory: Callable[[], object] | None = None,
        stream: bool = False,
        retry_statuses: frozenset[int] = RETRY_STATUSES,
    ) -> Reply:
        """One request, retried on ``retry_statuses`` and dropped connections; an answer in ``ok`` is returned.

        Raises:
            CloudError: any other answer (naming method, URL without its query, status and the answer's start),
                or every attempt failed.
        """
        where = f"{method} {url.split('?', 1)[0]}"
        for attempt in range(1, self.retries + 1):
            body = data_factory() if data_factory is not None else data
            try:
                reply = self.transport.send(method, url, headers=dict(headers or {}), params=params, data=body,
                                            stream=stream)
            except self.transport.dropped as exc:
                failure = f"{type(exc).__name__}: {exc}"
            else:
                if reply.status in ok:
                    return reply
                text = _start_of(reply)
                if reply.status not in retry_statuses:
                    raise CloudError(f"Swift {where} answered {reply.status}: {text}")
                failure = f"HTTP {reply.status}"
            if attempt == self.retries:
                raise CloudError(f"Swift {where} failed {self.retries} times, last: {failure}")
            self.pause(attempt)
        raise AssertionError("unreachable")

    def pause(self, attempt: int) -> None:
        """Wait before attempt ``attempt + 1``: the backoff every retry of this client follows (requests, and
        downloads that drop mid-body)."""
        time.sleep(self.backoff_s * 2 ** (attempt - 1))

    def put_checked(self, url: str, data_factory: Callable[[], object], sha256: str | None, md5: str,
                    headers: dict | None = None) -> Reply:
        """PUT a body whose sha256 and MD5 are known; the ETag Swift stored must be that MD5.

        Raises:
            ArtifactError: Swift stored another ETag than the MD5 sent.
        """
        reply = self.request("PUT", url, ok=(201,), headers={**upload_headers(sha256, md5), **(headers or {})},
                             data_factory=data_factory, retry_statuses=UPLOAD_RETRY_STATUSES)
        if etag_of(reply) != md5:
            raise ArtifactError(f"upload to {url.split('?', 1)[0]}: Swift stored ETag {etag_of(reply)}, sent MD5 {md5}")
        return reply

    def put_bytes(self, url: str, data: bytes) -> tuple[str, int]:
        """PUT ``data`` whole with both checksums; return its sha256 and size."""
        sha256 = hashlib.sha256(data).hexdigest()
        md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
        self.put_checked(url, lambda: data, sha256, md5)
        return sha256, len(data)


def _start_of(reply: Reply) -> str:
    try:
        return reply.read()[:200].decode(errors="replace").strip()
    except Exception:  # the answer's body is only a hint in a message
        return ""
    finally:
        reply.close()


class _URLReply:
    def __init__(self, response):
        self._response = response
        self.status = response.status if hasattr(response, "status") else response.code
        self.headers = response.headers  # email.message.Message: case-insensitive get

    def read(self) -> bytes:
        return self._response.read()

    def iter_chunks(self, size: int) -> Iterator[bytes]:
        while chunk := self._response.read(size):
            yield chunk

    def close(self) -> None:
        self._response.close()


class SignedURLTransport:
    """Requests to signed URLs (Swift TempURLs) with the standard library: no credentials, no SDK.

    Args:
        timeout_s: socket timeout per request.
    """

    # An HTTPError is an answer, handed back as a reply; any other URLError or OSError means no answer came.
    dropped = (urllib.error.URLError, OSError)

    def __init__(self, timeout_s: float = 300):
        self.timeout_s = timeout_s

    def send(self, method: str, url: str, *, headers: dict, params: dict | None, data, stream: bool) -> Reply:
        if params:
            from urllib.parse import urlencode

            url += ("&" if "?" in url else "?") + urlencode(params)
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            return _URLReply(urllib.request.urlopen(request, timeout=self.timeout_s))
        except urllib.error.HTTPError as exc:  # an answer, not a failure: the client decides
            return _URLReply(exc)
