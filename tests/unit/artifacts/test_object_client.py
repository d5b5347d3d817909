"""The one object-store client: what it retries, what it refuses, and the checksums every upload carries.

A real HTTP server on loopback plays Swift's part for signed URLs, answering from a script of statuses.
"""

import hashlib
import http.server
import threading

import pytest

from orchestrator.artifacts.object_client import SHA256_HEADER, ObjectClient, SignedURLTransport
from orchestrator.errors import ArtifactError, CloudError


class ScriptedSwift(http.server.BaseHTTPRequestHandler):
    script: list = []
    received: list = []

    def do_PUT(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append({"path": self.path, "headers": self.headers, "body": body})
        status, etag = type(self).script.pop(0)
        self.send_response(status)
        if etag == "md5":
            etag = hashlib.md5(body).hexdigest()
        if etag:
            self.send_header("Etag", etag)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def swift():
    ScriptedSwift.script, ScriptedSwift.received = [], []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ScriptedSwift)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1/AUTH_x/c/p/part.0.parquet?temp_url_sig=s&temp_url_expires=1"
    server.shutdown()


def client() -> ObjectClient:
    return ObjectClient(SignedURLTransport(timeout_s=5), retries=3, backoff_s=0.01)


def test_an_upload_carries_its_md5_as_etag_and_its_sha256_as_metadata(swift):
    ScriptedSwift.script = [(201, "md5")]
    sha256, size = client().put_bytes(swift, b"rows")
    sent = ScriptedSwift.received[0]["headers"]
    assert sent["ETag"] == hashlib.md5(b"rows").hexdigest()
    assert sent[SHA256_HEADER] == sha256 == hashlib.sha256(b"rows").hexdigest() and size == 4


def test_server_errors_and_a_body_damaged_on_the_way_are_tried_again(swift):
    ScriptedSwift.script = [(503, None), (422, None), (201, "md5")]
    client().put_bytes(swift, b"rows")
    assert len(ScriptedSwift.received) == 3
    assert {r["body"] for r in ScriptedSwift.received} == {b"rows"}


def test_a_refusal_is_final_and_names_the_url_without_its_signature(swift):
    ScriptedSwift.script = [(401, None)]
    with pytest.raises(CloudError, match=r"PUT .*/part\.0\.parquet answered 401") as failure:
        client().put_bytes(swift, b"rows")
    assert "temp_url_sig" not in str(failure.value) and len(ScriptedSwift.received) == 1


def test_retries_stop_after_the_policys_attempts(swift):
    ScriptedSwift.script = [(500, None)] * 3
    with pytest.raises(CloudError, match="failed 3 times, last: HTTP 500"):
        client().put_bytes(swift, b"rows")


def test_an_etag_other_than_the_md5_sent_is_an_error(swift):
    ScriptedSwift.script = [(201, "0" * 32)]
    with pytest.raises(ArtifactError, match="stored ETag 0{32}, sent MD5"):
        client().put_bytes(swift, b"rows")


def test_no_answer_at_all_is_tried_again_then_reported():
    closed = "http://127.0.0.1:9/v1/AUTH_x/c/o?temp_url_sig=s"  # the discard port: nothing listens there
    with pytest.raises(CloudError, match="failed 3 times"):
        client().put_bytes(closed, b"rows")
