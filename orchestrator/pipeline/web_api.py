"""Fetching a ``web_api`` source: every page of JSON records, politely (a rate limit), patiently (retries with
backoff, Retry-After honoured on 429 and 503) and without ever letting its token out.

The token is read when a fetch starts, sent only in its header and only to the origin (scheme, host and port) of
the source's URL, on redirects too; every message this module makes is cleared of it. A refused token (401, 403)
fails at once, naming the source, the URL and where the token came from.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from orchestrator.durations import parse_duration
from orchestrator.errors import SourceError
from orchestrator.pipeline.web_api_spec import WebApi
from orchestrator.yaml_files import suggest

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
REFUSED_STATUSES = frozenset({401, 403})
# A server asking for a longer pause than this is down for maintenance, not throttling: fail and say so.
MAX_RETRY_AFTER_S = 300.0
# The doubling backoff stops growing here: many retries wait long, not for hours.
MAX_BACKOFF_S = 60.0
# Enough of an error body to show the server's reason.
BODY_EXCERPT = 200


@dataclass(frozen=True)
class Reply:
    """One HTTP answer: its status, its headers (case-insensitive lookup) and its whole body."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    reason: str = ""


class Dropped(Exception):
    """No answer came (refused or reset connection, timeout): worth another try."""


class HttpGet(Protocol):
    """Sends one GET and returns the answer whatever its status; raises Dropped when none came."""

    def __call__(self, url: str, headers: dict[str, str], timeout_s: float) -> Reply:
        ...


@dataclass
class Fetched:
    """Every record of a fetch, and what it took."""

    records: list[dict]
    url: str
    pages: int = 0
    requests: int = 0


# ---------------------------------------------------------------- the token, and keeping it in


def read_token(api: WebApi, base_dir: Path, source: str) -> str | None:
    """The token of ``api``'s auth, from its environment variable or file; None without auth.

    Raises:
        SourceError: the variable is unset or empty, or the file is missing or empty; the message names the
            variable or the file, never a value.
    """
    if api.auth is None:
        return None
    if api.auth.env is not None:
        token = os.environ.get(api.auth.env, "").strip()
    else:
        path = Path(api.auth.file) if Path(api.auth.file).is_absolute() else base_dir / api.auth.file
        try:
            token = path.read_text().strip()
        except OSError as exc:
            raise SourceError(f"source {source!r}: cannot read the token file {path} ({exc.strerror})") from None
    if not token:
        raise SourceError(f"source {source!r}: no token in {api.auth.origin}")
    if any(ch in token for ch in "\r\n"):
        raise SourceError(f"source {source!r}: the token in {api.auth.origin} spans several lines")
    return token


def public_url(url: str) -> str:
    """``url`` without user information (``user:password@``), as records and messages show it."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host  # an IPv6 address keeps its brackets
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _origin(url: str) -> tuple[str, str | None, int | None]:
    parts = urlsplit(url)
    return parts.scheme, parts.hostname, parts.port or {"http": 80, "https": 443}.get(parts.scheme)


class _Redacted:
    """Clears the token out of every message made while it is held."""

    def __init__(self, token: str | None):
        self.token = token

    def __call__(self, text: str) -> str:
        return text.replace(self.token, "[token]") if self.token else text


# ---------------------------------------------------------------- HTTP over the standard library


class SameOriginRedirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects, dropping the auth header when one leads to another origin (or from https to http)."""

    def __init__(self, auth_header: str | None):
        super().__init__()
        self.auth_header = auth_header

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and self.auth_header and _origin(newurl) != _origin(req.full_url):
            for name in list(new.headers):
                if name.lower() == self.auth_header.lower():
                    del new.headers[name]
        return new


def urllib_get(auth_header: str | None = None) -> HttpGet:
    """An ``HttpGet`` on urllib, which keeps ``auth_header`` within the origin it was sent to."""
    opener = urllib.request.build_opener(SameOriginRedirects(auth_header))

    def get(url: str, headers: dict[str, str], timeout_s: float) -> Reply:
        request = urllib.request.Request(url, headers={"Accept": "application/json", **headers}, method="GET")
        try:
            with opener.open(request, timeout=timeout_s) as response:
                return Reply(response.status, response.headers, response.read(), response.reason)
        except urllib.error.HTTPError as exc:
            with exc:
                return Reply(exc.code, exc.headers, exc.read(), str(exc.reason))
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            raise Dropped(str(getattr(exc, "reason", exc))) from None

    return get


# ---------------------------------------------------------------- pacing


class RateLimiter:
    """Spaces request starts evenly: at most ``per_second`` requests in any second, retries included.

    Args:
        per_second: the rate; None for no limit.
        clock: monotonic seconds (a fake in tests).
        sleep: sleeps that many seconds (a fake in tests).
    """

    def __init__(self, per_second: float | None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.interval = 1.0 / per_second if per_second else 0.0
        self.clock = clock
        self.sleep = sleep
        self._next_at: float | None = None

    def wait(self) -> None:
        """Return when the next request may start."""
        now = self.clock()
        if self._next_at is not None and now < self._next_at:
            self.sleep(self._next_at - now)
            now = self._next_at
        self._next_at = now + self.interval


def retry_after_seconds(value: str | None, now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)
                        ) -> float | None:
    """The pause a ``Retry-After`` header asks for (seconds, or an HTTP date), None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - now()).total_seconds())


# ---------------------------------------------------------------- pages and records


def dig(page: Any, path: str | None) -> Any:
    """The value at a dotted ``path`` of a JSON page (list indexes as numbers), None where the path leaves it."""
    value = page
    for part in path.split(".") if path else ():
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def page_records(page: Any, path: str | None, where: str) -> list[dict]:
    """The records of one page: the list at ``path`` (the page itself without one), each a JSON object.

    Raises:
        SourceError: the path names nothing, or not a list of objects; the message names the page and, when the
            path is wrong, the page's fields holding lists.
    """
    records = dig(page, path)
    if records is None and path and isinstance(page, dict) and _has_path(page, path):
        return []  # an explicit null: an empty page
    if not isinstance(records, list):
        lists = sorted(key for key, value in page.items() if isinstance(value, list)) if isinstance(page, dict) else []
        hint = (f"; its fields holding lists: {', '.join(lists)}{suggest(path or '', lists)}" if lists else "")
        what = f"`records: {path}`" if path else "the page itself (no `records:` path)"
        raise SourceError(f"{where}: {what} is {type(records).__name__ if records is not None else 'missing'}, "
                          f"expected a list of records{hint}")
    bad = next((index for index, record in enumerate(records) if not isinstance(record, dict)), None)
    if bad is not None:
        raise SourceError(f"{where}: record {bad} is {type(records[bad]).__name__}, expected a JSON object")
    return records


def _has_path(page: dict, path: str) -> bool:
    *parents, last = path.split(".")
    holder = dig(page, ".".join(parents)) if parents else page
    return isinstance(holder, dict) and last in holder


def flatten_record(record: dict, prefix: str = "") -> dict:
    """Nested objects become columns named by their dotted path: ``{"main": {"temp": 3}}`` -> ``{"main.temp": 3}``."""
    flat = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten_record(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def with_params(url: str, params: Mapping[str, Any]) -> str:
    """``url`` with ``params`` added to (or replacing those of) its query string."""
    if not params:
        return url
    parts = urlsplit(url)
    # Pairs, not a dict: a parameter the URL repeats (`tag=a&tag=b`) keeps every value unless it is replaced; a
    # replaced one keeps its place.
    query, placed = [], set()
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name not in params:
            query.append((name, value))
        elif name not in placed:
            query.append((name, _param_text(params[name])))
            placed.add(name)
    query += [(name, _param_text(value)) for name, value in params.items() if name not in placed]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def _param_text(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def next_link(header: str | None) -> str | None:
    """The ``rel="next"`` URL of a ``Link`` header (RFC 8288), None when there is none."""
    for part in (header or "").split(","):
        target, _, attributes = part.partition(";")
        rels = [a.split("=", 1)[1].strip().strip('"') for a in attributes.split(";") if "=" in a
                and a.split("=", 1)[0].strip().lower() == "rel"]
        if any("next" in rel.split() for rel in rels):
            return target.strip().strip("<>")
    return None


# ---------------------------------------------------------------- the fetch


class PageReader:
    """Gets one page as JSON, with the source's rate limit, retries, backoff and token.

    Args:
        api: the source's ``web_api``.
        source: the source's name, for messages.
        token: the auth token, or None.
        http_get: sends one GET (``urllib_get`` by default).
        clock / sleep: monotonic seconds and the sleep (fakes in tests).
    """

    def __init__(self, api: WebApi, source: str, token: str | None, http_get: HttpGet | None = None,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        self.api = api
        self.source = source
        self.token = token
        self.redact = _Redacted(token)
        self.http_get = http_get or urllib_get(api.auth.header if api.auth else None)
        self.limiter = RateLimiter(api.requests_per_second, clock, sleep)
        self.sleep = sleep
        self.timeout_s = parse_duration(api.timeout, "web_api.timeout")
        self.backoff_s = parse_duration(api.backoff, "web_api.backoff", allow_zero=True)
        self.origin = _origin(api.url)
        self.requests = 0

    def _headers(self, url: str) -> dict[str, str]:
        # The token goes to the origin it was issued for, never to a host a page's link points at.
        if self.token is None or _origin(url) != self.origin:
            return {}
        return {self.api.auth.header: f"{self.api.auth.prefix}{self.token}"}

    def get(self, url: str) -> tuple[Any, Reply]:
        """The page at ``url``, parsed, and the answer it came in.

        Raises:
            SourceError: the token was refused (at once), another 4xx came, the retries ran out, a server asked
                for too long a pause, or the body is not JSON; the message names the source and the URL.
        """
        shown = self.redact(public_url(url))
        failure = ""
        for attempt in range(self.api.retries + 1):
            self.limiter.wait()
            self.requests += 1
            pause = min(self.backoff_s * 2 ** attempt, MAX_BACKOFF_S)
            try:
                reply = self.http_get(url, self._headers(url), self.timeout_s)
            except Dropped as exc:
                failure = f"no answer ({self.redact(str(exc))})"
            else:
                if 200 <= reply.status < 300:
                    return self._parsed(reply, shown), reply
                status = f"{reply.status} {reply.reason}".strip()
                if reply.status in REFUSED_STATUSES:
                    whose = f"the token from {self.api.auth.origin}" if self.api.auth else "a request without a token"
                    raise SourceError(f"source {self.source!r}: GET {shown} was refused with {status}: {whose} is "
                                      "not accepted (expired, revoked or without access?)")
                if reply.status not in RETRY_STATUSES:
                    raise SourceError(f"source {self.source!r}: GET {shown} answered {status}"
                                      f"{self._excerpt(reply.body)}")
                failure = status
                asked = retry_after_seconds(reply.headers.get("Retry-After"))
                if asked is not None:
                    if asked > MAX_RETRY_AFTER_S:
                        raise SourceError(f"source {self.source!r}: GET {shown} answered {status} asking to wait "
                                          f"{asked:.0f}s, more than {MAX_RETRY_AFTER_S:.0f}s; run again later")
                    pause = asked
            if attempt < self.api.retries:
                self.sleep(pause)
        raise SourceError(f"source {self.source!r}: GET {shown} failed after {self.api.retries + 1} attempts: "
                          f"{failure} (raise `retries:` or try later)")

    def _parsed(self, reply: Reply, shown: str) -> Any:
        try:
            return json.loads(reply.body)
        except ValueError as exc:
            raise SourceError(f"source {self.source!r}: GET {shown} did not answer JSON ({exc})"
                              f"{self._excerpt(reply.body)}") from None

    def _excerpt(self, body: bytes) -> str:
        text = self.redact(body[:BODY_EXCERPT].decode("utf-8", "replace")).strip()
        return f": {text}" if text else ""


def fetch_records(api: WebApi, source: str, base_dir: Path, *, http_get: HttpGet | None = None,
                  clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> Fetched:
    """Every record of ``api``, page after page, in the order the server gives them.

    Args:
        api: the source's ``web_api``.
        source: the source's name, for messages.
        base_dir: the pipeline file's folder (an auth file is relative to it).
        http_get: sends one GET (``urllib_get`` by default; a fake in tests).
        clock: monotonic seconds (a fake in tests).
        sleep: the sleep of the rate limit and the backoff (a fake in tests).

    Returns:
        The records (flattened when ``api.flatten``), the first page's URL and how many pages and requests it took.

    Raises:
        SourceError: a page could not be had or read, the token is missing or refused, a next link loops back, or
            ``max_pages`` was passed; messages name the source and the URL, never the token.
    """
    reader = PageReader(api, source, read_token(api, base_dir, source), http_get, clock, sleep)
    pagination = api.pagination
    first = with_params(api.url, {**api.params, **(
        {pagination.offset: 0, pagination.limit: pagination.size} if pagination and pagination.mode == "offset"
        else {})})
    fetched = Fetched([], reader.redact(public_url(first)))
    url: str | None = first
    seen: set[str] = set()
    offset = 0
    while url is not None:
        if url in seen:
            raise SourceError(f"source {source!r}: page {fetched.pages + 1} links back to "
                              f"{reader.redact(public_url(url))}, already read")
        if pagination and pagination.max_pages and fetched.pages >= pagination.max_pages:
            raise SourceError(f"source {source!r}: more than max_pages {pagination.max_pages} pages at "
                              f"{fetched.url}")
        seen.add(url)
        page, reply = reader.get(url)
        fetched.pages += 1
        records = page_records(page, api.records,
                               f"source {source!r}: page {fetched.pages} ({reader.redact(public_url(url))})")
        fetched.records.extend([flatten_record(r) for r in records] if api.flatten else records)
        url = _next_url(pagination, page, reply, url, len(records), offset)
        offset += len(records)
    fetched.requests = reader.requests
    return fetched


def _next_url(pagination, page: Any, reply: Reply, url: str, count: int, offset: int) -> str | None:
    if pagination is None:
        return None
    if pagination.mode == "offset":
        return with_params(url, {pagination.offset: offset + count}) if count >= pagination.size else None
    if pagination.mode == "link_header":
        target = next_link(reply.headers.get("Link"))
    elif pagination.mode == "next":
        target = dig(page, pagination.next)
    else:
        cursor = dig(page, pagination.next_field)
        return with_params(url, {pagination.cursor_parameter: cursor}) if cursor not in (None, "") else None
    return urljoin(url, target) if isinstance(target, str) and target else None
