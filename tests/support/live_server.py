"""A real server process on a free loopback port, and how tests talk to it."""

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

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
