"""Sources come from local paths, http(s) URLs and file:// URLs, in CSV, Parquet and JSON lines."""

import http.server
import threading
from functools import partial

import pytest

from orchestrator.pipeline.runner import run_pipeline
from orchestrator.pipeline.spec import load_pipeline

pytestmark = pytest.mark.integration


@pytest.fixture
def http_folder(tmp_path):
    """Serve tmp_path over http on 127.0.0.1."""
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_a_source_can_be_read_over_http_and_another_from_a_file_url(shop, tmp_path, store, dask_client, http_folder):
    path = shop()
    text = path.read_text().replace("location: events.csv", f"location: {http_folder}/events.csv")
    text = text.replace("location: customers.jsonl", f"location: file://{tmp_path}/customers.jsonl")
    path.write_text(text)
    record = run_pipeline(load_pipeline(path), store, dask_client).record
    assert record["stages"]["ingest.events"]["rows_out"] == 1997
    assert record["stages"]["ingest.customers"]["rows_out"] == 50
