import subprocess
import sys
import types
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli.main import app
from orchestrator.errors import ArtifactNotFound, DataopsError
from orchestrator.usecases.serve import STORE_CAPTURE_WRITER, ServeOptions, server_settings
from orchestrator.usecases.serve import resolve_model_folder as resolve_ref


def test_a_model_folder_path_is_served_as_is(model_folder):
    assert resolve_ref(str(model_folder), None) == Path(model_folder)


def test_a_missing_folder_path_is_reported_not_looked_up_in_the_registry():
    with pytest.raises(ArtifactNotFound, match="model folder ./nowhere does not exist"):
        resolve_ref("./nowhere", None)


def test_registry_references_go_through_the_registry_resolver(monkeypatch, tmp_path, model_folder):
    seen = []
    registry = types.ModuleType("orchestrator.registry")
    registry.resolve_model_ref = lambda store, ref: seen.append((store.uri if hasattr(store, "uri") else store, ref)) or model_folder
    monkeypatch.setitem(sys.modules, "orchestrator.registry", registry)
    for ref in ("flights-delay", "flights-delay:3", "flights-delay@production"):
        assert resolve_ref(ref, str(tmp_path / "store")) == Path(model_folder)
    assert [ref for _, ref in seen] == ["flights-delay", "flights-delay:3", "flights-delay@production"]


def test_registry_reference_without_a_registry_says_what_to_do(monkeypatch):
    monkeypatch.setitem(sys.modules, "orchestrator.registry", None)  # makes the import fail
    with pytest.raises(DataopsError, match="pass the path of a model folder instead"):
        resolve_ref("flights-delay", None)


def test_serve_command_reports_a_missing_folder_with_its_exit_code():
    result = CliRunner().invoke(app, ["serve", "./no-such-model"])
    assert result.exit_code == ArtifactNotFound.exit_code
    assert "Error: model folder ./no-such-model does not exist" in " ".join(result.output.split())


def test_serve_command_refuses_a_folder_without_model_card(tmp_path):
    result = CliRunner().invoke(app, ["serve", str(tmp_path), "--port", "1"])
    assert result.exit_code == 1
    output = " ".join(result.output.split())
    assert output.startswith("Error: ") and "no model card (expected model_card.json beside model.onnx)" in output


def test_a_server_capturing_to_a_store_gets_its_writer_from_the_use_case_without_the_cli(tmp_path, model_folder):
    settings = server_settings([str(model_folder)], ServeOptions(capture_rate=0.5, capture_store=str(tmp_path / "store")))
    assert settings.capture_writer == STORE_CAPTURE_WRITER == "orchestrator.usecases.serve:store_capture_writer"
    # A worker process builds the writer from the settings alone (they reach it as JSON).
    code = ("import sys; from orchestrator.serving.app import load_capture_writer;"
            "from orchestrator.serving.settings import ServerSettings;"
            "writer = load_capture_writer(ServerSettings.from_json(sys.argv[1]));"
            "print(type(writer).__name__, writer.prefix, *sorted(m for m in sys.modules if m.startswith('orchestrator.cli')))")
    out = subprocess.run([sys.executable, "-c", code, settings.to_json()], check=True, capture_output=True,
                         text=True).stdout.split()
    assert out == ["StoreCaptureWriter", "captures"], f"expected a store writer built without the CLI, got {out}"


def test_settings_resolve_folders_and_capture_nothing_without_a_rate(model_folder):
    settings = server_settings([str(model_folder)], ServeOptions(capture_rate=0.0, capture_dir=Path("captures")))
    assert settings.model_folders == [str(model_folder)]
    assert settings.capture_dir is None and settings.capture_writer is None


def test_serve_command_refuses_an_unknown_range_policy(model_folder):
    result = CliRunner().invoke(app, ["serve", str(model_folder), "--range-policy", "maybe"])
    assert result.exit_code == DataopsError.exit_code
    assert "Error: --range-policy must be reject or flag, got 'maybe'" in " ".join(result.output.split())
