"""A web_api source reads every page of JSON records (by a link in the page, the Link header, a cursor or an
offset), paces its requests, retries what is worth retrying, fails at once on a refused token, and never lets the
token out of the header it was meant for."""

from __future__ import annotations

import json
import urllib.request
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from orchestrator.errors import SourceError
from orchestrator.pipeline.web_api import (Reply, SameOriginRedirects, fetch_records, flatten_record, next_link,
                                           public_url, retry_after_seconds, with_params)
from orchestrator.pipeline.web_api_spec import WebApi, parse_rate

TOKEN = "s3cr3t-token-value"
BASE = "https://api.example.org"


class FakeClock:
    """Monotonic seconds that move only when something sleeps."""

    def __init__(self):
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


class FakeServer:
    """Answers by URL, each URL's answers in turn (the last one repeated); records every request."""

    def __init__(self, clock: FakeClock, answers: dict[str, list]):
        self.clock = clock
        self.answers = {url: list(replies) for url, replies in answers.items()}
        self.requests: list[tuple[str, dict, float]] = []

    def __call__(self, url: str, headers: dict, timeout_s: float) -> Reply:
        self.requests.append((url, headers, self.clock.now))
        replies = self.answers.get(url)
        if replies is None:
            return Reply(404, {}, b"no such page", "Not Found")
        reply = replies.pop(0) if len(replies) > 1 else replies[0]
        if isinstance(reply, Reply):
            return reply
        return Reply(200, {}, json.dumps(reply).encode(), "OK")

    @property
    def urls(self) -> list[str]:
        return [url for url, _, _ in self.requests]


def api(**fields) -> WebApi:
    return WebApi.model_validate({"url": f"{BASE}/v1/obs", **fields})


def fetch(spec: WebApi, server: FakeServer, clock: FakeClock, tmp_path=None):
    return fetch_records(spec, "weather", tmp_path, http_get=server, clock=clock.clock, sleep=clock.sleep)


@pytest.fixture
def clock():
    return FakeClock()


def test_link_pagination_follows_a_relative_next_link_in_each_page_until_there_is_none(clock):
    server = FakeServer(clock, {
        f"{BASE}/v1/obs?station=JFK": [{"data": [{"t": 1}, {"t": 2}], "links": {"next": "/v1/obs?station=JFK&p=2"}}],
        f"{BASE}/v1/obs?station=JFK&p=2": [{"data": [{"t": 3}], "links": {"next": None}}],
    })
    fetched = fetch(api(params={"station": "JFK"}, records="data", pagination={"next": "links.next"}), server, clock)
    assert [r["t"] for r in fetched.records] == [1, 2, 3]
    assert (fetched.pages, fetched.requests, fetched.url) == (2, 2, f"{BASE}/v1/obs?station=JFK")


def test_the_link_header_s_next_relation_leads_to_the_next_page(clock):
    first = Reply(200, {"Link": f'<{BASE}/v1/obs?page=2>; rel="next", <{BASE}/v1/obs?page=9>; rel="last"'},
                  b'[{"t": 1}]')
    server = FakeServer(clock, {f"{BASE}/v1/obs": [first], f"{BASE}/v1/obs?page=2": [[{"t": 2}]]})
    fetched = fetch(api(pagination={"link_header": True}), server, clock)
    assert [r["t"] for r in fetched.records] == [1, 2]
    assert next_link('<https://x/a>; rel="prev", <https://x/b>; rel="next"') == "https://x/b"
    assert next_link(None) is None


def test_a_cursor_is_sent_back_as_a_query_parameter_until_the_page_has_none(clock):
    server = FakeServer(clock, {
        f"{BASE}/v1/obs?q=a": [{"items": [{"t": 1}], "meta": {"cursor": "c2"}}],
        f"{BASE}/v1/obs?q=a&cursor=c2": [{"items": [{"t": 2}], "meta": {"cursor": ""}}],
    })
    fetched = fetch(api(params={"q": "a"}, records="items", pagination={"next_field": "meta.cursor"}), server, clock)
    assert [r["t"] for r in fetched.records] == [1, 2]


def test_offset_pagination_asks_for_pages_of_size_records_until_a_page_holds_fewer(clock):
    rows = [{"id": i} for i in range(5)]
    server = FakeServer(clock, {f"{BASE}/v1/obs?start={s}&count=2": [rows[s:s + 2]] for s in (0, 2, 4)})
    fetched = fetch(api(pagination={"offset": "start", "limit": "count", "size": 2}), server, clock)
    assert [r["id"] for r in fetched.records] == [0, 1, 2, 3, 4]
    assert server.urls == [f"{BASE}/v1/obs?start={s}&count=2" for s in (0, 2, 4)]


def test_query_parameters_join_the_url_s_own_replacing_in_place_and_keeping_repeated_ones():
    assert with_params(f"{BASE}/obs?tag=a&tag=b&p=1", {"p": 2, "on": True}) == f"{BASE}/obs?tag=a&tag=b&p=2&on=true"
    assert with_params(f"{BASE}/obs?q=a%20b", {}) == f"{BASE}/obs?q=a%20b"


def test_urls_are_shown_without_their_user_information():
    assert public_url("https://user:pw@api.example.org:8443/v1?q=1") == "https://api.example.org:8443/v1?q=1"
    assert public_url("http://[::1]:8080/v1") == "http://[::1]:8080/v1"


def test_a_next_link_leading_back_to_a_page_already_read_is_an_error(clock):
    server = FakeServer(clock, {f"{BASE}/v1/obs": [{"data": [{"t": 1}], "next": f"{BASE}/v1/obs"}]})
    with pytest.raises(SourceError, match=r"source 'weather': page 2 links back to https://api.example.org/v1/obs"):
        fetch(api(records="data", pagination={"next": "next"}), server, clock)


def test_more_pages_than_max_pages_is_an_error(clock):
    server = FakeServer(clock, {f"{BASE}/v1/obs?p={p}": [{"data": [{"t": p}], "next": f"?p={p + 1}"}]
                                for p in range(5)})
    with pytest.raises(SourceError, match="more than max_pages 3 pages"):
        fetch(api(url=f"{BASE}/v1/obs?p=0", records="data", pagination={"next": "next", "max_pages": 3}), server,
              clock)


def test_a_records_path_that_names_no_list_says_which_fields_hold_lists(clock):
    server = FakeServer(clock, {f"{BASE}/v1/obs": [{"results": [{"t": 1}], "count": 1}]})
    with pytest.raises(SourceError, match=r"page 1 \(https://api.example.org/v1/obs\): `records: result` is "
                                          r"missing, expected a list of records; its fields holding lists: results "
                                          r"\(did you mean 'results'\?\)"):
        fetch(api(records="result"), server, clock)


def test_records_that_are_not_objects_are_refused(clock):
    server = FakeServer(clock, {f"{BASE}/v1/obs": [[{"t": 1}, 5]]})
    with pytest.raises(SourceError, match="record 1 is int, expected a JSON object"):
        fetch(api(), server, clock)


def test_flatten_names_nested_values_by_their_dotted_path(clock):
    server = FakeServer(clock, {f"{BASE}/v1/obs": [[{"id": 1, "main": {"temp": 3.5, "wind": {"speed": 2}},
                                                    "tags": ["a"]}]]})
    fetched = fetch(api(flatten=True), server, clock)
    assert fetched.records == [{"id": 1, "main.temp": 3.5, "main.wind.speed": 2, "tags": ["a"]}]
    assert flatten_record({"a": {}}) == {"a": {}}


@pytest.mark.parametrize(("text", "per_second"), [("5/s", 5.0), ("100/min", 100 / 60), ("1000/h", 1000 / 3600),
                                                  ("30/15m", 30 / 900), ("2 / 1s", 2.0)])
def test_a_rate_limit_is_read_as_requests_per_unit_or_per_duration(text, per_second):
    assert parse_rate(text) == pytest.approx(per_second)


@pytest.mark.parametrize("text", ["5", "five/s", "0/s", "5/fortnight"])
def test_a_rate_limit_that_is_no_rate_is_refused(text):
    with pytest.raises(ValueError, match="expected requests per unit or per duration"):
        parse_rate(text)


def test_the_rate_limit_spaces_request_starts_evenly(clock):
    pages = {f"{BASE}/v1/obs?p={p}": [{"data": [{"t": p}], "next": f"?p={p + 1}" if p < 4 else None}]
             for p in range(5)}
    server = FakeServer(clock, pages)
    fetch(api(url=f"{BASE}/v1/obs?p=0", records="data", pagination={"next": "next"}, rate_limit="5/s"), server, clock)
    starts = [at for _, _, at in server.requests]
    assert [round(b - a, 6) for a, b in zip(starts, starts[1:])] == [0.2] * 4


def test_a_page_failing_with_503_is_tried_again_with_a_doubling_backoff(clock):
    failing = Reply(503, {}, b"busy", "Service Unavailable")
    server = FakeServer(clock, {f"{BASE}/v1/obs": [failing, failing, [{"t": 1}]]})
    fetched = fetch(api(backoff="2s"), server, clock)
    assert [r["t"] for r in fetched.records] == [1]
    assert (fetched.requests, clock.sleeps) == (3, [2.0, 4.0])


def test_the_backoff_stops_doubling_at_a_minute(clock):
    server = FakeServer(clock, {f"{BASE}/v1/obs": [Reply(500, {}, b"", "Internal Server Error")] * 4 + [[{"t": 1}]]})
    fetch(api(backoff="20s"), server, clock)
    assert clock.sleeps == [20.0, 40.0, 60.0, 60.0]


def test_a_429_waits_as_long_as_its_retry_after_says(clock):
    throttled = Reply(429, {"Retry-After": "7"}, b"", "Too Many Requests")
    server = FakeServer(clock, {f"{BASE}/v1/obs": [throttled, [{"t": 1}]]})
    assert len(fetch(api(), server, clock).records) == 1
    assert clock.sleeps == [7.0]


def test_retry_after_may_be_an_http_date():
    now = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)
    assert retry_after_seconds(format_datetime(now + timedelta(seconds=30), usegmt=True), lambda: now) == 30.0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


def test_a_server_asking_for_a_pause_longer_than_five_minutes_fails_the_fetch(clock):
    server = FakeServer(clock, {f"{BASE}/v1/obs": [Reply(503, {"Retry-After": "3600"}, b"", "Service Unavailable")]})
    with pytest.raises(SourceError, match="asking to wait 3600s, more than 300s"):
        fetch(api(), server, clock)


def test_when_the_retries_run_out_the_error_says_how_many_attempts_failed_and_why(clock):
    server = FakeServer(clock, {f"{BASE}/v1/obs": [Reply(502, {}, b"", "Bad Gateway")]})
    with pytest.raises(SourceError, match=r"GET https://api.example.org/v1/obs failed after 3 attempts: "
                                          r"502 Bad Gateway"):
        fetch(api(retries=2, backoff="0s"), server, clock)
    assert len(server.requests) == 3


def test_another_client_error_fails_at_once_with_the_server_s_reason(clock):
    server = FakeServer(clock, {f"{BASE}/v1/obs": [Reply(400, {}, b'{"error": "unknown station"}', "Bad Request")]})
    with pytest.raises(SourceError, match='answered 400 Bad Request: {"error": "unknown station"}'):
        fetch(api(), server, clock)
    assert len(server.requests) == 1


def test_a_refused_token_fails_at_once_naming_the_source_the_url_and_the_variable_but_not_the_token(
        clock, monkeypatch):
    monkeypatch.setenv("WEATHER_TOKEN", TOKEN)
    server = FakeServer(clock, {f"{BASE}/v1/obs": [Reply(401, {}, f"token {TOKEN} expired".encode(),
                                                         "Unauthorized")]})
    with pytest.raises(SourceError) as caught:
        fetch(api(auth={"env": "WEATHER_TOKEN"}), server, clock)
    message = str(caught.value)
    assert message == ("source 'weather': GET https://api.example.org/v1/obs was refused with 401 Unauthorized: the "
                       "token from environment variable WEATHER_TOKEN is not accepted (expired, revoked or without "
                       "access?)")
    assert len(server.requests) == 1 and clock.sleeps == []


def test_the_token_goes_in_its_header_with_its_scheme_and_only_to_the_source_s_origin(clock, monkeypatch, tmp_path):
    (tmp_path / "token").write_text(TOKEN + "\n")
    server = FakeServer(clock, {
        f"{BASE}/v1/obs": [{"data": [{"t": 1}], "next": "https://elsewhere.example.net/obs"}],
        "https://elsewhere.example.net/obs": [{"data": [{"t": 2}]}],
    })
    fetch(api(records="data", pagination={"next": "next"}, auth={"file": "token"}), server, clock, tmp_path)
    assert [headers for _, headers, _ in server.requests] == [{"Authorization": f"Bearer {TOKEN}"}, {}]

    monkeypatch.setenv("KEY", TOKEN)
    server = FakeServer(clock, {f"{BASE}/v1/obs": [[{"t": 1}]]})
    fetch(api(auth={"header": "X-Api-Key", "env": "KEY"}), server, clock)
    assert server.requests[0][1] == {"X-Api-Key": TOKEN}


def test_a_redirect_to_another_origin_drops_the_token_and_one_within_the_origin_keeps_it():
    handler = SameOriginRedirects("Authorization")
    request = urllib.request.Request(f"{BASE}/v1/obs", headers={"Authorization": f"Bearer {TOKEN}"})
    elsewhere = handler.redirect_request(request, None, 302, "Found", {}, "https://cdn.example.net/obs")
    downgraded = handler.redirect_request(request, None, 302, "Found", {}, "http://api.example.org/v1/obs")
    same = handler.redirect_request(request, None, 302, "Found", {}, f"{BASE}/v2/obs")
    assert [r.has_header("Authorization") for r in (elsewhere, downgraded, same)] == [False, False, True]


def test_a_missing_token_names_the_variable_and_a_body_echoing_the_token_is_redacted(clock, monkeypatch):
    monkeypatch.delenv("WEATHER_TOKEN", raising=False)
    with pytest.raises(SourceError, match="source 'weather': no token in environment variable WEATHER_TOKEN"):
        fetch(api(auth={"env": "WEATHER_TOKEN"}), FakeServer(clock, {}), clock)
    monkeypatch.setenv("WEATHER_TOKEN", TOKEN)
    server = FakeServer(clock, {f"{BASE}/v1/obs": [Reply(200, {}, f"<html>hello {TOKEN}</html>".encode())]})
    with pytest.raises(SourceError, match=r"did not answer JSON .*<html>hello \[token\]</html>") as caught:
        fetch(api(auth={"env": "WEATHER_TOKEN"}), server, clock)
    assert TOKEN not in str(caught.value)
