import json
import threading
import time

import numpy as np

from orchestrator.artifacts.local import LocalStore
from orchestrator.serving.capture import CaptureSampler, FolderCaptureWriter, StoreCaptureWriter


def sample_arrays(n=2):
    feeds = {"dep_hour": np.arange(n, dtype=np.float32).reshape(n, 1),
             "carrier": np.array(["AA"] * n, dtype=object).reshape(n, 1)}
    results = {"label": np.zeros(n, dtype=np.int64), "probabilities": np.full((n, 2), 0.5, dtype=np.float32)}
    return feeds, results


def read_lines(root):
    return [json.loads(line) for path in sorted(root.rglob("*.jsonl")) for line in path.read_text().splitlines()]


def test_sampled_rows_are_written_as_json_lines_per_model_version(tmp_path):
    sampler = CaptureSampler(FolderCaptureWriter(tmp_path), rate=1.0, batch_rows=1000, flush_seconds=60)
    sampler.start()
    feeds, results = sample_arrays(3)
    assert sampler.offer("flights-delay", 2, "req-1", feeds, results, {"dep_hour": [2]})
    sampler.close()
    files = list(tmp_path.rglob("*.jsonl"))
    assert len(files) == 1 and files[0].relative_to(tmp_path).parts[:2] == ("flights-delay", "2")
    rows = read_lines(tmp_path)
    assert [r["inputs"]["dep_hour"] for r in rows] == [0.0, 1.0, 2.0]
    assert rows[0]["outputs"] == {"label": 0, "probabilities": [0.5, 0.5]} and rows[0]["request_id"] == "req-1"
    assert "out_of_range" not in rows[0] and rows[2]["out_of_range"] == ["dep_hour"]
    assert not list(tmp_path.rglob(".tmp-*")), "no temporary file may be left behind"


def test_batches_are_flushed_when_full_without_waiting_for_the_timer(tmp_path):
    written = []
    sampler = CaptureSampler(FolderCaptureWriter(tmp_path), rate=1.0, batch_rows=4, flush_seconds=60,
                             on_written=written.append)
    sampler.start()
    for _ in range(4):
        sampler.offer("m", 1, None, *sample_arrays(2), {})
    deadline = time.monotonic() + 5
    while sum(written) < 8 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sum(written) >= 8
    sampler.close()


def test_rate_zero_captures_nothing_and_rate_samples_a_share(tmp_path):
    off = CaptureSampler(FolderCaptureWriter(tmp_path / "off"), rate=0.0)
    off.start()
    assert not off.offer("m", 1, None, *sample_arrays(), {})
    sampler = CaptureSampler(FolderCaptureWriter(tmp_path / "on"), rate=0.25, max_queue=100000, seed=7)
    sampler.start()
    taken = sum(sampler.offer("m", 1, None, *sample_arrays(1), {}) for _ in range(4000))
    sampler.close()
    assert 800 < taken < 1200


def test_a_full_queue_drops_samples_instead_of_blocking_the_request(tmp_path):
    release = threading.Event()

    class SlowWriter:
        def write(self, key, data):
            release.wait(5)

    dropped = []
    sampler = CaptureSampler(SlowWriter(), rate=1.0, batch_rows=1, max_queue=2, on_drop=lambda: dropped.append(1))
    sampler.start()
    started = time.perf_counter()
    for _ in range(50):
        sampler.offer("m", 1, None, *sample_arrays(1), {})
    assert time.perf_counter() - started < 0.5
    assert dropped
    release.set()
    sampler.close()


def test_a_failing_writer_does_not_stop_the_capture_thread(tmp_path, caplog):
    calls = []

    class FlakyWriter:
        def write(self, key, data):
            calls.append(key)
            if len(calls) == 1:
                raise OSError("disk full")

    sampler = CaptureSampler(FlakyWriter(), rate=1.0, batch_rows=1)
    sampler.start()
    sampler.offer("m", 1, None, *sample_arrays(1), {})
    time.sleep(0.3)
    sampler.offer("m", 1, None, *sample_arrays(1), {})
    sampler.close()
    assert len(calls) == 2 and "could not be written" in caplog.text


def test_store_writer_publishes_batches_as_checksummed_blobs_of_an_artifact_store(tmp_path):
    store = LocalStore(tmp_path / "store")
    sampler = CaptureSampler(StoreCaptureWriter(store, "captures/serving"), rate=1.0)
    sampler.start()
    sampler.offer("flights-delay", 3, None, *sample_arrays(2), {})
    sampler.close()
    keys = list(store.list("captures/serving/flights-delay/3/"))
    assert len(keys) == 1
    assert len(store.get_bytes(keys[0]).splitlines()) == 2


def test_the_server_builds_a_pluggable_writer_named_in_its_settings(tmp_path, model_folder):
    from orchestrator.serving.app import build_app, load_capture_writer
    from orchestrator.serving.settings import ServerSettings

    settings = ServerSettings(model_folders=[str(model_folder)], capture_rate=0.5, capture_store=str(tmp_path / "store"),
                              capture_writer="orchestrator.usecases.serve:store_capture_writer")
    writer = load_capture_writer(settings)
    assert isinstance(writer, StoreCaptureWriter) and writer.store.uri.endswith("store")
    assert build_app(settings).service.capture.writer.__class__ is StoreCaptureWriter


def test_an_unknown_writer_plugin_is_a_clear_error(model_folder):
    import pytest

    from orchestrator.serving.app import build_app
    from orchestrator.serving.errors import ModelLoadError
    from orchestrator.serving.settings import ServerSettings

    settings = ServerSettings(model_folders=[str(model_folder)], capture_rate=0.5, capture_writer="no.such.module:f")
    with pytest.raises(ModelLoadError, match="capture writer 'no.such.module:f' cannot be created"):
        build_app(settings)
