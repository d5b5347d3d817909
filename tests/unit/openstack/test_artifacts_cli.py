"""``dataops artifacts``: list keys of any store; sharing explains that it needs Swift."""

from typer.testing import CliRunner

from orchestrator.artifacts.local import LocalStore
from orchestrator.cli.main import app


def test_artifacts_list_prints_the_keys_under_a_prefix(tmp_path):
    store = LocalStore(tmp_path / "store")
    store.put_bytes("runs/r1/record.json", b"{}")
    store.put_bytes("models/m1/model.onnx", b"x")
    result = CliRunner().invoke(app, ["artifacts", "list", "runs", "--store", str(tmp_path / "store")])
    assert result.exit_code == 0, result.output
    assert result.stdout == "runs/r1/record.json\n"


def test_share_on_a_local_store_fails_saying_it_needs_swift(tmp_path):
    result = CliRunner().invoke(app, ["artifacts", "share", "k", "--store", str(tmp_path / "store")])
    assert result.exit_code == 1
    assert "sharing needs a swift:// store" in result.output


def test_share_with_a_bad_duration_names_the_expected_format(tmp_path):
    result = CliRunner().invoke(app, ["artifacts", "share", "k", "--expires", "soon", "--store", str(tmp_path)])
    assert result.exit_code == 1
    assert "invalid duration 'soon'" in result.output
