"""The one atomic write: the target holds the old content or the new one, never half; a failed write leaves no
temporary file behind; a key is created with its final, private mode."""

from __future__ import annotations

import os

import pytest

from orchestrator.atomic import atomic_file, write_atomically


def test_bytes_and_text_replace_the_file(tmp_path):
    path = tmp_path / "record.json"
    write_atomically(path, b"old")
    write_atomically(path, "new \u00e9")
    assert path.read_text() == "new \u00e9"
    assert os.listdir(tmp_path) == ["record.json"], "no temporary file may be left beside the target"


def test_a_key_gets_exactly_the_mode_asked_for_whatever_the_umask(tmp_path):
    previous = os.umask(0o000)
    try:
        write_atomically(tmp_path / "id_ed25519", b"secret", 0o600)
        write_atomically(tmp_path / "ca.pem", b"public", 0o644)
    finally:
        os.umask(previous)
    assert (tmp_path / "id_ed25519").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "ca.pem").stat().st_mode & 0o777 == 0o644


def test_without_a_mode_the_file_is_created_as_open_would_create_it(tmp_path):
    previous = os.umask(0o022)
    try:
        write_atomically(tmp_path / "model.onnx", b"x")
    finally:
        os.umask(previous)
    assert (tmp_path / "model.onnx").stat().st_mode & 0o777 == 0o644


def test_a_write_that_fails_midway_keeps_the_old_content_and_leaves_nothing_behind(tmp_path):
    path = tmp_path / "cluster.json"
    path.write_text("old")
    with pytest.raises(RuntimeError, match="disk gone"):
        with atomic_file(path) as handle:
            handle.write(b"half of the ne")
            raise RuntimeError("disk gone")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["cluster.json"]


def test_the_temporary_file_can_live_in_a_staging_folder_that_listings_skip(tmp_path):
    staging, target = tmp_path / ".staging", tmp_path / "runs" / "r1.json"
    staging.mkdir()
    target.parent.mkdir()
    with atomic_file(target, temp_dir=staging) as handle:
        handle.write(b"{}")
        assert os.listdir(target.parent) == [], "the key's folder shows nothing until the write is complete"
        assert len(os.listdir(staging)) == 1
    assert target.read_bytes() == b"{}" and os.listdir(staging) == []
