"""What SwiftStore decides before talking to Swift: URLs, keys, sizes."""

import io

import pytest

from orchestrator.artifacts.swift import SwiftStore
from orchestrator.artifacts.swift_objects import _SizedReader, object_path
from orchestrator.durations import parse_duration
from orchestrator.errors import ArtifactError, DataopsError

NO_CLOUD = object()  # the constructor only keeps the connection


def test_from_url_splits_container_and_prefix(tmp_path):
    store = SwiftStore.from_url("swift://dataops-test/team/a", conn=NO_CLOUD, cache_dir=tmp_path)
    assert (store.container, store.prefix, store.uri) == ("dataops-test", "team/a", "swift://dataops-test/team/a")
    assert store._name("runs/r1") == "team/a/runs/r1"


def test_from_url_without_prefix_uses_bare_keys(tmp_path):
    store = SwiftStore.from_url("swift://dataops-test", conn=NO_CLOUD, cache_dir=tmp_path)
    assert store.uri == "swift://dataops-test" and store._name("/x/y/") == "x/y"


@pytest.mark.parametrize("url", ["swift:///prefix-only", "s3://bucket/x", "dataops-test"])
def test_from_url_rejects_what_is_not_swift_container_url(url):
    with pytest.raises(DataopsError, match="expected swift://CONTAINER"):
        SwiftStore.from_url(url, conn=NO_CLOUD)


@pytest.mark.parametrize("key", ["", "/", "a/../b", ".."])
def test_keys_escaping_the_prefix_are_refused(key, tmp_path):
    store = SwiftStore("c", "p", conn=NO_CLOUD, cache_dir=tmp_path)
    with pytest.raises(ArtifactError, match="invalid artifact key"):
        store._name(key)


def test_object_urls_are_quoted_but_keep_folders():
    assert object_path("c", "a dir/b#1") == "c/a%20dir/b%231"


def test_threshold_is_never_below_one_segment(tmp_path):
    store = SwiftStore("c", conn=NO_CLOUD, cache_dir=tmp_path, segment_size=8, segment_threshold=2)
    assert store.segment_threshold == 8


def test_sized_reader_streams_in_the_callers_block_size_and_reports_its_length():
    reader = _SizedReader(io.BytesIO(b"abcdef"), 6)
    assert len(reader) == 6
    assert reader.read(4) == b"abcd" and reader.read(-1) == b"ef" and reader.read(4) == b""


@pytest.mark.parametrize("text, seconds", [("30s", 30), ("15m", 900), ("1h", 3600), (" 7d ", 604800)])
def test_share_durations_parse(text, seconds):
    assert parse_duration(text, "--expires") == seconds


@pytest.mark.parametrize("text", ["0h", "1 hour", "h", "-1h", "1.5h"])
def test_bad_share_durations_say_what_is_expected(text):
    with pytest.raises(DataopsError, match="expected a positive number and a unit"):
        parse_duration(text, "--expires")
