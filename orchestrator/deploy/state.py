"""What the operator's machine keeps per inference endpoint: its file, SSH key, bearer token, TLS material (the CA
and each node's certificate, keys mode 0600) and deploy history."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from orchestrator.atomic import write_atomically
from orchestrator.clusters.state import ensure_ssh_key
from orchestrator.deploy.spec import EndpointSpec
from orchestrator.deploy.tls import CA_FILE
from orchestrator.errors import EndpointNotFound
from orchestrator.local_state import RECORD_MODE, LocalRecord, records_under, state_root


def endpoints_dir() -> Path:
    """Root of the per-endpoint state: ``DATAOPS_ENDPOINTS_DIR`` or ``~/.dataops/endpoints``."""
    return state_root("DATAOPS_ENDPOINTS_DIR", "endpoints")


@dataclass
class EndpointState(LocalRecord):
    """The local record of one endpoint."""

    record_file = "endpoint.json"
    kind = "endpoint"
    not_found = EndpointNotFound

    @property
    def ssh_key(self) -> Path:
        return self.directory / "id_ed25519"

    @property
    def token_file(self) -> Path:
        return self.directory / "token"

    @property
    def tls_dir(self) -> Path:
        """The endpoint's CA and node certificates (``orchestrator.deploy.tls``), mode 0700."""
        return self.directory / "tls"

    @property
    def ca_file(self) -> Path:
        """The CA certificate clients verify the endpoint's servers against (public)."""
        return self.tls_dir / CA_FILE

    def served_ca(self) -> Path | None:
        """The CA file clients verify the servers by, or None when the endpoint serves plain HTTP (an endpoint
        whose file turned ``insecure_http`` on keeps its old CA, which no server uses any more)."""
        insecure = self.exists() and self.load().get("spec", {}).get("insecure_http", False)
        return self.ca_file if self.ca_file.exists() and not insecure else None

    def ensure_ssh_key(self) -> str:
        return ensure_ssh_key(self.ssh_key, f"dataops-endpoint-{self.name}")

    def ensure_token(self) -> str:
        """The bearer token clients present, created once per endpoint (mode 600, never printed)."""
        self.ensure_directory()
        if not self.token_file.exists():
            write_atomically(self.token_file, secrets.token_urlsafe(32), RECORD_MODE)
        return self.token_file.read_text().strip()

    def load(self) -> dict:
        """Read the record; raise EndpointNotFound when there is none."""
        return self.read()

    def save(self, **fields) -> dict:
        """Merge ``fields`` into the record and write it atomically; return the record."""
        return self.merge(**fields)

    def spec(self) -> EndpointSpec:
        return EndpointSpec.model_validate(self.load()["spec"])

    def history(self) -> list[dict]:
        return self.load().get("history", []) if self.exists() else []

    def serving(self) -> dict | None:
        """The model version the endpoint serves (the last successful deploy), or None."""
        done = [entry for entry in self.history() if entry["status"] == "succeeded"]
        return done[-1] if done else None


def endpoint_state(name: str) -> EndpointState:
    return EndpointState(endpoints_dir() / name)


def known_endpoints() -> list[EndpointState]:
    return records_under(endpoints_dir(), EndpointState)


def now() -> str:
    return datetime.now(timezone.utc).isoformat()
