"""An inference node with no cloud credential writes its captures through a URL signed for one folder: each batch
is PUT under the folder's path with the signature's query unchanged, a failing PUT is retried, a refused one is not,
no error ever shows the URL, and a new URL written to the file by a later deploy is used without a restart."""

from __future__ import annotations

import http.server
import threading

import pytest

from orchestrator.serving.app import build_app
from orchestrator.serving.capture import SignedUrlCaptureWriter
from orchestrator.serving.errors import ModelLoadError
from orchestrator.serving.settings import ServerSettings

SIGNED = "temp_url_prefix=registry%2Fcaptures%2F&temp_url_sig=5ec2e7&temp_url_expires=1900000000"


class ObjectStoreDouble(http.server.BaseHTTPRequestHandler):
    """Answers PUTs on loopback with the status the test queues, recording each request."""

    def do_PUT(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.seen.append((self.path, body))
        status = self.server.statuses.pop(0) if self.server.statuses else 201
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture()
def object_store():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ObjectStoreDouble)
    server.seen, server.statuses = [], []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


def _url_file(tmp_path, server, folder="/v1/AUTH_p/c/registry/captures"):
    path = tmp_path / "capture-url"
    path.write_text(f"http://127.0.0.1:{server.server_port}{folder}?{SIGNED}\n")
    return path


def test_each_batch_is_put_under_the_signed_folder_with_the_signature(tmp_path, object_store):
    writer = SignedUrlCaptureWriter(_url_file(tmp_path, object_store))
    writer.write("flights-delay/1/2026-12-01/20261201T100000000000Z-node-1-000001.jsonl", b'{"a": 1}\n')
    path, body = object_store.seen[0]
    assert path == ("/v1/AUTH_p/c/registry/captures/flights-delay/1/2026-12-01/"
                    f"20261201T100000000000Z-node-1-000001.jsonl?{SIGNED}")
    assert body == b'{"a": 1}\n'


def test_a_failing_put_is_retried_and_a_refused_one_is_not_and_no_error_shows_the_url(tmp_path, object_store):
    naps = []
    writer = SignedUrlCaptureWriter(_url_file(tmp_path, object_store), sleep=naps.append)
    object_store.statuses[:] = [503, 201]
    writer.write("m/1/2026-12-01/a.jsonl", b"x\n")
    assert len(object_store.seen) == 2 and naps == [1.0]

    object_store.statuses[:] = [401]
    with pytest.raises(OSError) as refused:
        writer.write("m/1/2026-12-01/b.jsonl", b"x\n")
    assert "401" in str(refused.value) and "temp_url_sig" not in str(refused.value)
    assert len(object_store.seen) == 3, "an expired or revoked signature is not retried"


def test_a_new_url_written_by_a_later_deploy_is_used_for_the_next_batch(tmp_path, object_store):
    url_file = _url_file(tmp_path, object_store)
    writer = SignedUrlCaptureWriter(url_file)
    writer.write("m/1/d/a.jsonl", b"x\n")
    _url_file(tmp_path, object_store, folder="/v1/AUTH_p/c/other/captures")
    writer.write("m/1/d/b.jsonl", b"x\n")
    assert [path.split("?")[0] for path, _ in object_store.seen] == [
        "/v1/AUTH_p/c/registry/captures/m/1/d/a.jsonl", "/v1/AUTH_p/c/other/captures/m/1/d/b.jsonl"]


def test_a_server_told_to_capture_through_a_missing_or_unsigned_url_does_not_start(tmp_path, model_folder):
    for content in (None, "https://swift.example/v1/AUTH_p/c/captures"):
        path = tmp_path / "capture-url"
        path.unlink(missing_ok=True)
        if content is not None:
            path.write_text(content)
        settings = ServerSettings(model_folders=[str(model_folder)], capture_rate=1.0, capture_url_file=str(path))
        with pytest.raises(ModelLoadError, match="capture URL file") as refused:
            build_app(settings)
        assert "swift.example" not in str(refused.value)
