"""What the runner use cases need from the cloud, as protocols: Heat stacks, key pairs and tagged ports (the
adapter of clusters, ``orchestrator.openstack.cluster_cloud``, implements them), and Keystone application
credentials (``orchestrator.openstack.app_credentials``). Unit tests give in-memory ones."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Protocol

# The records are the adapters'; re-exported because they are the words of these ports.
from orchestrator.openstack.app_credentials import CredentialSummary, IssuedCredential
from orchestrator.openstack.stacks import Leftover, StackEvent, StackSummary

__all__ = ["CredentialIssuer", "CredentialSummary", "IssuedCredential", "Leftover", "RunnerCloud", "StackEvent",
           "StackSummary"]


class RunnerCloud(Protocol):
    """Heat stacks and the resources a stack's owner creates beside it; every wait has a timeout, and a stack that
    fails (StackFailed) is a different error from one still in progress at the deadline (StackTimedOut)."""

    def create_stack(self, name: str, template: Path, environment_files: list[Path], parameters: dict,
                     tags: list[str]) -> None:
        """Start creating a stack (no rollback: the use case deletes a failed stack itself)."""

    def wait_stack(self, name: str, action: str, on_event: Callable[[StackEvent], None], timeout_s: float) -> None:
        """Wait for ``<action>_COMPLETE``, showing each new event."""

    def stack_outputs(self, name: str) -> dict:
        """The stack's outputs as {output_key: value}."""

    def find_stack(self, name: str) -> StackSummary | None:
        """The stack, or None when there is none."""

    def delete_stack(self, name: str, timeout_s: float) -> None:
        """Delete the stack and wait until it is gone; succeed if it does not exist."""

    def create_keypair(self, name: str, public_key: str, cluster: str) -> None:
        """Import a public key as a Nova key pair (kept if it exists)."""

    def list_tagged(self, tag_prefix: str, owner: str | None) -> list[Leftover]:
        """Ports tagged ``<tag_prefix><owner>`` and their floating IPs."""

    def delete_leftover(self, leftover: Leftover) -> None:
        """Delete one key pair, port or floating IP; succeed if it is already gone."""


class CredentialIssuer(Protocol):
    """Keystone application credentials of the operator's user."""

    def issue(self, name: str, *, description: str, roles: list[str], expires_at: datetime,
              access_rules: list[dict] | None) -> IssuedCredential:
        """Create a restricted, expiring credential; the only time its secret is returned."""

    def credentials(self, matches: Callable[[str], bool]) -> list[CredentialSummary]:
        """The credentials whose name ``matches``."""

    def revoke(self, credential_id: str) -> None:
        """Delete a credential (and the access rules only it used); succeed if it is gone."""

    def client_config(self, credential: IssuedCredential) -> dict:
        """The clouds.yaml entry that authenticates with ``credential``."""

    def check_object_store(self, credential: IssuedCredential, container: str) -> None:
        """Raise CloudError unless ``credential`` authenticates and Swift lets it reach ``container``."""
