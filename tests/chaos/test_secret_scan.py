"""The secret scan run at the end of every test session: a secret planted in a tmp folder is found, by file and byte
offset, in every form it may be written in, and reported by kind and hash, never by value; a clean folder gives
nothing; files that are credentials by purpose are skipped; the control plane's secrets are read from its files, and
the tokens of the `dataops` commands the tests start from the file those commands write (tested against Keystone in
``tests/integration/openstack/test_subprocess_tokens_scanned.py``); a hit fails the session."""

from __future__ import annotations

import hashlib
import json
import secrets
import urllib.parse
from types import SimpleNamespace

import pytest

from tests.support import secret_scan
from tests.support.secret_scan import Secret, check_session, control_plane_secrets, scan

pytestmark = pytest.mark.chaos


@pytest.fixture
def planted():
    """A secret no other test knows: it is not remembered, so the session-end scan does not look for it."""
    return Secret("bearer token", "planted-" + secrets.token_urlsafe(24))


def run_record(secret: str = "") -> str:
    return json.dumps({"run_id": "20260101-000000-0", "status": "failed", "error": f"auth failed {secret}".strip()})


def test_a_secret_planted_in_a_run_record_is_found_at_its_offset(tmp_path, planted):
    text = run_record(planted.value)
    (tmp_path / "runs" / "r1").mkdir(parents=True)
    (tmp_path / "runs" / "r1" / "record.json").write_text(text)
    result = scan([tmp_path], [planted])
    assert [(hit.path, hit.offset, hit.kind) for hit in result.hits] == [
        (str(tmp_path / "runs" / "r1" / "record.json"), text.index(planted.value), "bearer token")]
    assert (result.files, result.bytes) == (1, len(text))


def test_a_clean_folder_gives_no_hit(tmp_path, planted):
    (tmp_path / "record.json").write_text(run_record())
    (tmp_path / "model.onnx").write_bytes(bytes(range(256)) * 100)
    result = scan([tmp_path], [planted])
    assert result.hits == [] and result.files == 2


def test_a_hit_is_reported_by_kind_and_hash_never_by_value(tmp_path, planted):
    (tmp_path / "server.log").write_text(f"GET /v2/models Authorization: Bearer {planted.value}\n")
    (hit,) = scan([tmp_path], [planted]).hits
    assert planted.value not in str(hit)
    assert f"server.log:{len('GET /v2/models Authorization: Bearer ')}: bearer token" in str(hit)
    assert hashlib.sha256(planted.value.encode()).hexdigest()[:12] in str(hit)


def test_url_quoted_and_json_escaped_forms_are_found(tmp_path):
    secret = Secret("cloud password (dataops-ci)", 'pa/ss+wo"rd-0123')
    (tmp_path / "access.log").write_text(f"POST /auth?password={urllib.parse.quote(secret.value, safe='')}\n")
    (tmp_path / "card.json").write_text(json.dumps({"note": secret.value}))
    assert sorted(hit.path.rsplit("/", 1)[1] for hit in scan([tmp_path], [secret]).hits) == ["access.log", "card.json"]


def test_a_secret_across_two_read_chunks_is_found_once(tmp_path, planted, monkeypatch):
    monkeypatch.setattr(secret_scan, "CHUNK", 64)
    data = b"x" * 50 + planted.value.encode() + b"y" * 200
    (tmp_path / "capture.jsonl").write_bytes(data)
    assert [hit.offset for hit in scan([tmp_path], [planted]).hits] == [50]


def test_files_holding_a_secret_by_purpose_and_installed_packages_are_skipped(tmp_path, planted):
    (tmp_path / "clouds.yaml").write_text(f"clouds: {{ci: {{auth: {{password: {planted.value}}}}}}}\n")
    (tmp_path / "token").write_text(planted.value)
    (tmp_path / "venv" / "lib" / "site-packages").mkdir(parents=True)
    (tmp_path / "venv" / "lib" / "site-packages" / "mod.py").write_text(f"X = {planted.value!r}\n")
    (tmp_path / "stdout").write_text(f"TASK [write credential] ok: {planted.value}\n")
    result = scan([tmp_path], [planted])
    assert [hit.path for hit in result.hits] == [str(tmp_path / "stdout")]
    assert result.skipped == 3


def test_the_control_plane_secrets_come_from_its_secrets_env_and_clouds_yaml(tmp_path):
    (tmp_path / "secrets.env").write_text("# generated\nDATAOPS_CP_ADMIN_PASSWORD=admin-pw-123456\nEMPTY=\n")
    (tmp_path / "clouds.yaml").write_text(
        "clouds:\n  ci:\n    auth: {auth_url: 'http://127.0.0.42/identity', username: u, password: user-pw-654321}\n"
        "  runner:\n    auth: {application_credential_id: abc, application_credential_secret: app-secret-987}\n")
    assert {(s.kind, s.value) for s in control_plane_secrets(tmp_path)} == {
        ("control-plane secret DATAOPS_CP_ADMIN_PASSWORD", "admin-pw-123456"),
        ("cloud password (ci)", "user-pw-654321"),
        ("cloud application_credential_secret (runner)", "app-secret-987"),
    }


def test_a_remembered_secret_is_among_those_the_session_looks_for():
    minted = "minted-" + secrets.token_urlsafe(24)  # written nowhere
    secret_scan.remember_secret(minted, "application-credential secret")
    assert Secret("application-credential secret", minted) in secret_scan.session_secrets()


def test_a_hit_fails_the_session_and_prints_where_but_not_what(tmp_path, planted, monkeypatch):
    (tmp_path / "heartbeat.json").write_text(planted.value)
    monkeypatch.setattr(secret_scan, "session_secrets", lambda: [planted])
    monkeypatch.setattr(secret_scan, "session_places", lambda basetemp: [basetemp])
    monkeypatch.setattr(secret_scan.chaos_table, "recorded", lambda: [])  # no row for this planted case
    lines: list[str] = []
    session = SimpleNamespace(
        exitstatus=0,
        config=SimpleNamespace(_tmp_path_factory=SimpleNamespace(getbasetemp=lambda: tmp_path),
                               pluginmanager=SimpleNamespace(get_plugin=lambda name: SimpleNamespace(
                                   write_line=lines.append))))
    result = check_session(session)
    assert session.exitstatus == 1 and len(result.hits) == 1
    assert any(f"{tmp_path / 'heartbeat.json'}:0: bearer token" in line for line in lines), lines
    assert not any(planted.value in line for line in lines)

