"""The ``web_api:`` of a source in the pipeline file: where JSON records are fetched from, how pages follow each
other, how the request is authenticated, how fast and how patiently it is sent, and how long a fetch is reused.

Only the names of secrets are written here (an environment variable, a file): the token itself is read when a fetch
is made and goes nowhere else (``orchestrator.pipeline.web_api``).
"""

from __future__ import annotations

import re
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from orchestrator.durations import parse_duration

# `5/s`, `100/min`, `1000/h`, `30/15m`: requests per unit or per duration.
_RATE = re.compile(r"\s*(?P<count>\d+(?:\.\d+)?)\s*/\s*(?P<per>[\w ]+?)\s*")
NEVER = "never"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Pagination(_Strict):
    """How one page leads to the next; exactly one way is chosen.

    * ``next``: the next page's URL is at this dotted path of each page (``links.next``), absolute or relative;
    * ``link_header: true``: the next page's URL is the ``Link`` header's ``rel="next"`` (RFC 8288);
    * ``next_field``: a cursor at this dotted path of each page is sent back as the query parameter
      ``cursor_param``;
    * ``size`` (with ``offset`` and ``limit``, the names of the query parameters): pages of ``size`` records,
      asked for by offset, until a page holds fewer.

    The last page is the one with no next URL or cursor (missing, null or empty).
    """

    next: str | None = Field(None, description="Dotted path of the next page's URL in each page (links.next).")
    link_header: bool = Field(False, description="Follow the Link header's rel=\"next\" URL.")
    next_field: str | None = Field(None, description="Dotted path of a cursor in each page, sent as `cursor_param`.")
    cursor_param: str | None = Field(
        None, description="Query parameter carrying the cursor (default: the last part of `next_field`).")
    offset: str = Field("offset", description="Offset pagination: the query parameter of the first record's index.")
    limit: str = Field("limit", description="Offset pagination: the query parameter of the page size.")
    size: int | None = Field(None, gt=0, description="Offset pagination: records per page.")
    max_pages: int | None = Field(None, gt=0, description="Stop with an error after this many pages.")

    @model_validator(mode="after")
    def _one_way(self) -> "Pagination":
        chosen = [name for name, on in (("next", self.next is not None), ("link_header", self.link_header),
                                         ("next_field", self.next_field is not None), ("size", self.size is not None))
                  if on]
        if len(chosen) != 1:
            raise ValueError("pagination sets exactly one of `next` (a URL in the page), `link_header: true`, "
                             "`next_field` (a cursor) or `size` (with `offset` and `limit`: offset pagination); "
                             f"this one sets {', '.join(chosen) or 'none'}")
        if self.cursor_param is not None and self.next_field is None:
            raise ValueError("`cursor_param` goes with `next_field`")
        return self

    @property
    def mode(self) -> str:
        """``next``, ``link_header``, ``cursor`` or ``offset``."""
        if self.next is not None:
            return "next"
        if self.link_header:
            return "link_header"
        return "cursor" if self.next_field is not None else "offset"

    @property
    def cursor_parameter(self) -> str:
        """The query parameter a cursor is sent back in."""
        return self.cursor_param or (self.next_field or "").rsplit(".", 1)[-1]


class Auth(_Strict):
    """A header carrying a token read from an environment variable or a file, at fetch time only."""

    header: str = Field("Authorization", description="The header carrying the token.")
    scheme: str | None = Field(
        None, description="Written before the token: default `Bearer` for the Authorization header, none otherwise.")
    env: str | None = Field(None, description="Environment variable holding the token.")
    file: str | None = Field(None, description="File holding the token (relative to the pipeline file).")

    @model_validator(mode="after")
    def _one_secret(self) -> "Auth":
        if (self.env is None) == (self.file is None):
            raise ValueError("auth takes its token from exactly one of `env` (a variable's name) or `file` (a path)")
        return self

    @field_validator("header")
    @classmethod
    def _header_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9-]+", value):
            raise ValueError(f"expected an HTTP header name such as Authorization or X-Api-Key, got {value!r}")
        return value

    @property
    def prefix(self) -> str:
        """What goes before the token in the header's value (``Bearer ``, or nothing)."""
        scheme = self.scheme if self.scheme is not None else ("Bearer" if self.header.lower() == "authorization"
                                                              else "")
        return f"{scheme} " if scheme else ""

    @property
    def origin(self) -> str:
        """Where the token comes from, for messages: the variable or the file, never the value."""
        return f"environment variable {self.env}" if self.env is not None else f"file {self.file}"


class WebApi(_Strict):
    """JSON records read over http(s), page by page; each fetch is kept in the store under the hash of its content."""

    # How a fetch is made, not what it yields: changing these leaves the ingest stage's cache key alone.
    FETCH_ONLY: ClassVar[frozenset[str]] = frozenset({"auth", "rate_limit", "retries", "backoff", "timeout",
                                                      "refresh"})

    url: str = Field(description="The http(s) URL of the first page.")
    params: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="Query parameters of the first page (and of every page asked by cursor or "
                                          "offset).")
    records: str | None = Field(
        None, description="Dotted path of the list of records in each page; default: the page itself is the list.")
    flatten: bool = Field(False, description="Nested objects become columns named by their dotted path (main.temp).")
    pagination: Pagination | None = Field(None, description="How pages follow each other; default: one page.")
    auth: Auth | None = Field(None, description="A header carrying a token from the environment or a file.")
    rate_limit: str | None = Field(None, description="At most this many requests per unit: 5/s, 100/min, 30/15m.")
    retries: int = Field(4, ge=0, le=20, description="Tries again after a dropped connection, a 429 or a 5xx.")
    backoff: str = Field("1s", description="The first pause before trying again, doubled after each up to a minute "
                                           "(a Retry-After header wins).")
    timeout: str = Field("30s", description="Longest wait for one answer.")
    refresh: str | None = Field(
        None, description="Reuse the last fetch for this long (1d) without any request; `never`: always reuse it; "
                          "default: fetch at every run.")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"https?://[^/?#]+", value):
            raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
        return value

    @field_validator("rate_limit")
    @classmethod
    def _rate(cls, value: str | None) -> str | None:
        if value is not None:
            parse_rate(value)
        return value

    @field_validator("backoff")
    @classmethod
    def _backoff(cls, value: str) -> str:
        parse_duration(value, "web_api.backoff", allow_zero=True)
        return value

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, value: str) -> str:
        parse_duration(value, "web_api.timeout")
        return value

    @field_validator("refresh")
    @classmethod
    def _refresh(cls, value: str | None) -> str | None:
        if value is not None and value != NEVER:
            parse_duration(value, "web_api.refresh", allow_zero=True)
        return value

    @property
    def refresh_seconds(self) -> float | None:
        """How long a fetch is reused: None for never refetched, 0 for fetched at every run."""
        if self.refresh == NEVER:
            return None
        return parse_duration(self.refresh, "web_api.refresh", allow_zero=True) if self.refresh else 0.0

    @property
    def requests_per_second(self) -> float | None:
        """The rate limit as requests per second, None when unlimited."""
        return parse_rate(self.rate_limit) if self.rate_limit else None


def parse_rate(text: str) -> float:
    """Read a rate limit such as ``5/s``, ``100/min``, ``1000/h`` or ``30/15m``.

    Args:
        text: The rate as written by the user.

    Returns:
        Requests per second.

    Raises:
        ValueError: The text is no such rate (pydantic reports it against the field).
    """
    expected = (f"invalid rate limit {text!r}: expected requests per unit or per duration, such as 5/s, 100/min, "
                "1000/h or 30/15m")
    match = _RATE.fullmatch(text) if isinstance(text, str) else None
    if match is None or float(match["count"]) <= 0:
        raise ValueError(expected)
    per = match["per"].strip()
    try:
        # A bare unit (`s`, `min`) is one of it.
        seconds = parse_duration(per if per[:1].isdigit() else f"1{per}", "web_api.rate_limit")
    except ValueError:
        raise ValueError(expected) from None
    return float(match["count"]) / seconds
