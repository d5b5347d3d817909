"""SwiftStore against a real Swift (Keystone auth, SLO and TempURL middlewares)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from orchestrator.artifacts.store import MANIFEST, ArtifactStore
from orchestrator.artifacts.swift import SEGMENT_SUFFIX, SHA256_HEADER, SwiftStore
from orchestrator.errors import ArtifactError, ArtifactNotFound

pytestmark = [pytest.mark.openstack, pytest.mark.integration]

MIB = 1 << 20


@pytest.fixture()
def store(cloud, swift_container, tmp_path):
    """A store on a fresh container; the container and its segments are removed afterwards."""
    return SwiftStore(swift_container, "proj", conn=cloud, cache_dir=tmp_path / "cache",
                      segment_size=1 * MIB, segment_threshold=2 * MIB, workers=3)


def _random_file(path, size):
    path.write_bytes(os.urandom(size))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_swift_store_fulfils_the_artifact_store_protocol(store):
    assert isinstance(store, ArtifactStore)
    assert store.uri.startswith("swift://")


def test_small_blob_round_trip_lists_and_deletes(store, tmp_path):
    info = store.put_bytes("runs/r1/record.json", b'{"ok": true}')
    assert info.sha256 == hashlib.sha256(b'{"ok": true}').hexdigest() and info.size == 12
    assert store.get_bytes("runs/r1/record.json", sha256=info.sha256) == b'{"ok": true}'
    assert store.exists("runs/r1/record.json")
    store.put_bytes("runs2/other", b"x")
    assert list(store.list("runs")) == ["runs/r1/record.json"]
    assert list(store.list()) == ["runs/r1/record.json", "runs2/other"]
    store.delete("runs/r1/record.json")
    store.delete("runs/r1/record.json")
    assert not store.exists("runs/r1/record.json")
    with pytest.raises(ArtifactNotFound, match="runs/r1/record.json"):
        store.get_bytes("runs/r1/record.json")


def test_file_round_trip_below_the_segment_threshold_is_one_object(store, cloud, tmp_path):
    src = tmp_path / "model.onnx"
    digest = _random_file(src, MIB + 17)
    info = store.put_file("models/m1/model.onnx", src)
    assert info.sha256 == digest
    head = cloud.object_store.get_object_metadata("proj/models/m1/model.onnx", container=store.container)
    assert not head.is_static_large_object
    out = store.get_file("models/m1/model.onnx", tmp_path / "out" / "model.onnx", sha256=digest)
    assert out.read_bytes() == src.read_bytes()


def test_multi_segment_file_round_trips_as_a_static_large_object(store, cloud, tmp_path):
    src = tmp_path / "big.bin"
    digest = _random_file(src, 5 * MIB + 123)
    info = store.put_file("data/big.bin", src)
    assert info.sha256 == digest and info.size == 5 * MIB + 123
    response = cloud.object_store.request(f"{store.container}/proj/data/big.bin", "HEAD")
    assert response.headers["X-Static-Large-Object"].lower() == "true"
    assert response.headers[SHA256_HEADER] == digest
    segments = list(cloud.object_store.objects(store.container + SEGMENT_SUFFIX))
    assert len(segments) == 6
    out = store.get_file("data/big.bin", tmp_path / "big.out")
    assert hashlib.sha256(out.read_bytes()).hexdigest() == digest
    # Overwriting replaces the segments instead of leaking the old ones.
    digest = _random_file(src, 3 * MIB)
    assert store.put_file("data/big.bin", src).sha256 == digest
    assert len(list(cloud.object_store.objects(store.container + SEGMENT_SUFFIX))) == 3
    assert store.get_bytes("data/big.bin", sha256=digest) == src.read_bytes()
    store.delete("data/big.bin")
    assert not store.exists("data/big.bin")
    assert list(cloud.object_store.objects(store.container + SEGMENT_SUFFIX)) == []


def test_a_small_file_written_over_a_large_one_leaves_no_segment_behind(store, cloud, tmp_path):
    src = tmp_path / "big.bin"
    _random_file(src, 3 * MIB)
    store.put_file("data/model.bin", src)
    assert len(list(cloud.object_store.objects(store.container + SEGMENT_SUFFIX))) == 3
    store.put_bytes("data/model.bin", b"small now")
    assert list(cloud.object_store.objects(store.container + SEGMENT_SUFFIX)) == []
    assert store.get_bytes("data/model.bin") == b"small now"


def test_a_corrupted_segment_of_a_large_object_is_detected_on_download(store, cloud, tmp_path):
    src = tmp_path / "big.bin"
    _random_file(src, 3 * MIB)
    store.put_file("data/big.bin", src)
    segment = sorted(o.name for o in cloud.object_store.objects(store.container + SEGMENT_SUFFIX))[1]
    # Rot at rest in one segment: same size, other bytes.
    cloud.object_store.request(f"{store.container}{SEGMENT_SUFFIX}/{segment}", "PUT", data=os.urandom(MIB))
    with pytest.raises(ArtifactError, match="corrupted"):
        store.get_file("data/big.bin", tmp_path / "big.out")
    assert not (tmp_path / "big.out").exists()


def test_interrupted_large_upload_leaves_no_visible_artifact(store, cloud, tmp_path):
    src = tmp_path / "huge.bin"
    _random_file(src, 24 * MIB)
    # A real interruption: a separate process uploading one segment at a time is killed mid-upload.
    script = textwrap.dedent(f"""
        from orchestrator.artifacts.swift import SwiftStore
        store = SwiftStore({store.container!r}, "proj", cloud={os.environ.get("OS_CLOUD", "dataops-ci")!r},
                           segment_size=1 << 20, segment_threshold=2 << 20, workers=1)
        store.put_file("data/huge.bin", {str(src)!r})
    """)
    proc = subprocess.Popen([sys.executable, "-c", script])
    segments_container = store.container + SEGMENT_SUFFIX
    deadline = time.monotonic() + 120
    try:
        while not _count(cloud, segments_container) >= 2:
            assert proc.poll() is None, "the upload finished before it could be interrupted"
            assert time.monotonic() < deadline, "no segment was uploaded within 120 s"
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert not store.exists("data/huge.bin")
    assert list(store.list()) == []
    with pytest.raises(ArtifactNotFound):
        store.get_bytes("data/huge.bin")


def _count(cloud, container):
    response = cloud.object_store.request(container, "HEAD")
    return int(response.headers.get("X-Container-Object-Count", 0)) if response.status_code < 300 else 0


def test_corrupted_object_is_detected_on_download(store, cloud, tmp_path):
    info = store.put_bytes("a/b", b"hello world")
    # Rot at rest: other bytes under the same name, still carrying the original sha256.
    cloud.object_store.request(
        f"{store.container}/proj/a/b", "PUT", data=b"hello w0rld", headers={SHA256_HEADER: info.sha256}
    )
    with pytest.raises(ArtifactError, match="corrupted"):
        store.get_bytes("a/b")
    with pytest.raises(ArtifactError, match="corrupted"):
        store.get_file("a/b", tmp_path / "b")
    assert not (tmp_path / "b").exists()


def test_expected_checksum_mismatch_is_reported(store):
    store.put_bytes("a/c", b"content")
    with pytest.raises(ArtifactError, match="expected"):
        store.get_bytes("a/c", sha256="0" * 64)


def test_dataset_is_invisible_until_its_manifest_is_written(store, tmp_path):
    folder = tmp_path / "ds"
    folder.mkdir()
    (folder / "part-0.parquet").write_bytes(b"x" * 1000)
    (folder / "sub").mkdir()
    (folder / "sub" / "part-1.parquet").write_bytes(os.urandom(3 * MIB))
    # Files without a manifest, as an interrupted put_dataset leaves them.
    store.put_file("cache/k1/part-0.parquet", folder / "part-0.parquet")
    assert not store.exists("cache/k1")
    with pytest.raises(ArtifactNotFound, match="cache/k1"):
        store.dataset_path("cache/k1")
    info = store.put_dataset("cache/k1", folder)
    assert store.exists("cache/k1")
    local = store.dataset_path("cache/k1", verify=True)
    assert (local / "sub" / "part-1.parquet").read_bytes() == (folder / "sub" / "part-1.parquet").read_bytes()
    assert json.loads((local / MANIFEST).read_text())["files"].keys() == {"part-0.parquet", "sub/part-1.parquet"}
    assert store.put_dataset("cache/k1", folder).sha256 == info.sha256
    store.delete("cache/k1")
    assert not store.exists("cache/k1")
    assert list(store.list("cache")) == []


def test_containers_are_private_to_their_project(store, cloud, other_cloud):
    store.put_bytes("secret/model.onnx", b"weights")
    url = f"{cloud.object_store.get_endpoint()}/{store.container}/proj/secret/model.onnx"
    assert other_cloud.session.get(url, raise_exc=False).status_code == 403
    assert requests.get(url, timeout=30).status_code == 401
    other = SwiftStore(store.container, "proj", conn=other_cloud)
    assert not other.exists("secret/model.onnx")  # the same name in the other project is another container


def test_temp_url_shares_one_artifact_without_credentials_until_it_expires(store):
    store.put_bytes("models/m1/model.onnx", b"onnx bytes")
    store.put_bytes("models/m1/other", b"private")
    url = store.temp_url("models/m1/model.onnx", expires_in=60)
    response = requests.get(url, timeout=30)
    assert response.status_code == 200 and response.content == b"onnx bytes"
    assert requests.get(url.replace("model.onnx", "other"), timeout=30).status_code == 401
    expired = store.temp_url("models/m1/model.onnx", expires_in=-1)
    assert requests.get(expired, timeout=30).status_code == 401
    with pytest.raises(ArtifactNotFound):
        store.temp_url("models/none", expires_in=60)


def test_stores_signing_their_first_urls_at_once_agree_on_one_key_and_every_url_works(cloud, swift_container,
                                                                                       tmp_path):
    # As schedule runners do on their first slot: separate processes, each its own store on one container.
    SwiftStore(swift_container, conn=cloud).put_bytes("sources/events.csv", b"a,b\n1,2\n")
    stores = [SwiftStore(swift_container, conn=cloud, cache_dir=tmp_path / str(n)) for n in range(6)]
    at_once = threading.Barrier(len(stores))

    def sign(store: SwiftStore) -> str:
        at_once.wait()
        return store.temp_url("sources/events.csv", expires_in=60, check=False)

    with ThreadPoolExecutor(len(stores)) as pool:
        urls = list(pool.map(sign, stores))
    assert [requests.get(url, timeout=30).status_code for url in urls] == [200] * len(stores)
    assert list(stores[0].list()) == ["sources/events.csv"], "the key's own object is no artifact"
    with pytest.raises(ArtifactError, match="container's own objects"):
        stores[0].get_bytes(".dataops/temp-url-key")
