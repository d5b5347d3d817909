import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from orchestrator.artifacts.local import LocalStore
from orchestrator.cli.main import app
from orchestrator.registry.models import ModelRegistry
from registry_data import flights, real_model_folder

runner = CliRunner()


@pytest.fixture(scope="module")
def store_with_two_versions(tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    registry = ModelRegistry(LocalStore(root))
    for C in (1.0, 0.01):
        registry.register(real_model_folder(tmp_path_factory.mktemp(f"m{C}"), C=C), "flights-delay")
    return str(root)


def invoke(*args):
    return runner.invoke(app, list(args))


def test_model_list_prints_versions_as_json(store_with_two_versions):
    result = invoke("model", "list", "--store", store_with_two_versions, "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [(r["name"], r["version"]) for r in rows] == [("flights-delay", 1), ("flights-delay", 2)]


def test_model_show_prints_the_card_with_metrics_parity_and_lineage(store_with_two_versions):
    result = invoke("model", "show", "flights-delay:1", "--store", store_with_two_versions)
    assert result.exit_code == 0, result.output
    assert "# flights-delay v1" in result.stdout
    assert "## ONNX parity" in result.stdout and "passed on 100 test rows" in result.stdout
    assert "run_id: `run-C1.0`" in result.stdout


def test_promote_then_rollback_moves_production(store_with_two_versions):
    assert invoke("model", "promote", "flights-delay:1", "--to", "production", "--store",
                  store_with_two_versions).exit_code == 0
    assert invoke("model", "promote", "flights-delay:2", "--to", "production", "--store",
                  store_with_two_versions).exit_code == 0
    result = invoke("model", "rollback", "flights-delay", "--store", store_with_two_versions)
    assert result.exit_code == 0, result.output
    assert "rolled back to version 1" in result.output
    card = json.loads(invoke("model", "show", "flights-delay@production", "--store", store_with_two_versions,
                             "--json").stdout)
    assert card["version"] == 1


def test_compare_shows_the_changed_parameter(store_with_two_versions):
    result = invoke("model", "compare", "flights-delay:1", "flights-delay:2", "--store", store_with_two_versions,
                    "--json")
    diff = json.loads(result.stdout)
    assert diff["params"]["C"] == {"left": 1.0, "right": 0.01}
    assert "roc_auc" in diff["metrics"]


def test_an_unknown_model_is_an_error_with_its_exit_code(store_with_two_versions):
    result = invoke("model", "show", "nope", "--store", store_with_two_versions)
    assert result.exit_code == 8
    assert "Error: no model 'nope'" in result.output


def test_predict_writes_predictions_with_model_version_and_input_fingerprint(store_with_two_versions, tmp_path):
    source = tmp_path / "serve.parquet"
    flights(250, 7).drop(columns=["delayed"]).to_parquet(source)
    out = tmp_path / "predictions"
    result = invoke("predict", "flights-delay:2", "--input", str(source), "--output", str(out),
                    "--store", store_with_two_versions)
    assert result.exit_code == 0, result.output
    record = json.loads((out / "_prediction.json").read_text())
    assert record["model"]["version"] == 2 and record["rows"] == 250
    assert len(record["input"]["fingerprint"]) == 64
    predictions = pd.read_parquet(out)
    assert len(predictions) == 250 and set(predictions["model_version"]) == {2}
    assert predictions["proba_1"].between(0, 1).all()


def test_predict_refuses_input_missing_a_model_column(store_with_two_versions, tmp_path):
    source = tmp_path / "bad.csv"
    flights(20, 7).drop(columns=["carrier"]).to_csv(source, index=False)
    result = invoke("predict", "flights-delay", "--input", str(source), "--output", str(tmp_path / "o"),
                    "--store", store_with_two_versions)
    assert result.exit_code == 12
    assert "input column 'carrier' is missing" in result.output
    assert not (tmp_path / "o").exists()


def test_predict_reads_json_lines_with_an_empty_column_and_refuses_rows_as_the_server_does(store_with_two_versions,
                                                                                            tmp_path):
    rows = flights(6, 7).drop(columns=["delayed"])
    rows["dep_hour"] = rows["dep_hour"].astype(object)
    rows.loc[1, "carrier"] = "ZZ"          # a carrier the model never saw
    rows.loc[2, "dep_hour"] = 99           # beyond the training hours
    rows["comment"] = None                 # a column holding no value at all
    source = tmp_path / "rows.jsonl"
    source.write_text(rows.to_json(orient="records", lines=True))
    out = tmp_path / "scored"
    result = invoke("predict", "flights-delay:1", "--input", str(source), "--output", str(out),
                    "--store", store_with_two_versions)
    assert result.exit_code == 0, result.output
    assert "Scored 4 of 6 rows" in result.output and "refused 2" in result.output
    record = json.loads((out / "_prediction.json").read_text())
    assert (record["rows"], record["scored"], record["refused"], record["range_policy"]) == (6, 4, 2, "reject")
    scored = pd.read_parquet(out)
    assert scored["refused"].notna().tolist() == [False, True, True, False, False, False]
    assert "training categories" in scored["refused"][1] and "training range" in scored["refused"][2]

    flagged = invoke("predict", "flights-delay:1", "--input", str(source), "--output", str(tmp_path / "flagged"),
                     "--store", store_with_two_versions, "--range-policy", "flag")
    assert flagged.exit_code == 0, flagged.output
    scored = pd.read_parquet(tmp_path / "flagged")
    assert scored["refused"].isna().all() and scored["prediction"].notna().all()
    assert [json.loads(v) if isinstance(v, str) else None for v in scored["out_of_range"]][1:3] == [["carrier"],
                                                                                                  ["dep_hour"]]


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet", ".csv"])
def test_predict_scores_a_model_input_that_holds_no_value_at_all(store_with_two_versions, tmp_path, suffix):
    rows = flights(4, 7).drop(columns=["delayed"])
    rows["dep_hour"] = None                # the hours were not recorded: missing values, as the card allows
    source = tmp_path / f"rows{suffix}"
    if suffix == ".jsonl":
        source.write_text(rows.to_json(orient="records", lines=True))
    elif suffix == ".parquet":
        rows.to_parquet(source)
    else:
        rows.to_csv(source, index=False)
    result = invoke("predict", "flights-delay:1", "--input", str(source), "--output", str(tmp_path / "o"),
                    "--store", store_with_two_versions)
    assert result.exit_code == 0, result.output
    scored = pd.read_parquet(tmp_path / "o")
    assert scored["refused"].isna().all() and scored["prediction"].notna().all()


def test_raw_rows_need_the_pipeline_that_trained_the_model(store_with_two_versions, tmp_path):
    source = tmp_path / "rows.csv"
    flights(5, 7).to_csv(source, index=False)
    result = invoke("predict", "flights-delay:1", "--input", str(source), "--output", str(tmp_path / "o"),
                    "--store", store_with_two_versions, "--raw")
    assert result.exit_code != 0
    assert "names no run record in this store" in result.output and "--pipeline FILE" in result.output
    alone = invoke("predict", "flights-delay:1", "--input", str(source), "--output", str(tmp_path / "o"),
                   "--store", store_with_two_versions, "--pipeline", str(tmp_path / "p.yaml"))
    assert alone.exit_code == 2 and "add --raw" in alone.output
    assert not (tmp_path / "o").exists()
