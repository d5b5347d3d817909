"""One duration grammar for every option and file: what each of them accepted before still reads the same, and a
bad value is refused with a message naming the value, where it was given and what is expected."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli.main import app
from orchestrator.durations import InvalidDuration, format_duration, parse_duration
from orchestrator.errors import DataopsError

EXAMPLE_CLUSTER = Path(__file__).resolve().parents[2] / "examples" / "clusters" / "cluster.yaml"


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("90s", 90),
        ("30m", 1800),
        ("30min", 1800),  # the pipeline files' spelling
        ("30 min", 1800),
        ("1h", 3600),
        ("8h", 28800),
        ("1h30m", 5400),
        ("1h 30m", 5400),
        ("1d12h", 129600),  # the cluster files' combined form
        ("7d", 604800),
        (" 7d ", 604800),
        ("2m30s", 150),
    ],
)
def test_every_spelling_used_before_reads_as_the_same_number_of_seconds(text, seconds):
    assert parse_duration(text, "--ttl") == seconds


@pytest.mark.parametrize("text", ["5x", "", "  ", "-1h", "1.5h", "h", "1 hour", "30m1h", "1h1h", "eight hours"])
def test_a_bad_duration_names_the_value_where_it_was_given_and_what_is_expected(text):
    with pytest.raises(InvalidDuration) as caught:
        parse_duration(text, "--ttl")
    message = str(caught.value)
    assert f"invalid duration {text!r} for --ttl" in message
    assert "expected a duration such as 8h, 30m, 90s, 1h30m or 7d" in message


def test_zero_is_refused_unless_the_caller_allows_it():
    with pytest.raises(InvalidDuration, match=r"invalid duration '0m' for --expires: .*longer than zero"):
        parse_duration("0m", "--expires")
    assert parse_duration("0s", "the join tolerance", allow_zero=True) == 0


def test_a_bad_duration_is_a_dataops_error_and_a_value_error_for_pydantic_validators():
    with pytest.raises(DataopsError):
        parse_duration("5x", "--ttl")
    with pytest.raises(ValueError):
        parse_duration("5x", "--ttl")


@pytest.mark.parametrize("seconds, text", [(0, "0s"), (90, "1m30s"), (5400, "1h30m"), (129600, "1d12h"), (604800, "7d")])
def test_formatting_writes_what_parsing_reads(seconds, text):
    assert format_duration(seconds) == text
    assert parse_duration(text, "a duration", allow_zero=True) == seconds


def test_formatting_a_negative_duration_is_refused():
    with pytest.raises(ValueError, match="cannot be negative"):
        format_duration(-1)


def test_cluster_create_with_a_bad_ttl_fails_clearly_before_touching_the_cloud(tmp_path, monkeypatch):
    monkeypatch.setenv("DATAOPS_CLUSTERS_DIR", str(tmp_path / "clusters"))
    monkeypatch.setenv("OS_CLOUD", "no-such-cloud")  # reaching the cloud would fail with another message
    result = CliRunner().invoke(app, ["cluster", "create", "c", "-f", str(EXAMPLE_CLUSTER), "--ttl", "5x"])
    assert result.exit_code == InvalidDuration.exit_code, result.output
    assert isinstance(result.exception, SystemExit), "expected a clean exit, not a traceback"
    assert "invalid duration '5x' for --ttl: expected a duration such as 8h" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "clusters").exists(), "nothing may be recorded for a refused cluster"


def test_a_bad_ttl_in_a_cluster_file_names_file_line_and_field(tmp_path):
    from orchestrator.clusters.spec import load_cluster_spec
    from orchestrator.errors import SpecError

    path = tmp_path / "cluster.yaml"
    path.write_text(EXAMPLE_CLUSTER.read_text().replace("ttl: 8h ", "ttl: 5x "))
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if text.startswith("ttl:"))
    with pytest.raises(SpecError) as caught:
        load_cluster_spec(path)
    assert f"{path}:{line}: ttl: invalid duration '5x' for the time-to-live" in str(caught.value)


def test_a_bad_join_tolerance_in_a_pipeline_file_names_file_line_and_field(tmp_path):
    from orchestrator.errors import SpecError
    from orchestrator.pipeline.spec import load_pipeline

    path = tmp_path / "pipeline.yaml"
    path.write_text(
        "name: shop\n"
        "sources: {orders: {location: orders.csv}, weather: {location: weather.csv}}\n"
        "blend:\n"
        "  base: orders\n"
        "  joins:\n"
        "    - source: weather\n"
        "      keys: [origin]\n"
        "      time: {left: t, right: t, tolerance: 1 hour}\n"
        "split: {by: hash, column: id, fractions: {train: 0.7, validation: 0.1, test: 0.1, serve: 0.1}}\n"
    )
    with pytest.raises(SpecError) as caught:
        load_pipeline(path)
    assert (
        f"{path}:8: blend.joins.0.time.tolerance: invalid duration '1 hour' for the join tolerance: "
        "expected a duration such as 8h"
    ) in str(caught.value)
