"""Any column name works everywhere: a pipeline whose columns have spaces, parentheses, dots, hyphens, non-ASCII
letters and a leading digit runs through validation, steps, a join on `Customer ID`, a window feature, training,
ONNX export and parity; `dataops predict` scores rows written with the original names, and a real server answers
`/predict` records with the original names, V2 tensors with the ONNX names, and lists both in its metadata."""

from __future__ import annotations

import json
import re
import time

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from orchestrator.cli.main import app
from tests.conftest import write
from tests.support.live_server import BIN, RunningServer, free_port

pytestmark = pytest.mark.integration

MODEL = "any-names"
NUMERIC = ["Amount (EUR)", "unit.price", "Größe", "2nd try", "Double (EUR)", "Amount (EUR)_lag1",
           "Amount (EUR)_mean_3r"]
CATEGORICAL = ["région", "a-b"]

PIPELINE = """
name: any-names
sources:
  orders:
    location: orders.csv
    validation:
      max_bad_fraction: 0.05
      columns:
        "Order ID": {type: int, not_null: true}
        "Customer ID": {type: int, not_null: true}
        "ordered at": {type: datetime, not_null: true}
        "Amount (EUR)": {type: float, min: 0}
        "unit.price": {type: float, min: 0}
        "Größe": {type: float}
        "2nd try": {type: int}
        "a-b": {type: string, allowed: [x, y, z]}
    steps:
      - filter: "`Amount (EUR)` < 900"
      - derive: {"Double (EUR)": "`Amount (EUR)` * 2"}
  customers:
    location: customers.csv
    validation:
      columns:
        "Customer ID": {type: int, not_null: true}
        "région": {type: string}
blend:
  base: orders
  joins:
    - source: customers
      keys: ["Customer ID"]
features:
  - derive: {"big (yes/no)": "`Amount (EUR)` * `unit.price` > 150"}
  - window:
      by: ["Customer ID"]
      order: "ordered at"
      lag: {"Amount (EUR)": [1]}
      rolling:
        - {column: "Amount (EUR)", stats: [mean], rows: 3}
split:
  by: hash
  column: "Order ID"
  fractions: {train: 0.6, validation: 0.15, test: 0.15, serve: 0.1}
model:
  name: any-names
  task: classification
  target: "big (yes/no)"
  features:
    numeric: ["Amount (EUR)", "unit.price", "Größe", "2nd try", "Double (EUR)", "Amount (EUR)_lag1",
              "Amount (EUR)_mean_3r"]
    categorical: ["région", "a-b"]
  estimator: sklearn.ensemble.HistGradientBoostingClassifier
  params: {max_iter: 30}
monitoring:
  min_rows: 20
"""


def make_orders(folder, rows: int = 1200) -> None:
    """Orders of 40 customers, one bad amount, and the customers' regions with accented values."""
    rng = np.random.default_rng(3)
    orders = pd.DataFrame({
        "Order ID": np.arange(rows),
        "Customer ID": rng.integers(0, 40, rows),
        "ordered at": pd.date_range("2025-01-01", periods=rows, freq="37min").strftime("%Y-%m-%dT%H:%M:%SZ"),
        "Amount (EUR)": rng.gamma(2.0, 60.0, rows).round(2).astype(str),
        "unit.price": rng.uniform(0.5, 3.0, rows).round(3),
        "Größe": rng.normal(40, 3, rows).round(1),
        "2nd try": rng.integers(0, 2, rows),
        "a-b": rng.choice(["x", "y", "z"], rows),
    })
    orders.loc[0, "Amount (EUR)"] = "oops"
    orders.to_csv(folder / "orders.csv", index=False)
    regions = ["Île-de-France", "Bretagne", "Provence-Alpes-Côte d'Azur"]
    pd.DataFrame({"Customer ID": np.arange(40), "région": [regions[i % 3] for i in range(40)]}).to_csv(
        folder / "customers.csv", index=False)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, dask_client):
    """The pipeline run once through the CLI on the session's cluster: its folder, store, run record and card."""
    folder = tmp_path_factory.mktemp("any-names")
    make_orders(folder)
    pipeline = write(folder / "pipeline.yaml", PIPELINE)
    store = folder / "store"
    runner = CliRunner()
    result = runner.invoke(app, ["run", str(pipeline), "--store", str(store),
                                 "--scheduler", dask_client.scheduler.address])
    assert result.exit_code == 0, result.output
    shown = runner.invoke(app, ["runs", "show", result.stdout.strip(), "--store", str(store), "--json"])
    record = json.loads(shown.stdout)
    card = json.loads(runner.invoke(app, ["model", "show", MODEL, "--store", str(store), "--json"]).stdout)
    return {"folder": folder, "store": store, "record": record, "card": card, "output": result.output,
            "scheduler": dask_client.scheduler.address}


def _serve_rows(trained) -> pd.DataFrame:
    split = trained["record"]["stages"]["split"]["outputs"][0]["key"]
    from orchestrator.artifacts.open import open_store

    rows = pd.read_parquet(open_store(str(trained["store"])).dataset_path(split) / "serve")
    return rows[NUMERIC + CATEGORICAL].reset_index(drop=True)


def test_a_pipeline_with_any_column_names_validates_joins_windows_trains_and_exports_with_parity(trained):
    record = trained["record"]
    assert record["status"] == "succeeded"
    assert "1,200 -> 1,199 rows, 1 quarantined" in trained["output"]
    assert record["stages"]["blend"]["joins"][0]["match_rate"] == 1.0
    assert record["stages"]["export"]["parity"]["passed"] is True
    assert record["stages"]["export"]["parity"]["rows"] == record["stages"]["export"]["reads"]["test"]["rows"] > 100
    assert record["stages"]["export"]["parity"]["label_mismatches"] == 0


def test_the_model_card_maps_every_original_name_to_a_valid_unique_onnx_name(trained):
    card = trained["card"]
    names = {item["name"]: item["onnx_name"] for item in card["inputs"]}
    assert list(names) == NUMERIC + CATEGORICAL
    assert names["Amount (EUR)"] == "amount_eur" and names["unit.price"] == "unit_price"
    assert names["Größe"] == "grosse" and names["région"] == "region" and names["a-b"] == "a_b"
    assert names["2nd try"] == "_2nd_try"
    assert all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", onnx) for onnx in names.values())
    assert len(set(names.values())) == len(names)
    assert set(card["reference_stats"]) == set(NUMERIC + CATEGORICAL)
    assert set(card["examples"]["inputs"][0]) == set(NUMERIC + CATEGORICAL)


def test_predict_and_the_server_take_the_original_names_and_drift_checks_count_the_captures_by_them(
        trained, tmp_path):
    rows = _serve_rows(trained)
    assert len(rows) > 20
    rows.to_csv(tmp_path / "rows.csv", index=False)
    result = CliRunner().invoke(app, ["predict", MODEL, "--input", str(tmp_path / "rows.csv"),
                                      "--output", str(tmp_path / "scored"), "--store", str(trained["store"]),
                                      "--scheduler", trained["scheduler"], "--range-policy", "flag"])
    assert result.exit_code == 0, result.output
    scored = pd.read_parquet(tmp_path / "scored")
    assert list(scored.columns[:len(NUMERIC + CATEGORICAL)]) == NUMERIC + CATEGORICAL
    assert len(scored) == len(rows)

    server = RunningServer([str(BIN / "dataops"), "serve", MODEL,
                            "--store", str(trained["store"]), "--range-policy", "flag",
                            "--capture-store", str(trained["store"]), "--capture-rate", "1.0"], free_port(),
                           tmp_path / "server.log")
    try:
        server.wait_ready(120)
        records = json.loads(rows.head(50).to_json(orient="records", force_ascii=False))
        status, answer = server.json("POST", f"/v2/models/{MODEL}/predict", {"records": records})
        assert status == 200, answer
        assert answer["labels"] == scored["prediction"].head(50).astype(int).tolist()

        status, refused = server.json("POST", f"/v2/models/{MODEL}/predict",
                                      {"records": [{**records[0], "Größe": "tall"}]})
        assert status == 400
        assert refused["error"] == "record 0, field 'Größe': expected a number or null (FP32), got \"tall\""

        status, metadata = server.json("GET", f"/v2/models/{MODEL}")
        assert status == 200
        listed = {item["parameters"]["column"]: item["name"] for item in metadata["inputs"]}
        assert listed["Amount (EUR)"] == "amount_eur" and listed["région"] == "region"
        assert set(listed) == set(NUMERIC + CATEGORICAL)

        tensors = [{"name": listed[name], "datatype": "FP32" if name in NUMERIC else "BYTES", "shape": [2, 1],
                    "data": [record[name] for record in records[:2]]}
                   for name in NUMERIC + CATEGORICAL]
        status, infer = server.json("POST", f"/v2/models/{MODEL}/infer", {"inputs": tensors})
        assert status == 200, infer
        assert next(o for o in infer["outputs"] if o["name"] == "label")["data"] == answer["labels"][:2]

        status, refused = server.json("POST", f"/v2/models/{MODEL}/infer",
                                      {"inputs": [{**tensors[0], "name": "Amount (EUR)"}, *tensors[1:]]})
        assert status == 400
        assert "'Amount (EUR)'" in refused["error"] and "'amount_eur'" in refused["error"]
        captured = len(records) + 2  # the records and the V2 request's two rows
        _wait_for_captures(trained["store"], captured, server)
    finally:
        server.stop()

    checked = CliRunner().invoke(app, ["drift", "check", MODEL, "--store", str(trained["store"]), "--json"])
    assert checked.exit_code in (0, 20), checked.output
    columns = {column["name"]: column for column in json.loads(checked.stdout)["result"]["columns"]}
    # Captured by the columns' names, as the reference profile names them: every captured row counts.
    assert {name: columns[name]["rows"] for name in NUMERIC + CATEGORICAL} == dict.fromkeys(NUMERIC + CATEGORICAL,
                                                                                          captured)


def _wait_for_captures(store, rows: int, server) -> None:
    """Until the server has written ``rows`` captured rows into the store (its writer runs in the background)."""
    captures = store / "captures" / MODEL
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if sum(len(path.read_bytes().splitlines()) for path in captures.rglob("*.jsonl")) >= rows:
            return
        time.sleep(0.3)
    raise AssertionError(f"{rows} rows not captured after 30 s:\n{server.log_text()}")


def test_a_misspelt_name_with_spaces_and_parentheses_is_reported_before_any_stage_runs(tmp_path):
    make_orders(tmp_path)
    pipeline = write(tmp_path / "pipeline.yaml",
                     PIPELINE.replace('"Double (EUR)": "`Amount (EUR)` * 2"', '"Double (EUR)": "`Amount (EURO)` * 2"'))
    store = tmp_path / "store"
    result = CliRunner().invoke(app, ["run", str(pipeline), "--store", str(store)])
    assert result.exit_code == 2, result.output
    line = next(n for n, text in enumerate(pipeline.read_text().splitlines(), 1) if "EURO" in text)
    assert (f"{pipeline}:{line}: field 'sources.orders.steps[1].derive.Double (EUR)': unknown column 'Amount (EURO)' "
            "(did you mean 'Amount (EUR)'?)") in result.stderr
    assert not (store / "cache").exists(), "no stage ran"
