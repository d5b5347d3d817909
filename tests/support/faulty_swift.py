"""A fault-injecting HTTP proxy in front of a real Swift, for the chaos suite.

It listens on 127.0.0.1 (a free port) and forwards every request to the real Swift proxy, unless a rule picks that
request for a fault. A rule names the requests it watches (method, a regular expression on the path and query) and
which of them it spoils (the ``nth`` match on, ``times`` of them, or ``every`` n-th); the fault is one of:

* ``status``: answer ``503`` (or any status) at once, with or without ``Retry-After``; Swift never sees the request;
* ``reset``: forward, then send the answer's headers and ``after_bytes`` of its body, and reset the connection (RST);
* ``truncate``: forward, then send only ``keep_bytes`` of the body, either under the true ``Content-Length``
  (the client sees the body end early) or under a ``Content-Length`` that matches the short body (the answer looks
  whole: only a checksum can tell);
* ``delay``: forward, then hold the answer ``seconds`` (longer than the client's timeout);
* ``drop``: reset the connection without answering, before forwarding (the request is lost) or after Swift has
  answered (the request took effect, its answer is lost): a manifest PUT or an object PUT "dropped".

The proxy buffers each body whole (the suite's objects are a few MiB) so a fault can cut it anywhere. It counts what it
did: requests ``forwarded`` and faults injected per rule, and keeps a log of ``(method, path, fault)``.
"""

from __future__ import annotations

import http.client
import http.server
import re
import socket
import struct
import threading
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade",
              "content-length"}
FAULTS = {"status", "reset", "truncate", "delay", "drop"}


@dataclass
class Rule:
    """Which requests get which fault.

    Args:
        fault: one of ``status``, ``reset``, ``truncate``, ``delay``, ``drop``.
        method: the HTTP method watched (any when None).
        path: a regular expression searched in the request's path with its query.
        nth: the first matching request spoiled (1 is the first match).
        times: how many matching requests from ``nth`` on are spoiled (``None``: all of them).
        every: spoil only every ``every``-th match from ``nth`` on (a sprinkle).
        status: the status answered by a ``status`` fault.
        retry_after: the ``Retry-After`` header of a ``status`` fault, in seconds (none when None).
        after_bytes: body bytes sent before a ``reset``.
        keep_bytes: body bytes kept by a ``truncate``.
        honest_length: a ``truncate`` keeps the true ``Content-Length`` (else announces the short length).
        seconds: how long a ``delay`` holds the answer.
        forward: a ``drop`` forwards the request first (its answer is lost) instead of losing the request.
        name: the rule's name in the counts (the fault by default).
    """

    fault: str
    method: str | None = None
    path: str = ""
    nth: int = 1
    times: int | None = 1
    every: int = 1
    status: int = 503
    retry_after: float | None = None
    after_bytes: int = 0
    keep_bytes: int = 0
    honest_length: bool = True
    seconds: float = 0.0
    forward: bool = False
    name: str = ""
    matched: int = field(default=0, init=False)
    fired: int = field(default=0, init=False)

    def __post_init__(self):
        if self.fault not in FAULTS:
            raise ValueError(f"unknown fault {self.fault!r}: expected one of {sorted(FAULTS)}")
        self.name = self.name or self.fault
        self._pattern = re.compile(self.path)

    def picks(self, method: str, target: str) -> bool:
        """Count the request if it matches; True when this one is to be spoiled."""
        if (self.method and method != self.method) or not self._pattern.search(target):
            return False
        self.matched += 1
        since = self.matched - self.nth
        if since < 0 or (self.times is not None and self.fired >= self.times) or since % self.every:
            return False
        self.fired += 1
        return True


class FaultySwift:
    """The proxy; a context manager that serves in a background thread.

    Args:
        upstream: the real Swift endpoint (``http://HOST:PORT/v1/AUTH_...``); only its host and port are used.

    Attributes:
        endpoint: the upstream endpoint with the proxy's address instead (what a client is given).
        counts: requests ``forwarded`` and faults injected, by rule name.
        log: ``(method, path, rule name or "")`` of every request, in order.
    """

    def __init__(self, upstream: str):
        parts = urlsplit(upstream)
        self.upstream_host, self.upstream_port = parts.hostname, parts.port or 80
        self._upstream_path = parts.path
        self._rules: list[Rule] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.counts: Counter = Counter()
        self.log: list[tuple[str, str, str]] = []
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}{self._upstream_path}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="faulty-swift", daemon=True)

    def __enter__(self) -> FaultySwift:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def inject(self, *rules: Rule) -> FaultySwift:
        """Replace the rules (and reset the counts): the faults of the next requests."""
        with self._lock:
            self._rules = list(rules)
            self.counts.clear()
            self.log.clear()
        return self

    def clear(self) -> None:
        """No faults from now on; the counts stay readable."""
        with self._lock:
            self._rules = []

    def fired(self, name: str | None = None) -> int:
        """Faults injected since the last ``inject``: by the rule ``name``, or by all rules."""
        with self._lock:
            if name is not None:
                return self.counts[name]
            return sum(n for key, n in self.counts.items() if key != "forwarded")

    def _choose(self, method: str, target: str) -> Rule | None:
        with self._lock:
            for rule in self._rules:
                if rule.picks(method, target):
                    self.counts[rule.name] += 1
                    self.log.append((method, target, rule.name))
                    return rule
            self.log.append((method, target, ""))
            return None

    def _forward(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes):
        connection = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=120)
        try:
            connection.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            connection.putheader("Host", f"{self.upstream_host}:{self.upstream_port}")
            for name, value in headers:
                if name.lower() not in HOP_BY_HOP and name.lower() != "host":
                    connection.putheader(name, value)
            if body or method in ("PUT", "POST"):
                connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body or None)
            response = connection.getresponse()
            payload = response.read()
            with self._lock:
                self.counts["forwarded"] += 1
            return response.status, response.reason, response.getheaders(), payload
        finally:
            connection.close()


def _handler_for(proxy: FaultySwift):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # the log is proxy.log
            pass

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _reset(self) -> None:
            # SO_LINGER 0: close() sends RST instead of FIN, as a dead proxy or a middlebox does.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True

        def _answer(self, status: int, reason: str, headers, body: bytes, length: int | None = None,
                    close: bool = False) -> None:
            self.send_response_only(status, reason)
            for name, value in headers:
                if name.lower() not in HOP_BY_HOP:
                    self.send_header(name, value)
            if self.command == "HEAD" and length is None:
                # A HEAD's length is the object's, though no body follows.
                length = next((value for name, value in headers if name.lower() == "content-length"), 0)
            self.send_header("Content-Length", str(len(body) if length is None else length))
            if close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _serve(self) -> None:
            body = self._body()
            rule = proxy._choose(self.command, self.path)
            if rule is not None and rule.fault == "status":
                headers = [("Content-Type", "text/plain")]
                if rule.retry_after is not None:
                    headers.append(("Retry-After", f"{rule.retry_after:g}"))
                return self._answer(rule.status, "Injected", headers, b"injected fault\n")
            if rule is not None and rule.fault == "drop" and not rule.forward:
                return self._reset()
            try:
                status, reason, headers, payload = proxy._forward(self.command, self.path, list(self.headers.items()),
                                                                 body)
            except OSError:
                return self._reset()
            if rule is None:
                return self._answer(status, reason, headers, payload)
            if rule.fault == "drop":
                return self._reset()
            if rule.fault == "delay":
                if proxy._stopping.wait(rule.seconds):
                    return self._reset()
                return self._answer(status, reason, headers, payload, close=True)
            if rule.fault == "reset":
                self._answer(status, reason, headers, payload[: rule.after_bytes], length=len(payload))
                return self._reset()
            # truncate
            kept = payload[: rule.keep_bytes]
            if rule.honest_length:
                self._answer(status, reason, headers, kept, length=len(payload), close=True)
            else:
                self._answer(status, reason, headers, kept)

        def __getattr__(self, name: str):
            if name.startswith("do_"):
                return self._serve
            raise AttributeError(name)

        def handle_one_request(self) -> None:
            try:
                super().handle_one_request()
            except (TimeoutError, ConnectionError, BrokenPipeError, OSError):
                # The client gave up (its timeout, or its own reset): nothing more to say on this connection.
                self.close_connection = True

    return Handler
