import sys
import types
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli.main import app
from orchestrator.cli.serve import resolve_ref
from orchestrator.errors import ArtifactNotFound, DataopsError


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
