"""`dataops run` and `dataops runs ...` as a user types them."""

import json

import pytest
from typer.testing import CliRunner

from orchestrator.cli.main import app

pytestmark = pytest.mark.integration


def test_run_then_show_and_compare_runs(shop, tmp_path):
    runner = CliRunner()
    path = shop()
    store = str(tmp_path / "cli-store")
    first = runner.invoke(app, ["run", str(path), "--store", store])
    assert first.exit_code == 0, first.output
    assert "dask dashboard: http://127.0.0.1:" in first.stderr
    assert "done   ingest.events" in first.stderr and "2,000 -> 1,997 rows, 3 quarantined" in first.stderr
    first_id = first.stdout.strip()

    path.write_text(path.read_text().replace('"amount > 100"', '"amount > 150"'))
    second = runner.invoke(app, ["run", str(path), "--store", store])
    assert second.exit_code == 0, second.output
    assert "cached ingest.events" in second.stderr
    second_id = second.stdout.strip()

    shown = runner.invoke(app, ["runs", "show", first_id, "--store", store, "--json"])
    record = json.loads(shown.stdout)
    assert record["status"] == "succeeded" and list(record["stages"])[0] == "ingest.events"
    assert all(len(a["sha256"]) == 64 for a in record["artifacts"])

    compared = runner.invoke(app, ["runs", "compare", first_id, second_id, "--store", store, "--json"])
    diff = json.loads(compared.stdout)
    assert set(diff["stages"]) == {"features", "split"}
    assert any("amount > 150" in str(new) for _, new in diff["parameters"].values())


def test_a_pipeline_file_with_a_typo_exits_2_with_file_line_and_suggestion(shop, tmp_path):
    path = shop()
    path.write_text(path.read_text().replace("boundaries:", "boundaires:"))
    result = CliRunner().invoke(app, ["run", str(path), "--store", str(tmp_path / "s")])
    assert result.exit_code == 2
    assert f"Error: {path}:" in result.stderr
    assert "unknown field 'split.boundaires' (did you mean 'boundaries'?)" in result.stderr


def test_a_misspelt_column_fails_the_run_before_any_stage_runs_with_file_line_and_suggestion(shop, tmp_path):
    path = shop()
    path.write_text(path.read_text().replace('  - derive: {big: "amount > 100"}', '  - derive: {big: "amout > 100"}'))
    store = tmp_path / "s"
    result = CliRunner().invoke(app, ["run", str(path), "--store", str(store)])
    assert result.exit_code == 2, result.output
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if "amout" in text)
    assert (f"Error: {path}:{line}: field 'features[0].derive.big': unknown column 'amout' (did you mean 'amount'?)"
            in result.stderr)
    assert not (store / "cache").exists(), "no stage ran"


def test_showing_an_unknown_run_says_which_runs_exist(tmp_path):
    result = CliRunner().invoke(app, ["runs", "show", "nope", "--store", str(tmp_path / "s")])
    assert result.exit_code == 8
    assert "no run 'nope'" in result.stderr
