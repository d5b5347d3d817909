"""What the operator's machine keeps per cluster: the cluster file, its SSH key, its TLS material, its clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from orchestrator.atomic import write_atomically
from orchestrator.clusters.spec import ClusterSpec
from orchestrator.errors import ClusterNotFound
from orchestrator.local_state import FOLDER_MODE, LocalRecord, records_under, state_root


def clusters_dir() -> Path:
    """Root of the per-cluster state: ``DATAOPS_CLUSTERS_DIR`` or ``~/.dataops/clusters``."""
    return state_root("DATAOPS_CLUSTERS_DIR", "clusters")


@dataclass
class ClusterState(LocalRecord):
    """The local record of one cluster."""

    record_file = "cluster.json"
    kind = "cluster"
    not_found = ClusterNotFound

    @property
    def ssh_key(self) -> Path:
        return self.directory / "id_ed25519"

    @property
    def tls_dir(self) -> Path:
        return self.directory / "tls"

    def ensure_ssh_key(self) -> str:
        """Create the cluster's SSH key pair unless present; return the OpenSSH public key."""
        return ensure_ssh_key(self.ssh_key, f"dataops-{self.name}")

    def save(self, spec: ClusterSpec, **fields) -> None:
        """Write the cluster's spec and bookkeeping fields (created_at, last_used, outputs) atomically."""
        previous = self.read() if self.exists() else {}
        record = {**previous, **fields, "spec": spec.model_dump(mode="json")}
        record.setdefault("created_at", datetime.now(timezone.utc).isoformat())
        self.write(record)

    def load_record(self) -> dict:
        """Read the record; raise ClusterNotFound when there is none."""
        return self.read()

    def load_spec(self) -> ClusterSpec:
        return ClusterSpec.model_validate(self.load_record()["spec"])


def ensure_ssh_key(path: Path, comment: str) -> str:
    """Create an ed25519 key pair at ``path`` (and ``path.pub``) unless present; return the OpenSSH public key."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=FOLDER_MODE)
    public = path.with_suffix(".pub")
    if not path.exists():
        key = ed25519.Ed25519PrivateKey.generate()
        private_bytes = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        )
        public_bytes = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        write_atomically(path, private_bytes, 0o600)
        write_atomically(public, public_bytes + f" {comment}\n".encode(), 0o644)
    return public.read_text().strip()


def cluster_state(name: str) -> ClusterState:
    """The state of cluster ``name`` (which may not exist yet)."""
    return ClusterState(clusters_dir() / name)


def known_clusters() -> list[ClusterState]:
    """Every cluster recorded on this machine."""
    return records_under(clusters_dir(), ClusterState)
