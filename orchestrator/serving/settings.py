"""Server settings: one dataclass, passed to worker processes as JSON in an environment variable."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from orchestrator.serving.errors import ModelLoadError

SETTINGS_ENV = "DATAOPS_SERVING_SETTINGS"
TOKEN_ENV = "DATAOPS_SERVE_TOKEN"


@dataclass
class ServerSettings:
    """Everything the server is started with. Defaults are safe: loopback only, no plain HTTP elsewhere, no capture
    outside a folder."""

    model_folders: list[str] = field(default_factory=list)
    repository_dir: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    device: str = "cpu"
    intra_op_threads: int = 1
    # Natural micro-batching: requests that arrive together are scored together, and none waits for company.
    max_batch_rows: int = 32
    max_wait_ms: float = 0.0
    batch_threads: int = 1
    range_policy: str = "reject"
    capture_dir: str | None = None
    capture_rate: float = 0.0
    capture_batch_rows: int = 1000
    capture_flush_seconds: float = 5.0
    # "package.module:function" called with these settings, returning a CaptureWriter (e.g. one writing to the
    # project's artifact store); importable in every worker process. None: a folder writer on capture_dir.
    capture_writer: str | None = None
    capture_store: str | None = None
    # A file holding a signed folder URL (SignedUrlCaptureWriter): captures go there, with no credential here.
    capture_url_file: str | None = None
    token_file: str | None = None
    # HTTPS on the serving port (orchestrator.serving.tls): a certificate and its key. Without them the server
    # speaks plain HTTP on a loopback address only, unless insecure_http says to anywhere.
    tls_cert: str | None = None
    tls_key: str | None = None
    insecure_http: bool = False
    max_body_bytes: int = 16 * 1024 * 1024
    access_log: bool = True
    log_level: str = "info"

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "ServerSettings":
        return cls(**json.loads(text))

    @classmethod
    def from_environment(cls) -> "ServerSettings":
        text = os.environ.get(SETTINGS_ENV)
        return cls.from_json(text) if text else cls()


def read_token(settings: ServerSettings) -> str | None:
    """The bearer token: from ``token_file`` if set, else from ``DATAOPS_SERVE_TOKEN``; None disables auth.

    Raises:
        ModelLoadError: the token file is missing or empty (a server meant to be protected must not start open).
    """
    if settings.token_file:
        path = Path(settings.token_file)
        try:
            token = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ModelLoadError(f"token file {path}: cannot be read ({exc.strerror})") from exc
        if not token:
            raise ModelLoadError(f"token file {path} is empty")
        return token
    token = os.environ.get(TOKEN_ENV, "").strip()
    return token or None
