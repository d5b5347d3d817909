"""What the operator's machine keeps per inference endpoint: its file, SSH key, bearer token and deploy history."""

from __future__ import annotations

import json
import os
import secrets
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from orchestrator.clusters.state import ensure_ssh_key
from orchestrator.clusters.tls import write_atomically
from orchestrator.deploy.spec import EndpointSpec
from orchestrator.errors import EndpointNotFound


def endpoints_dir() -> Path:
    """Root of the per-endpoint state: ``DATAOPS_ENDPOINTS_DIR`` or ``~/.dataops/endpoints``."""
    return Path(os.environ.get("DATAOPS_ENDPOINTS_DIR", Path.home() / ".dataops" / "endpoints"))


@dataclass
class EndpointState:
    """The local record of one endpoint."""

    directory: Path

    @property
    def name(self) -> str:
        return self.directory.name

    @property
    def ssh_key(self) -> Path:
        return self.directory / "id_ed25519"

    @property
    def token_file(self) -> Path:
        return self.directory / "token"

    @property
    def record(self) -> Path:
        return self.directory / "endpoint.json"

    def exists(self) -> bool:
        return self.record.exists()

    def ensure_ssh_key(self) -> str:
        return ensure_ssh_key(self.ssh_key, f"dataops-endpoint-{self.name}")

    def ensure_token(self) -> str:
        """The bearer token clients present, created once per endpoint (mode 600, never printed)."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not self.token_file.exists():
            write_atomically(self.token_file, secrets.token_urlsafe(32).encode(), 0o600)
        return self.token_file.read_text().strip()

    def load(self) -> dict:
        if not self.exists():
            raise EndpointNotFound(f"no endpoint named {self.name!r} (looked in {self.directory})")
        return json.loads(self.record.read_text())

    def save(self, **fields) -> dict:
        """Merge ``fields`` into the record and write it atomically; return the record."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        record = {**(self.load() if self.exists() else {}), **fields}
        write_atomically(self.record, json.dumps(record, indent=2, sort_keys=True).encode(), 0o600)
        return record

    def spec(self) -> EndpointSpec:
        return EndpointSpec.model_validate(self.load()["spec"])

    def history(self) -> list[dict]:
        return self.load().get("history", []) if self.exists() else []

    def serving(self) -> dict | None:
        """The model version the endpoint serves (the last successful deploy), or None."""
        done = [entry for entry in self.history() if entry["status"] == "succeeded"]
        return done[-1] if done else None

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def endpoint_state(name: str) -> EndpointState:
    return EndpointState(endpoints_dir() / name)


def known_endpoints() -> list[EndpointState]:
    root = endpoints_dir()
    if not root.is_dir():
        return []
    return [EndpointState(d) for d in sorted(root.iterdir()) if (d / "endpoint.json").exists()]


def now() -> str:
    return datetime.now(timezone.utc).isoformat()
