"""One HTTP client for object-store (Swift) requests, with one retry policy and one checksum policy.

It runs over a ``Transport``: with the store's credentials (a keystoneauth session, in ``orchestrator.openstack``)
or with signed URLs alone (``SignedURLTransport``: the standard library only, for Dask workers and inference nodes,
which hold no credentials and no openstacksdk).

* Retries: a 5xx answer, a dropped connection or a request that timed out is tried again (``RETRIES`` attempts in
  all), after a pause that doubles from ``backoff_s`` with random jitter (so clients that failed together do not
  come back together), never shorter than the server's ``Retry-After`` nor longer than ``MAX_PAUSE_S``; any other
  answer not in the caller's ``ok`` statuses is final. A request body comes from a factory, since a stream cannot be
  replayed. Every request Swift serves is idempotent as the store uses it (whole-object PUTs, DELETEs that accept
  404, create-only PUTs that recognise their own object), so retrying one whose answer was lost is safe.
* Reads by Dask's readers go through fsspec's HTTP filesystem (aiohttp), which retries nothing and waits five
  minutes for a stalled answer: ``signed_read_session_options`` gives those GETs and HEADs the same policy and
  deadlines (``retry_signed_reads``, an aiohttp client middleware).
* Checksums: every upload sends its MD5 as ``ETag`` (Swift refuses a body that does not match, with 422, which is
  retried: the body was damaged on the way) and its sha256 in ``SHA256_HEADER``; the ETag Swift answers must be the
  MD5 that was sent.
"""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import random
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
# The longest pause between two attempts, Retry-After included: a longer outage fails with a clear error instead.
MAX_PAUSE_S = 30.0
# Deadlines of reads through signed URLs by aiohttp: to connect, and between two pieces of an answer.
SIGNED_READ_CONNECT_S = 10.0
SIGNED_READ_SILENCE_S = 60.0
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
    (worth another try). A reply's ``read`` and ``iter_chunks`` raise one of ``dropped`` too when the body breaks off
    or stalls."""

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
        self.retried = 0  # attempts made again, all callers together: how much the policy had to do

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
            retry_after = None
            try:
                reply = self.transport.send(method, url, headers=dict(headers or {}), params=params, data=body,
                                            stream=stream)
            except self.transport.dropped as exc:
                failure = describe_failure(exc)
            else:
                if reply.status in ok:
                    return reply
                retry_after = _seconds(reply.headers.get("Retry-After"))
                text = _start_of(reply)
                if reply.status not in retry_statuses:
                    raise CloudError(f"Swift {where} answered {reply.status}: {text}")
                failure = f"HTTP {reply.status}"
            if attempt == self.retries:
                raise CloudError(f"Swift {where} failed {self.retries} times, last: {failure}")
            self.pause(attempt, retry_after)
        raise AssertionError("unreachable")

    def pause(self, attempt: int, retry_after: float | None = None) -> None:
        """Wait before attempt ``attempt + 1``: the backoff every retry of this client follows (requests, and
        downloads that drop mid-body).

        Args:
            attempt: the attempt that failed (1 for the first).
            retry_after: the seconds the server asked for (``Retry-After``), if it did.
        """
        self.retried += 1
        time.sleep(self.pause_s(attempt, retry_after))

    def pause_s(self, attempt: int, retry_after: float | None = None) -> float:
        """The pause after attempt ``attempt``: between half and all of ``backoff_s * 2**(attempt-1)``, at least
        ``retry_after``, at most ``MAX_PAUSE_S``."""
        backoff = self.backoff_s * 2 ** (attempt - 1) * random.uniform(0.5, 1.0)
        return min(max(backoff, retry_after or 0.0), MAX_PAUSE_S)

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


def describe_failure(exc: BaseException) -> str:
    """A dropped request's failure in words, for messages: what kind of fault, then the low-level reason."""
    cause = exc.reason if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, BaseException) else exc
    if isinstance(cause, TimeoutError):
        return f"timed out: {cause}" if str(cause) else "timed out"
    if isinstance(cause, (ConnectionError, http.client.HTTPException)):
        return f"connection dropped: {cause}" if str(cause) else "connection dropped"
    return f"{type(cause).__name__}: {cause}"


def _seconds(value: str | None) -> float | None:
    """A ``Retry-After`` in seconds (the HTTP-date form, which Swift does not send, is ignored)."""
    try:
        return max(float(value), 0.0) if value else None
    except ValueError:
        return None


def _start_of(reply: Reply) -> str:
    try:
        return reply.read()[:200].decode(errors="replace").strip()
    except Exception:  # the answer's body is only a hint in a message
        return ""
    finally:
        reply.close()


def signed_read_session_options(silence_s: float = SIGNED_READ_SILENCE_S) -> dict:
    """Options of an aiohttp ``ClientSession`` (fsspec's ``client_kwargs``) reading through signed URLs: the retry
    middleware, and deadlines instead of aiohttp's five minutes for the whole request.

    Args:
        silence_s: seconds an answer may stay silent before the read is given up and tried again.
    """
    import aiohttp  # the workers' HTTP client; only readers through fsspec load it

    timeout = aiohttp.ClientTimeout(total=None, sock_connect=SIGNED_READ_CONNECT_S, sock_read=silence_s)
    return {"middlewares": (retry_signed_reads,), "timeout": timeout}


async def retry_signed_reads(request, handler):
    """An aiohttp client middleware (``ClientSession(middlewares=(retry_signed_reads,))``): GETs and HEADs through
    signed URLs retried as ``ObjectClient.request`` retries, their bodies read whole within the retry so that one
    breaking off is fetched again, and checked against the length the answer announced (``Content-Range`` for a
    range read). Other methods pass through untouched.

    Raises:
        CloudError: the read failed every attempt; the message names the URL without its query (the signature).
    """
    import aiohttp  # the workers' HTTP client; only readers through fsspec load it

    if request.method not in ("GET", "HEAD"):
        return await handler(request)
    policy = ObjectClient(SignedURLTransport())
    where = f"{request.method} {request.url.with_query(None)}"
    for attempt in range(1, policy.retries + 1):
        retry_after = None
        try:
            response = await handler(request)
            if response.status not in RETRY_STATUSES:
                if request.method == "GET" and response.status < 300:
                    body = await response.read()
                    expected = _announced_length(response.headers)
                    if expected is not None and len(body) != expected:
                        raise aiohttp.ClientPayloadError(f"{len(body)} bytes of the {expected} announced")
                return response
            retry_after = _seconds(response.headers.get("Retry-After"))
            failure = f"HTTP {response.status}"
            response.release()
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, asyncio.TimeoutError) as exc:
            failure = describe_failure(exc if isinstance(exc, asyncio.TimeoutError) else ConnectionError(str(exc)))
        if attempt == policy.retries:
            raise CloudError(f"Swift {where} failed {policy.retries} times, last: {failure}")
        await asyncio.sleep(policy.pause_s(attempt, retry_after))
    raise AssertionError("unreachable")


def _announced_length(headers: Mapping[str, str]) -> int | None:
    """The body length an answer announces: its Content-Range span, else its Content-Length."""
    span = headers.get("Content-Range", "")
    if span.startswith("bytes ") and "-" in span:
        first, _, last = span[6:].partition("/")[0].partition("-")
        if first.isdigit() and last.isdigit():
            return int(last) - int(first) + 1
    length = headers.get("Content-Length")
    return int(length) if length and length.isdigit() else None


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

    # An HTTPError is an answer, handed back as a reply; any other URLError or OSError means no answer came, and an
    # HTTPException (a status line or body cut off) that it broke off on the way.
    dropped = (urllib.error.URLError, OSError, http.client.HTTPException)

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
