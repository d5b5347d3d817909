"""A web_api source against a small paginated JSON API this test serves on 127.0.0.1: link and offset pagination, a
page failing once with 503, a 429 with Retry-After, an expired token; then `dataops run` of a pipeline joining the
API's records to a CSV, run again without a request, after `refresh` with the same records (nothing recomputed) and
with changed ones (recomputed), the token found in no record, no file and no line of output."""

from __future__ import annotations

import http.server
import json
import logging
import threading
import time
from collections import Counter
from urllib.parse import parse_qs, urlsplit

import pytest
from typer.testing import CliRunner

from orchestrator.cli.main import app
from orchestrator.errors import SourceError
from orchestrator.pipeline.web_api import fetch_records
from orchestrator.pipeline.web_api_spec import WebApi
from tests.conftest import write

pytestmark = pytest.mark.integration

TOKEN = "wx-7f3a9c1e5b2d4068"
PAGE_SIZE = 3
STATIONS = ["EWR", "JFK", "LGA"]
DAYS = [f"2026-03-{day:02d}" for day in range(1, 5)]


class WeatherApi:
    """Observations by page (`/v1/observations?page=N`, a next link in each page) behind a bearer token, and
    stations by offset and limit (`/v1/stations`); it counts every request, and answers the faults it is told to."""

    def __init__(self):
        self.observations = [{"station": s, "day": d, "temp": round(10 + i * 0.5, 1), "sky": {"cover": i % 4}}
                             for i, (s, d) in enumerate((s, d) for s in STATIONS for d in DAYS)]
        self.stations = [{"code": code, "name": f"station {code}"} for code in STATIONS * 3]
        self.tokens = {TOKEN}
        self.requests: Counter[str] = Counter()
        self.authorizations: list[str | None] = []
        self.faults: dict[str, list[tuple[int, dict]]] = {}

    def answer(self, path: str, query: dict, authorization: str | None) -> tuple[int, dict, object]:
        self.requests[path] += 1
        key = f"{path}?page={query.get('page', ['1'])[0]}" if path == "/v1/observations" else path
        if self.faults.get(key):
            status, headers = self.faults[key].pop(0)
            return status, headers, {"error": "try again"}
        if path == "/v1/observations":
            self.authorizations.append(authorization)
            if authorization not in {f"Bearer {token}" for token in self.tokens}:
                return 401, {}, {"error": "token expired"}
            page = int(query.get("page", ["1"])[0])
            rows = self.observations[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]
            more = page * PAGE_SIZE < len(self.observations)
            station = query["station"][0]
            next_url = f"/v1/observations?station={station}&page={page + 1}" if more else None
            return 200, {}, {"data": rows, "links": {"next": next_url}}
        if path == "/v1/stations":
            offset, limit = int(query["offset"][0]), int(query["limit"][0])
            return 200, {}, self.stations[offset: offset + limit]
        return 404, {}, {"error": "no such path"}


@pytest.fixture
def weather_api():
    api = WeatherApi()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            parts = urlsplit(self.path)
            status, headers, body = api.answer(parts.path, parse_qs(parts.query), self.headers.get("Authorization"))
            data = json.dumps(body).encode()
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):  # the test reads its counters, not stderr
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    api.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield api
    server.shutdown()
    server.server_close()


def observations(api: WeatherApi, **fields) -> WebApi:
    return WebApi.model_validate({"url": f"{api.url}/v1/observations", "params": {"station": "all"},
                                  "records": "data", "pagination": {"next": "links.next"},
                                  "auth": {"env": "WEATHER_TOKEN"}, **fields})


@pytest.fixture
def token(monkeypatch):
    monkeypatch.setenv("WEATHER_TOKEN", TOKEN)
    return TOKEN


def test_link_pagination_reads_every_page_sending_the_token_each_time(weather_api, token, tmp_path):
    fetched = fetch_records(observations(weather_api, flatten=True), "weather", tmp_path)
    assert [(r["station"], r["day"]) for r in fetched.records] == [(s, d) for s in STATIONS for d in DAYS]
    assert fetched.records[1]["sky.cover"] == 1
    assert (fetched.pages, fetched.requests) == (4, 4) == (weather_api.requests["/v1/observations"], 4)
    assert weather_api.authorizations == [f"Bearer {TOKEN}"] * 4


def test_offset_pagination_reads_pages_of_the_asked_size_until_a_short_one(weather_api, tmp_path):
    spec = WebApi.model_validate({"url": f"{weather_api.url}/v1/stations", "pagination": {"size": 4}})
    fetched = fetch_records(spec, "stations", tmp_path)
    assert [r["code"] for r in fetched.records] == STATIONS * 3
    assert fetched.pages == weather_api.requests["/v1/stations"] == 3  # 4 + 4 + 1 records


def test_a_page_failing_once_with_503_is_asked_again_and_nothing_is_lost(weather_api, token, tmp_path):
    weather_api.faults["/v1/observations?page=2"] = [(503, {})]
    fetched = fetch_records(observations(weather_api, backoff="1s"), "weather", tmp_path)
    assert len(fetched.records) == len(weather_api.observations)
    assert fetched.requests == weather_api.requests["/v1/observations"] == 5


def test_a_429_is_waited_out_as_long_as_its_retry_after_says(weather_api, token, tmp_path):
    weather_api.faults["/v1/observations?page=3"] = [(429, {"Retry-After": "2"})]
    started = time.monotonic()
    fetched = fetch_records(observations(weather_api, backoff="0s"), "weather", tmp_path)
    assert time.monotonic() - started >= 2.0
    assert len(fetched.records) == len(weather_api.observations) and fetched.requests == 5


def test_an_expired_token_fails_at_once_naming_the_source_and_the_url_but_not_the_token(weather_api, token, tmp_path):
    weather_api.tokens.clear()
    with pytest.raises(SourceError) as caught:
        fetch_records(observations(weather_api), "weather", tmp_path)
    assert str(caught.value).startswith(f"source 'weather': GET {weather_api.url}/v1/observations?station=all was "
                                        "refused with 401 Unauthorized: the token from environment variable "
                                        "WEATHER_TOKEN is not accepted")
    assert TOKEN not in str(caught.value)
    assert weather_api.requests["/v1/observations"] == 1


PIPELINE = """
name: station-visits
sources:
  visits:
    location: visits.csv
  weather:
    web_api:
      url: {url}/v1/observations
      params: {{station: all}}
      records: data
      pagination: {{next: links.next}}
      auth: {{header: Authorization, scheme: Bearer, env: WEATHER_TOKEN}}
      rate_limit: 20/s
      refresh: 1h
    validation:
      columns:
        temp: {{type: float}}
blend:
  base: visits
  joins:
    - source: weather
      keys: [station, day]
      columns: [temp]
split:
  by: hash
  column: visit_id
  fractions: {{train: 0.6, validation: 0.2, test: 0.1, serve: 0.1}}
"""


def test_a_pipeline_joins_web_api_records_to_a_csv_and_fetches_only_when_refresh_has_passed(
        weather_api, token, tmp_path, dask_client, caplog):
    lines = ["visit_id,station,day,visitors"] + [f"{i},{STATIONS[i % 3]},{DAYS[i % 4]},{i * 7 % 50}"
                                                  for i in range(120)]
    (tmp_path / "visits.csv").write_text("\n".join(lines) + "\n")
    pipeline = write(tmp_path / "pipeline.yaml", PIPELINE.format(url=weather_api.url))
    store = tmp_path / "store"
    outputs = []

    records = []

    def run(expect_exit: int = 0) -> dict:
        result = CliRunner().invoke(app, ["run", str(pipeline), "--store", str(store),
                                          "--scheduler", dask_client.scheduler.address])
        outputs.append(result.output)
        assert result.exit_code == expect_exit, result.output
        if expect_exit:
            return {}
        shown = CliRunner().invoke(app, ["runs", "show", result.stdout.strip(), "--store", str(store), "--json"])
        records.append(json.loads(shown.stdout))
        return {name: stage["status"] for name, stage in records[-1]["stages"].items()}

    caplog.set_level(logging.INFO, logger="orchestrator")
    stages = run()
    assert set(stages.values()) == {"ran"} and {"ingest.weather", "ingest.visits", "blend", "split"} <= set(stages)
    assert [join["match_rate"] for join in records[0]["stages"]["blend"]["joins"]] == [1.0]
    assert weather_api.requests["/v1/observations"] == 4
    assert "fetched 12 records in 4 pages (4 requests)" in caplog.text

    assert set(run().values()) == {"cached"}
    assert weather_api.requests["/v1/observations"] == 4  # within refresh: no request at all

    pipeline.write_text(pipeline.read_text().replace("refresh: 1h", "refresh: 1s"))
    time.sleep(1.1)
    assert set(run().values()) == {"cached"}  # fetched again, the same records: nothing recomputed
    assert weather_api.requests["/v1/observations"] == 8

    weather_api.observations[0]["temp"] = -3.5
    time.sleep(1.1)
    stages = run()
    assert weather_api.requests["/v1/observations"] == 12
    assert {name for name, status in stages.items() if status == "ran"} >= {"ingest.weather", "blend", "split"}
    assert stages["ingest.visits"] == "cached"

    weather_api.tokens.clear()
    time.sleep(1.1)
    run(expect_exit=3)
    assert f"source 'weather': GET {weather_api.url}/v1/observations?station=all was refused with 401" in outputs[-1]
    assert weather_api.requests["/v1/observations"] == 13

    leaks = [str(path) for path in tmp_path.rglob("*") if path.is_file() and TOKEN.encode() in path.read_bytes()]
    assert leaks == [], "the token was written to files"
    assert not any(TOKEN in output for output in outputs) and TOKEN not in caplog.text
