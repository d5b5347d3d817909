"""`dataops serve` resolves registry references (name, name:VERSION, name@STAGE) through the model registry."""

import pytest
import tritonclient.http as triton
from support.live_server import BIN, RunningServer, free_port
from test_v2_protocol import ROWS, triton_inputs

from orchestrator.artifacts.local import LocalStore
from orchestrator.registry import ModelRegistry

pytestmark = pytest.mark.integration


def test_registered_versions_and_stages_are_served_by_reference(models, tmp_path):
    store_path = tmp_path / "store"
    registry = ModelRegistry(LocalStore(store_path))
    first, _ = registry.register(models["v1"], "flights-delay")
    second, _ = registry.register(models["v2"], "flights-delay")
    registry.promote(f"flights-delay:{first}", "production")
    server = RunningServer([str(BIN / "dataops"), "serve", "flights-delay@production", f"flights-delay:{second}",
                            "--store", str(store_path), "--capture-rate", "0"], free_port(), tmp_path / "server.log")
    try:
        server.wait_ready()
        with triton.InferenceServerClient(server.url) as client:
            assert client.is_model_ready("flights-delay", str(first)) and client.is_model_ready("flights-delay", str(second))
            for version in (first, second):
                response = client.infer("flights-delay", triton_inputs(ROWS, True), model_version=str(version))
                assert response.get_response()["model_version"] == str(version)
    finally:
        server.stop()
