"""The little of ASGI the server needs, written against the protocol itself: a request's headers and body, one
response, the lifespan handshake.

A web framework's request and response objects cost more per request than this whole server's own work on a
one-row prediction (routing, header parsing, response objects), so the server speaks ASGI directly.
"""

from __future__ import annotations

import logging
import zlib

from orchestrator.serving.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

log = logging.getLogger("dataops.serving")

JSON = b"application/json"
_INFLATE_WBITS = {b"identity": None, b"gzip": 16 + zlib.MAX_WBITS, b"deflate": zlib.MAX_WBITS}


class Request:
    """One HTTP request: its ASGI scope and receive channel, the path parameters, and what the access log and
    metrics report about it (route and model, filled in by the router)."""

    __slots__ = ("scope", "receive", "params", "route", "model")

    def __init__(self, scope, receive):
        self.scope = scope
        self.receive = receive
        self.route = "other"
        self.params: dict = {}
        self.model = ""

    def header(self, name: bytes) -> bytes | None:
        """The first value of the header ``name`` (lower case), or None."""
        for key, value in self.scope["headers"]:
            if key == name:
                return value
        return None

    async def body(self, limit: int) -> bytes:
        """The body, inflated when gzip or deflate encoded, refused as soon as it is known to exceed ``limit``
        bytes, compressed or not.

        Raises:
            PayloadTooLarge: the body is over the limit.
            UnsupportedMediaType: the body is in an encoding other than identity, gzip or deflate.
            BadRequest: the Content-Length is malformed or the compressed body is corrupt.
        """
        encoding, length = b"identity", None
        for key, value in self.scope["headers"]:
            if key == b"content-length":
                length = value
            elif key == b"content-encoding":
                encoding = value.strip().lower()
        if encoding not in _INFLATE_WBITS:
            shown = encoding.decode("latin-1")
            raise UnsupportedMediaType(f"Content-Encoding {shown!r} is not supported: use identity, gzip or deflate")
        if length is not None:
            if not length.isdigit():
                raise BadRequest(f"Content-Length: expected an integer, got {length[:30].decode('latin-1')!r}")
            if int(length) > limit:
                raise PayloadTooLarge(f"request body of {int(length)} bytes exceeds the limit of {limit} bytes")
        body = await self._read(limit)
        wbits = _INFLATE_WBITS[encoding]
        if wbits is None:
            return body
        inflater = zlib.decompressobj(wbits)
        try:
            inflated = inflater.decompress(body, limit + 1)
        except zlib.error as exc:
            raise BadRequest(f"request body is not valid {encoding.decode()} data: {exc}") from exc
        if len(inflated) > limit or inflater.unconsumed_tail:
            raise PayloadTooLarge(f"request body inflates to more than the limit of {limit} bytes")
        return inflated

    async def _read(self, limit: int) -> bytes:
        message = await self.receive()
        body = message.get("body", b"")
        if len(body) > limit:  # a chunked body has no Content-Length to refuse it by
            raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes")
        if not message.get("more_body", False):  # the usual case: the whole body in one message
            return body
        chunks, total = [body], len(body)
        while message.get("more_body", False):
            message = await self.receive()
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > limit:
                raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)


class Reply:
    """A response: status, body, content type and extra headers (pairs of bytes)."""

    __slots__ = ("status", "body", "content_type", "headers")

    def __init__(self, status: int, body: bytes, content_type: bytes = JSON, headers: tuple = ()):
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = headers

    async def send(self, send) -> None:
        headers = [(b"content-type", self.content_type), (b"content-length", b"%d" % len(self.body)), *self.headers]
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})


async def run_lifespan(receive, send, startup, shutdown) -> None:
    """Answer the ASGI lifespan messages: ``startup`` and ``shutdown`` are coroutine functions; a failing startup
    is reported to the server, which then refuses to start."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                await startup()
            except Exception as exc:  # the server prints it and exits: a worker that cannot start must not accept
                log.exception("startup failed")
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
                return
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await shutdown()
            await send({"type": "lifespan.shutdown.complete"})
            return
