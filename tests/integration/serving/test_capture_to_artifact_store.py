"""`dataops serve --capture-store` writes sampled captures as blobs of the project's artifact store."""

import json

import pytest
from support.live_server import BIN, RunningServer, free_port
from support.tiny_models import valid_row

from orchestrator.artifacts.local import LocalStore

pytestmark = pytest.mark.integration


def test_captures_land_in_the_artifact_store_under_captures(models, tmp_path):
    store_path = tmp_path / "store"
    server = RunningServer([str(BIN / "dataops"), "serve", str(models["v1"]), "--capture-store", str(store_path),
                            "--capture-rate", "1.0"], free_port(), tmp_path / "server.log")
    try:
        server.wait_ready()
        status, _ = server.json("POST", "/v2/models/flights-delay/predict", {"records": [valid_row(), valid_row()]})
        assert status == 200
    finally:
        server.stop()  # stopping flushes what the writer still holds
    store = LocalStore(store_path)
    keys = list(store.list("captures/flights-delay/1/"))
    assert len(keys) == 1, server.log_text()
    rows = [json.loads(line) for line in store.get_bytes(keys[0]).splitlines()]
    assert [r["inputs"]["carrier"] for r in rows] == ["AA", "AA"]
