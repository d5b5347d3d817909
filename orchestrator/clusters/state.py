"""What the operator's machine keeps per cluster: the cluster file, its SSH key, its TLS material, its clock."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from orchestrator.clusters.spec import ClusterSpec
from orchestrator.clusters.tls import write_atomically as _atomic_write
from orchestrator.errors import ClusterNotFound


def clusters_dir() -> Path:
    """Root of the per-cluster state: ``DATAOPS_CLUSTERS_DIR`` or ``~/.dataops/clusters``."""
    return Path(os.environ.get("DATAOPS_CLUSTERS_DIR", Path.home() / ".dataops" / "clusters"))


@dataclass
class ClusterState:
    """The local record of one cluster."""

    directory: Path

    @property
    def name(self) -> str:
        return self.directory.name

    @property
    def ssh_key(self) -> Path:
        return self.directory / "id_ed25519"

    @property
    def tls_dir(self) -> Path:
        return self.directory / "tls"

    @property
    def record(self) -> Path:
        return self.directory / "cluster.json"

    def exists(self) -> bool:
        return self.record.exists()

    def ensure_ssh_key(self) -> str:
        """Create the cluster's SSH key pair unless present; return the OpenSSH public key."""
        return ensure_ssh_key(self.ssh_key, f"dataops-{self.name}")

    def save(self, spec: ClusterSpec, **fields) -> None:
        """Write the cluster's spec and bookkeeping fields (created_at, last_used, outputs) atomically."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        previous = self.load_record() if self.exists() else {}
        record = {**previous, **fields, "spec": spec.model_dump(mode="json")}
        record.setdefault("created_at", datetime.now(timezone.utc).isoformat())
        _atomic_write(self.record, json.dumps(record, indent=2, sort_keys=True).encode(), 0o600)

    def load_record(self) -> dict:
        """Read the record; raise ClusterNotFound when there is none."""
        if not self.exists():
            raise ClusterNotFound(f"no cluster named {self.name!r} (looked in {self.directory})")
        return json.loads(self.record.read_text())

    def load_spec(self) -> ClusterSpec:
        return ClusterSpec.model_validate(self.load_record()["spec"])

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def ensure_ssh_key(path: Path, comment: str) -> str:
    """Create an ed25519 key pair at ``path`` (and ``path.pub``) unless present; return the OpenSSH public key."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    public = path.with_suffix(".pub")
    if not path.exists():
        key = ed25519.Ed25519PrivateKey.generate()
        private_bytes = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        )
        public_bytes = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        _atomic_write(path, private_bytes, 0o600)
        _atomic_write(public, public_bytes + f" {comment}\n".encode(), 0o644)
    return public.read_text().strip()


def cluster_state(name: str) -> ClusterState:
    """The state of cluster ``name`` (which may not exist yet)."""
    return ClusterState(clusters_dir() / name)


def known_clusters() -> list[ClusterState]:
    """Every cluster recorded on this machine."""
    root = clusters_dir()
    if not root.is_dir():
        return []
    return [ClusterState(d) for d in sorted(root.iterdir()) if (d / "cluster.json").exists()]
