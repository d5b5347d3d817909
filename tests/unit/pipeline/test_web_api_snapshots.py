"""Each fetch of a web_api source is kept in the store under the sha256 of its records, with a record of the fetch;
within `refresh` the snapshot is read again without any request, and a fetch yielding the same records yields the
same file. The pipeline file says `location` or `web_api`, not both, not neither."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from orchestrator.artifacts.local import LocalStore
from orchestrator.errors import SourceError, SpecError
from orchestrator.pipeline.spec import load_pipeline
from orchestrator.pipeline.web_api import Fetched
from orchestrator.pipeline.web_api_snapshots import latest_fetch, web_api_snapshot
from orchestrator.pipeline.web_api_spec import WebApi
from tests.conftest import write

START = datetime(2026, 6, 1, 8, 0, tzinfo=timezone.utc)


class Api:
    """A fake fetch: the records the web API gives now, and a clock the test moves."""

    def __init__(self, records):
        self.records = records
        self.now = START
        self.fetches = 0

    def fetch(self, api, source, base_dir):
        self.fetches += 1
        return Fetched(list(self.records), api.url, pages=2, requests=3)


@pytest.fixture
def snapshot(tmp_path):
    store = LocalStore(tmp_path / "store")
    folder = tmp_path / "cache"
    folder.mkdir()

    def take(spec: WebApi, api: Api):
        return web_api_snapshot(spec, "weather", tmp_path, store, folder, now=lambda: api.now, fetch=api.fetch)

    take.store = store
    return take


def spec(**fields) -> WebApi:
    return WebApi.model_validate({"url": "https://api.example.org/v1/obs", "params": {"station": "JFK"}, **fields})


def test_a_fetch_is_kept_under_the_sha256_of_its_records_with_a_record_of_the_fetch(snapshot):
    api = Api([{"t": 1, "temp": 3.5}, {"t": 2, "temp": None}])
    path = snapshot(spec(refresh="1d"), api)
    assert path.read_text() == '{"t":1,"temp":3.5}\n{"t":2,"temp":null}\n'
    record = latest_fetch(spec(refresh="1d"), snapshot.store)
    assert record == {"source": "weather", "url": "https://api.example.org/v1/obs",
                      "fetched_at": "2026-06-01T08:00:00Z", "pages": 2, "requests": 3, "records": 2,
                      "bytes": path.stat().st_size,
                      "snapshot": f"web_api/snapshots/{path.stem}.jsonl", "sha256": path.stem}
    assert snapshot.store.get_bytes(record["snapshot"], sha256=record["sha256"]) == path.read_bytes()


def test_within_refresh_the_snapshot_is_reused_without_a_fetch_even_when_the_local_copy_is_gone(snapshot):
    api = Api([{"t": 1}])
    first = snapshot(spec(refresh="1d"), api)
    first.unlink()
    api.now = START + timedelta(hours=23)
    assert snapshot(spec(refresh="1d"), api).read_bytes() == b'{"t":1}\n'
    assert api.fetches == 1


def test_after_refresh_the_same_records_give_the_same_file_and_new_ones_a_new_file(snapshot):
    api = Api([{"t": 1}])
    first = snapshot(spec(refresh="1h"), api)
    api.now = START + timedelta(hours=1)
    assert snapshot(spec(refresh="1h"), api) == first and api.fetches == 2
    api.records, api.now = [{"t": 1}, {"t": 2}], START + timedelta(hours=2)
    changed = snapshot(spec(refresh="1h"), api)
    assert changed != first and api.fetches == 3
    assert latest_fetch(spec(), snapshot.store)["fetched_at"] == "2026-06-01T10:00:00Z"
    assert len(list(snapshot.store.list("web_api/fetches/"))) == 4  # three fetches and the latest


def test_without_refresh_every_run_fetches_and_with_refresh_never_none_fetches_again(snapshot):
    api = Api([{"t": 1}])
    snapshot(spec(), api)
    snapshot(spec(), api)
    assert api.fetches == 2
    api.now = START + timedelta(days=400)
    snapshot(spec(refresh="never"), api)
    assert api.fetches == 2


def test_how_a_request_is_fetched_does_not_change_which_snapshot_it_finds_but_what_it_asks_does(snapshot):
    api = Api([{"t": 1}])
    snapshot(spec(refresh="1d", retries=1), api)
    snapshot(spec(refresh="2d", rate_limit="1/s", auth={"env": "T"}), api)
    assert api.fetches == 1
    snapshot(spec(refresh="1d", params={"station": "LGA"}), api)
    assert api.fetches == 2


def test_a_fetch_with_no_records_fails_naming_the_source_and_the_url(snapshot):
    with pytest.raises(SourceError, match=r"source 'weather': https://api.example.org/v1/obs gave no records"):
        snapshot(spec(), Api([]))


PIPELINE = """
name: weather
sources:
  weather:
{origin}
split:
  by: hash
  column: t
  fractions: {{train: 0.7, validation: 0.1, test: 0.1, serve: 0.1}}
"""
WEB_API = """    web_api:
      url: https://api.example.org/v1/obs
      records: data
      pagination: {next: links.next}
      auth: {env: WEATHER_TOKEN}
      refresh: 1d"""


def test_a_web_api_source_loads_and_is_read_as_json_records(tmp_path):
    loaded = load_pipeline(write(tmp_path / "p.yaml", PIPELINE.format(origin=WEB_API)))
    source = loaded.spec.sources["weather"]
    assert (source.location, source.resolved_format, source.origin) == (None, "jsonl",
                                                                        "https://api.example.org/v1/obs")
    assert source.web_api.pagination.mode == "next" and source.web_api.refresh_seconds == 86400


def test_a_source_with_both_location_and_web_api_is_refused_at_its_line(tmp_path):
    path = write(tmp_path / "p.yaml", PIPELINE.format(origin="    location: obs.jsonl\n" + WEB_API))
    with pytest.raises(SpecError, match=r"p.yaml:3: sources.weather: a source reads files \(`location`\) or a web "
                                        r"API \(`web_api`\), not both"):
        load_pipeline(path)


def test_a_misspelt_web_api_field_names_its_line_and_the_closest_name(tmp_path):
    path = write(tmp_path / "p.yaml", PIPELINE.format(origin=WEB_API.replace("refresh: 1d", "refesh: 1d")))
    with pytest.raises(SpecError, match=r"p.yaml:9: unknown field 'sources.weather.web_api.refesh' \(did you mean "
                                        r"'refresh'\?\)"):
        load_pipeline(path)


def test_pagination_must_choose_one_way(tmp_path):
    path = write(tmp_path / "p.yaml", PIPELINE.format(origin=WEB_API.replace("{next: links.next}",
                                                                             "{next: links.next, size: 100}")))
    with pytest.raises(SpecError, match=r"p.yaml:7: sources.weather.web_api.pagination: pagination sets exactly one "
                                        r"of .*; this one sets next, size"):
        load_pipeline(path)

