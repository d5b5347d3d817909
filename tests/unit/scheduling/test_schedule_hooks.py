"""The failure hook fires with the slot's summary: POSTed as JSON to a real HTTP server on loopback, or on the
standard input of a command; a webhook's secret path never reaches a record."""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from orchestrator.scheduling.tick import SlotRunFailed


@pytest.fixture
def webhook():
    """A webhook receiver on 127.0.0.1; yields (base URL, received JSON bodies with their paths)."""
    received: list[tuple[str, dict]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, json.loads(body)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", received
    server.shutdown()
    server.server_close()


def test_a_failed_slot_posts_its_summary_to_the_webhook(keep, tick_at, recorder, webhook, at):
    url, received = webhook
    state = keep(on_failure={"webhook": f"{url}/hooks/s3cr3t-token"}, pause_after_failures=1)
    recorder.failures = [SlotRunFailed("stage 'train' failed: ValueError: no rows", run_id="run-x")]
    tick_at("01:00:10")
    assert len(received) == 1
    path, summary = received[0]
    assert path == "/hooks/s3cr3t-token"
    assert summary["event"] == "slot_failed" and summary["schedule"] == "hourly"
    assert summary["slot"] == "2027-06-01T01:00:00Z" and summary["status"] == "failed"
    assert summary["run_ids"] == ["run-x"] and summary["attempts"] == 1
    assert "no rows" in summary["reason"]
    assert summary["paused"] is True and summary["consecutive_failures"] == 1
    record = state.record(at("01:00:00"))
    assert record.hook["ok"] is True
    assert "s3cr3t" not in json.dumps(record.to_dict()), "the webhook's secret path must not be recorded"


def test_an_unreachable_webhook_is_recorded_and_the_tick_goes_on(keep, tick_at, recorder, at):
    state = keep(on_failure={"webhook": "http://127.0.0.1:9/hooks/s3cr3t"})
    recorder.failures = [RuntimeError("boom")]
    report = tick_at("01:00:10")
    assert [o.action for o in report.outcomes] == ["failed"] and report.errors == {}
    hook = state.record(at("01:00:00")).hook
    assert hook["ok"] is False and "unreachable" in hook["detail"] and "s3cr3t" not in hook["detail"]


def test_a_command_hook_reads_the_summary_on_its_standard_input(keep, tick_at, recorder, tmp_path, at):
    written = tmp_path / "summary.json"
    copy = f"import sys, pathlib; pathlib.Path({str(written)!r}).write_bytes(sys.stdin.buffer.read())"
    state = keep(on_failure={"command": [sys.executable, "-c", copy]})
    recorder.failures = [RuntimeError("worker died")]
    tick_at("01:00:10")
    summary = json.loads(written.read_text())
    assert summary["schedule"] == "hourly" and summary["status"] == "failed" and "worker died" in summary["reason"]
    assert state.record(at("01:00:00")).hook == {"ok": True, "detail": f"command {sys.executable} exited 0"}


def test_the_hook_fires_only_once_retries_are_spent(keep, tick_at, recorder, tmp_path):
    written = tmp_path / "calls"
    append = (f"import pathlib; p = pathlib.Path({str(written)!r}); "
              "p.write_text(p.read_text() + 'x' if p.exists() else 'x')")
    keep(on_failure={"command": [sys.executable, "-c", append]}, retries={"max": 1, "backoff": "1m"})
    recorder.failures = [RuntimeError("boom")] * 2
    tick_at("01:00:10")
    assert not written.exists()
    tick_at("01:01:30")
    assert written.read_text() == "x"
