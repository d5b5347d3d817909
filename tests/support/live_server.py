"""A real server process on a free loopback port, and how tests talk to it (plain HTTP, or HTTPS verified against
a CA made the way an endpoint's is)."""

import http.client
import json
import os
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

from tests.support.secret_scan import remember_secret

TOKEN = "s3cret-token-for-tests-0123456789"
remember_secret(TOKEN, "bearer token")
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def loopback_tls(directory: Path):
    """A CA and a server certificate for 127.0.0.1 and localhost, made by the endpoints' own code.

    Returns:
        The CA, certificate and key paths (``orchestrator.deploy.tls.ServerCertificate``).
    """
    from orchestrator.deploy import tls

    tls.ensure_endpoint_ca(directory, "tests")
    return tls.issue_server_certificate(directory, "loopback", ["localhost"], ["127.0.0.1"])


class RunningServer:
    """A server started with ``command`` (``--port`` is added). Given ``tls`` (a :func:`loopback_tls`), it is told
    to serve HTTPS and every request of the test verifies it against that CA."""

    def __init__(self, command: list[str], port: int, log_path: Path, env: dict | None = None, tls=None):
        self.port = port
        self.url = f"127.0.0.1:{port}"
        self.tls = tls
        self.context = ssl.create_default_context(cafile=str(tls.ca)) if tls else None
        self.base_url = f"{'https' if tls else 'http'}://{self.url}"
        if tls:
            command = command + ["--tls-cert", str(tls.cert), "--tls-key", str(tls.key)]
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

    def connection(self, timeout=30) -> http.client.HTTPConnection:
        """A connection to the server: HTTPS verified against the test CA when it serves TLS."""
        if self.context is not None:
            return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout, context=self.context)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None):
        conn = self.connection()
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
