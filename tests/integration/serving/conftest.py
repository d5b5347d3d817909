"""Real servers on free loopback ports, serving model folders the tests build themselves."""

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "unit" / "serving"))
from tiny_models import build_model_folder  # noqa: E402

TOKEN = "s3cret-token-for-tests-0123456789"
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RunningServer:
    def __init__(self, command: list[str], port: int, log_path: Path, env: dict | None = None):
        self.port = port
        self.url = f"127.0.0.1:{port}"
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.process = subprocess.Popen(command + ["--port", str(port)], stdout=self._log, stderr=subprocess.STDOUT,
                                        env={**os.environ, **(env or {})})

    def wait_ready(self, timeout=60.0) -> "RunningServer":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited with {self.process.returncode}:\n{self.log_path.read_text()}")
            try:
                if self.request("GET", "/v2/health/ready")[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"server not ready after {timeout}s:\n{self.log_path.read_text()}")

    def request(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, response.read(), dict(response.getheaders())
        finally:
            conn.close()

    def json(self, method, path, payload=None, headers=None):
        status, body, _ = self.request(method, path, json.dumps(payload).encode() if payload is not None else None,
                                       {"Content-Type": "application/json", **(headers or {})})
        return status, json.loads(body) if body else None

    def log_text(self) -> str:
        self._log.flush()
        return self.log_path.read_text()

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


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
