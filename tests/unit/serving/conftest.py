import pytest

from support.tiny_models import build_model_folder

from orchestrator.serving.model import load_model_folder


@pytest.fixture(scope="session")
def model_folder(tmp_path_factory):
    return build_model_folder(tmp_path_factory.mktemp("models") / "flights-delay-1")


@pytest.fixture(scope="session")
def model(model_folder):
    return load_model_folder(model_folder)
