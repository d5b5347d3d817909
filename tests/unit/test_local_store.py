"""The local artifact store publishes whole objects or nothing, and detects corruption."""

import pytest

from orchestrator.artifacts.local import LocalStore
from orchestrator.errors import ArtifactError, ArtifactNotFound


def test_blob_round_trip_returns_its_checksum(tmp_path):
    store = LocalStore(tmp_path / "store")
    info = store.put_bytes("runs/r1/record.json", b"{}")
    assert store.get_bytes("runs/r1/record.json", sha256=info.sha256) == b"{}"
    assert list(store.list("runs")) == ["runs/r1/record.json"]


def test_corrupted_blob_is_detected(tmp_path):
    store = LocalStore(tmp_path / "store")
    info = store.put_bytes("a/b", b"hello")
    (tmp_path / "store" / "a" / "b").write_bytes(b"hellO")
    with pytest.raises(ArtifactError, match="corrupted"):
        store.get_bytes("a/b", sha256=info.sha256)


def test_dataset_is_invisible_until_its_manifest_is_written(tmp_path):
    store = LocalStore(tmp_path / "store")
    folder = store.scratch_dir()
    (folder / "part-0.parquet").write_bytes(b"x" * 10)
    assert not store.exists("cache/k1")
    store.put_dataset("cache/k1", folder)
    assert store.exists("cache/k1")
    path = store.dataset_path("cache/k1", verify=True)
    (path / "part-0.parquet").write_bytes(b"y" * 10)
    with pytest.raises(ArtifactError, match="part-0.parquet"):
        store.dataset_path("cache/k1", verify=True)


def test_missing_artifact_names_the_key_and_store(tmp_path):
    store = LocalStore(tmp_path / "store")
    with pytest.raises(ArtifactNotFound, match="nope"):
        store.get_bytes("nope")


def test_delete_twice_is_fine(tmp_path):
    store = LocalStore(tmp_path / "store")
    store.put_bytes("x", b"1")
    store.delete("x")
    store.delete("x")
    assert not store.exists("x")
