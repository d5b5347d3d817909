"""Real servers on free loopback ports, serving model folders the tests build themselves."""

import sys

import pytest

from support.live_server import BIN, TOKEN, RunningServer, free_port, loopback_tls
from support.tiny_models import build_model_folder


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("serving-models")
    return {
        "v1": build_model_folder(root / "flights-delay-1", "flights-delay", 1, seed=0),
        "v2": build_model_folder(root / "flights-delay-2", "flights-delay", 2, seed=1),
        "other": build_model_folder(root / "carrier-delay-1", "carrier-delay", 1, seed=2),
        "late": build_model_folder(root / "late-arrival-1", "late-arrival", 1, seed=3),
    }


@pytest.fixture(scope="session")
def server(models, tmp_path_factory):
    """`dataops serve` with two versions of one model and another model; captures everything."""
    work = tmp_path_factory.mktemp("server")
    (work / "repository").mkdir()
    running = RunningServer(
        [str(BIN / "dataops"), "serve", str(models["v1"]), str(models["v2"]), str(models["other"]),
         "--repository-dir", str(work / "repository"), "--capture-dir", str(work / "captures"),
         "--capture-rate", "1.0"],
        free_port(), work / "server.log")
    running.work = work
    try:
        yield running.wait_ready()
    finally:
        running.stop()


@pytest.fixture(scope="session")
def guarded_server(models, tmp_path_factory):
    """The standalone entry point with a bearer token, the flag policy, micro-batching and a small body limit."""
    work = tmp_path_factory.mktemp("guarded")
    token_file = work / "token"
    token_file.write_text(TOKEN + "\n")
    running = RunningServer(
        [sys.executable, "-m", "orchestrator.serving", str(models["v1"]), "--token-file", str(token_file),
         "--range-policy", "flag", "--max-batch-rows", "32", "--max-wait-ms", "2", "--max-body-bytes", "4096"],
        free_port(), work / "server.log")
    try:
        yield running.wait_ready()
    finally:
        running.stop()


@pytest.fixture(scope="session")
def tls_server(models, tmp_path_factory):
    """The standalone entry point as an inference node runs it: HTTPS with a certificate of its own CA, a token."""
    work = tmp_path_factory.mktemp("tls")
    token_file = work / "token"
    token_file.write_text(TOKEN + "\n")
    running = RunningServer(
        [sys.executable, "-m", "orchestrator.serving", str(models["v1"]), "--token-file", str(token_file)],
        free_port(), work / "server.log", tls=loopback_tls(work / "tls"))
    try:
        yield running.wait_ready()
    finally:
        running.stop()
