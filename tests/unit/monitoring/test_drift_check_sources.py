"""Where `dataops drift check` reads its window: a store's captures by day, a capture folder, the newest rows, a
scored dataset; the version an endpoint serves; and `endpoints show` giving that version's latest verdict."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from orchestrator.cli.main import app as dataops
from orchestrator.ml.score import score_partition
from orchestrator.serving.capture import FolderCaptureWriter, StoreCaptureWriter
from tests.support.tiny_models import (
    CATEGORICAL,
    NUMERIC,
    registered_profiled_model,
    synthetic_frame,
)

NOW = dt.datetime.now(dt.timezone.utc)
INPUTS = NUMERIC + CATEGORICAL


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A registered classifier with its reference profile, in a local store: (store, model folder, card)."""
    return registered_profiled_model(tmp_path_factory.mktemp("drift-sources"))


def captured_lines(folder, card, rows: pd.DataFrame, at: dt.datetime) -> bytes:
    """``rows`` as the server captures them: inputs, the label and the probabilities, at time ``at``."""
    scored = score_partition(rows, (folder / "model.onnx").read_bytes(), card, 1)
    lines = []
    for record in json.loads(scored.to_json(orient="records")):
        lines.append(json.dumps({
            "ts": at.isoformat(), "model": "tiny", "version": 1, "request_id": None,
            "inputs": {name: record[name] for name in INPUTS},
            "outputs": {"label": record["prediction"], "probabilities": [record["proba_0"], record["proba_1"]]},
        }))
    return ("\n".join(lines) + "\n").encode()


def batch_key(at: dt.datetime, sequence: int) -> str:
    return f"tiny/1/{at:%Y-%m-%d}/{at:%Y%m%dT%H%M%S%f}Z-7-{sequence:06d}.jsonl"


def check(*args: str):
    return CliRunner().invoke(dataops, ["drift", "check", *args])


def test_a_time_window_reads_only_the_batches_of_its_days_and_a_capture_folder_is_read_alike(model, tmp_path):
    store, folder, card = model
    rows, _ = synthetic_frame(400, 21)
    old = NOW - dt.timedelta(days=3)
    for writer in (StoreCaptureWriter(store, "captures"), FolderCaptureWriter(tmp_path / "captures")):
        writer.write(batch_key(old, 1), captured_lines(folder, card, rows, old))
        writer.write(batch_key(NOW, 2), captured_lines(folder, card, rows.iloc[:350], NOW))

    today = json.loads(check("tiny", "--store", str(store.root), "--window", "24h", "--json").stdout)
    back_then = json.loads(check("tiny", "--store", str(store.root), "--since", (old - dt.timedelta(hours=1))
                                 .isoformat(), "--until", (old + dt.timedelta(hours=1)).isoformat(), "--json").stdout)
    from_folder = json.loads(check("tiny", "--store", str(store.root), "--capture-dir", str(tmp_path / "captures"),
                                   "--json").stdout)

    assert today["lineage"]["captures"]["keys"] == [f"captures/{batch_key(NOW, 2)}"]
    assert today["window"]["rows"] == 350 and today["verdict"] == "no_drift"
    assert back_then["lineage"]["captures"]["keys"] == [f"captures/{batch_key(old, 1)}"]
    assert back_then["window"]["rows"] == 400
    assert from_folder["lineage"]["captures"] == {"location": str((tmp_path / "captures").resolve()),
                                                  "keys": [batch_key(NOW, 2)]}
    assert from_folder["result"] == today["result"]


def test_the_newest_rows_come_from_the_newest_batches(model, tmp_path):
    store, folder, card = model
    writer = FolderCaptureWriter(tmp_path / "captures")
    rows, _ = synthetic_frame(300, 22)
    for hours in (3, 2, 1):
        at = NOW - dt.timedelta(hours=hours)
        writer.write(batch_key(at, hours), captured_lines(folder, card, rows, at))

    record = json.loads(check("tiny", "--store", str(store.root), "--capture-dir", str(tmp_path / "captures"),
                              "--last-rows", "450", "--json").stdout)

    assert record["window"]["kind"] == "last_rows" and record["window"]["rows"] == 450
    assert record["lineage"]["captures"]["keys"] == sorted(batch_key(NOW - dt.timedelta(hours=h), h) for h in (2, 1))


def test_a_scored_dataset_is_checked_with_its_outputs_and_one_lacking_an_input_is_refused(model, tmp_path):
    store, folder, card = model
    rows, _ = synthetic_frame(500, 23)
    scored = score_partition(rows, (folder / "model.onnx").read_bytes(), card, 1)
    scored.to_parquet(tmp_path / "scored.parquet")
    rows.drop(columns=["carrier"]).to_csv(tmp_path / "raw.csv", index=False)

    record = json.loads(check("tiny", "--store", str(store.root), "--data", str(tmp_path / "scored.parquet"),
                              "--json").stdout)
    refused = check("tiny", "--store", str(store.root), "--data", str(tmp_path / "raw.csv"))

    assert record["window"] == {"kind": "data", "rows": 500, "location": str(tmp_path / "scored.parquet")}
    assert record["lineage"]["data"]["fingerprint"]
    checked = {c["name"] for c in record["result"]["columns"]}
    assert checked == set(INPUTS) | {"prediction", "proba_0", "proba_1"}
    assert refused.exit_code == 12 and "lacks the model input column(s) carrier" in refused.output


def test_an_endpoint_is_checked_on_the_version_it_serves_and_endpoints_show_gives_the_verdict(model, tmp_path,
                                                                                              monkeypatch):
    from orchestrator.deploy.state import endpoint_state

    store, folder, card = model
    monkeypatch.setenv("DATAOPS_ENDPOINTS_DIR", str(tmp_path / "endpoints"))
    endpoint_state("web").save(spec={}, outputs={"endpoint_urls": []}, store=store.uri, history=[
        {"deployed_at": "2026-05-01T00:00:00Z", "deployed_by": "ci", "model": "tiny", "version": 1,
         "status": "succeeded"}])
    rows, _ = synthetic_frame(400, 24)
    rows["dep_hour"] = rows["dep_hour"] + 4.0  # about 0.7 reference deviations
    writer = FolderCaptureWriter(tmp_path / "captures")
    writer.write(batch_key(NOW, 1), captured_lines(folder, card, rows, NOW))

    checked = check("--endpoint", "web", "--capture-dir", str(tmp_path / "captures"))
    shown = CliRunner().invoke(dataops, ["endpoints", "show", "web"])
    as_json = json.loads(CliRunner().invoke(dataops, ["endpoints", "show", "web", "--json"]).stdout)

    assert checked.exit_code == 20, checked.output
    assert "important feature(s) drifted: dep_hour" in checked.output
    assert shown.exit_code == 0, shown.output
    assert "Drift of tiny:1: drift, drifted: dep_hour" in shown.output
    assert as_json["drift"]["verdict"] == "drift" and "dep_hour" in as_json["drift"]["drifted"]


def test_an_endpoint_serving_another_model_than_named_is_refused(model, tmp_path, monkeypatch):
    from orchestrator.deploy.state import endpoint_state

    store, _, _ = model
    monkeypatch.setenv("DATAOPS_ENDPOINTS_DIR", str(tmp_path / "endpoints"))
    endpoint_state("web").save(spec={}, outputs={}, store=store.uri, history=[
        {"deployed_at": "2026-05-01T00:00:00Z", "deployed_by": "ci", "model": "tiny", "version": 1,
         "status": "succeeded"}])

    refused = check("other-model", "--endpoint", "web")

    assert refused.exit_code == 1 and "endpoint web serves tiny:1, not other-model" in refused.output
