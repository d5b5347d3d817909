"""Reads through signed URLs by aiohttp (what Dask's readers use, through fsspec) follow the object client's retry
policy and deadlines: server errors, stalled answers and bodies that break off are fetched again, a lasting failure
is a CloudError that keeps the URL's signature out of its message.

A real HTTP server on loopback answers from a script: a status, and how much of the body it sends.
"""

from __future__ import annotations

import asyncio
import http.server
import threading
import time

import aiohttp
import pytest

from orchestrator.artifacts import object_client
from orchestrator.artifacts.object_client import signed_read_session_options
from orchestrator.errors import CloudError

BODY = b"partition bytes " * 64


class ScriptedSwift(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    script: list = []
    served: list = []

    def do_GET(self):
        status, sent = type(self).script.pop(0) if type(self).script else (200, len(BODY))
        type(self).served.append(status)
        if status == "stall":
            time.sleep(1.5)
            status = 200
        self.send_response(status)
        self.send_header("Content-Length", str(len(BODY)))  # the true length, even when less is sent
        if sent < len(BODY):
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(BODY[:sent])

    def log_message(self, *args):
        pass


@pytest.fixture
def url(monkeypatch):
    monkeypatch.setattr(object_client.ObjectClient, "pause_s", lambda self, attempt, retry_after=None: 0.0)
    ScriptedSwift.script, ScriptedSwift.served = [], []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ScriptedSwift)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    yield f"http://127.0.0.1:{port}/v1/AUTH_x/c/p/part.0.parquet?temp_url_sig=s3cr3t&temp_url_expires=1"
    server.shutdown()
    server.server_close()


def fetch(url: str) -> bytes:
    async def get() -> bytes:
        async with aiohttp.ClientSession(**signed_read_session_options(silence_s=0.5)) as session:
            async with session.get(url) as response:
                response.raise_for_status()
                return await response.read()

    return asyncio.run(get())


def test_server_errors_are_retried_until_the_read_succeeds(url):
    ScriptedSwift.script = [(503, 0), (500, 0)]
    assert fetch(url) == BODY
    assert ScriptedSwift.served == [503, 500, 200]


def test_a_body_that_breaks_off_is_fetched_again(url):
    ScriptedSwift.script = [(200, 100)]
    assert fetch(url) == BODY
    assert ScriptedSwift.served == [200, 200]


def test_an_answer_stalled_past_the_deadline_is_asked_for_again(url):
    ScriptedSwift.script = [("stall", len(BODY))]
    assert fetch(url) == BODY
    assert ScriptedSwift.served == ["stall", 200]


def test_a_lasting_failure_is_a_cloud_error_without_the_signature(url):
    ScriptedSwift.script = [(503, 0)] * 5
    with pytest.raises(CloudError, match=r"GET http://127\.0\.0\.1:\d+/v1/AUTH_x/c/p/part\.0\.parquet failed 5 times, "
                                         r"last: HTTP 503") as failure:
        fetch(url)
    assert "s3cr3t" not in str(failure.value) and "temp_url_sig" not in str(failure.value)


def test_a_refusal_is_handed_back_at_once(url):
    ScriptedSwift.script = [(401, 0)]
    with pytest.raises(aiohttp.ClientResponseError):
        fetch(url)
    assert ScriptedSwift.served == [401]
