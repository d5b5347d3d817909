"""Batch scoring keeps the server's input contract: a row is scored, flagged or refused exactly as the inference
server answers it sent alone to /predict, with the server's message, under either range policy.

The oracle is the server's own ASGI app, driven in this process (no socket): the same code `dataops serve` runs.
"""

from __future__ import annotations

import asyncio
import json
import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from orchestrator.ml.score import load_card, score_partition
from orchestrator.serving.app import build_app
from orchestrator.serving.settings import ServerSettings


def _post(app, path: str, payload: dict) -> tuple[int, dict]:
    """One request through the ASGI app, as uvicorn hands it over."""
    body = json.dumps(payload).encode()
    scope = {"type": "http", "method": "POST", "path": path, "headers": [(b"content-type", b"application/json")],
             "query_string": b"", "client": ("127.0.0.1", 1)}
    sent = []

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, json.loads(b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body"))


def _names(value) -> list[str]:
    """An ``out_of_range`` cell as a list (a row with nothing out of range holds a missing value)."""
    return [] if value is None or value is pd.NA else json.loads(value)


@pytest.fixture(scope="module")
def model(exported_models, tmp_path_factory):
    """The exported model, its card saying that ``dep_hour`` is never missing (as imputation "none" writes it)."""
    folder = tmp_path_factory.mktemp("contract") / "flights-delay"
    shutil.copytree(exported_models["hgb"]["dir"], folder)
    card = load_card(folder)
    next(item for item in card["inputs"] if item["name"] == "dep_hour")["nullable"] = False
    (folder / "model_card.json").write_text(json.dumps(card))
    return folder, card, (folder / "model.onnx").read_bytes()


def _server(folder, policy: str):
    app = build_app(ServerSettings(model_folders=[str(folder)], range_policy=policy, access_log=False))
    for name in app.repository.names:
        app.repository.load(name)
    return app, app.repository.names[0]


def awkward_rows(card: dict) -> pd.DataFrame:
    """In-range rows, and one of each thing the server refuses or flags."""
    bounds = {item["name"]: item for item in card["inputs"]}
    return pd.DataFrame({
        "dep_hour": pd.array([9, 99, 12, 14, 15, None, 7, int(bounds["dep_hour"]["max"])], dtype="Int64"),
        "distance": pd.array([500.0, 700.0, 800.0, None, 300.0, 400.0, -50.0, bounds["distance"]["max"]],
                             dtype="Float64"),
        "carrier": pd.array(["AA", "UA", "ZZ", "DL", None, "B6", "AA", "UA"], dtype="string[pyarrow]"),
    })


@pytest.mark.parametrize("policy", ["reject", "flag"])
def test_every_row_gets_the_servers_verdict_and_message(model, policy):
    folder, card, model_bytes = model
    rows = awkward_rows(card)
    scored = score_partition(rows, model_bytes, card, 1, policy)
    app, name = _server(folder, policy)
    for position, record in enumerate(json.loads(rows.to_json(orient="records"))):
        status, answer = _post(app, f"/v2/models/{name}/predict", {"records": [record]})
        row = scored.iloc[position]
        if status == 400:
            assert row["refused"] == answer["error"], position
            assert pd.isna(row["prediction"]), position
        else:
            assert status == 200 and pd.isna(row["refused"]), (position, answer)
            assert row["prediction"] == answer["labels"][0], position
            np.testing.assert_allclose([row["proba_0"], row["proba_1"]], answer["probabilities"][0], atol=1e-6)
            if policy == "flag":
                expected = sorted(answer.get("out_of_range", {}))
                assert _names(row["out_of_range"]) == expected


def test_reject_refuses_what_is_outside_the_training_data_and_scores_the_rest(model):
    folder, card, model_bytes = model
    scored = score_partition(awkward_rows(card), model_bytes, card, 1, "reject")
    refused = scored["refused"].tolist()
    assert "training range" in refused[1] and "'dep_hour'" in refused[1]
    assert "training categories" in refused[2] and "'ZZ'" in refused[2]
    assert "got null" in refused[5], "a missing value the training data never had"
    assert "training range" in refused[6]
    assert [pd.isna(message) for message in refused] == [True, False, False, True, True, False, False, True], \
        "a missing distance (seen in training), a missing carrier (its stand-in) and the maxima are scored"
    assert scored["prediction"].isna().tolist() == [pd.notna(message) for message in refused]
    assert "out_of_range" not in scored


def test_flag_scores_out_of_range_rows_and_names_their_columns(model):
    folder, card, model_bytes = model
    scored = score_partition(awkward_rows(card), model_bytes, card, 1, "flag")
    flagged = [_names(names) for names in scored["out_of_range"]]
    assert flagged[1] == ["dep_hour"] and flagged[2] == ["carrier"] and flagged[6] == ["distance"]
    assert flagged[0] == [] and flagged[7] == []
    assert pd.notna(scored["refused"]).tolist() == [False] * 5 + [True] + [False] * 2, \
        "a null where the card forbids it is refused under either policy"


def test_a_column_holding_no_value_at_all_is_judged_row_by_row(model):
    folder, card, model_bytes = model
    rows = awkward_rows(card).iloc[[0, 4]].reset_index(drop=True)
    rows["distance"] = pd.Series([None, None], dtype=pd.ArrowDtype(pa.null()))
    rows["carrier"] = pd.Series([None, None], dtype=pd.ArrowDtype(pa.null()))
    scored = score_partition(rows, model_bytes, card, 1, "reject")
    assert scored["refused"].isna().all(), "missing distances and carriers are what the card takes"
    assert scored["prediction"].notna().all()


def test_without_a_policy_every_row_is_scored_as_before(model):
    folder, card, model_bytes = model
    rows = awkward_rows(card).drop(index=5)
    scored = score_partition(rows, model_bytes, card, 1)
    assert "refused" not in scored and scored["prediction"].dtype == "int64"
    under_flag = score_partition(rows, model_bytes, card, 1, "flag")
    assert (under_flag["prediction"].astype("int64").to_numpy() == scored["prediction"].to_numpy()).all()
