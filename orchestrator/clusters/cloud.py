"""What the cluster use cases need from the cloud, as a protocol; ``orchestrator.openstack`` implements it with
openstacksdk, the unit tests with an in-memory cloud."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

# The records are the adapter's; they are re-exported here because they are the words of this port.
from orchestrator.openstack.stacks import CLUSTER_TAG_PREFIX, Leftover, StackEvent, StackSummary, cluster_tag

__all__ = ["CLUSTER_TAG_PREFIX", "ClusterCloud", "Leftover", "StackEvent", "StackSummary", "cluster_tag"]


class ClusterCloud(Protocol):
    """Cloud operations behind the cluster use cases; every wait has a timeout, and a stack that fails is a different
    error (StackFailed) from a stack still in progress at the deadline (StackTimedOut); both are CloudErrors."""

    def create_stack(
        self, name: str, template: Path, environment_files: list[Path], parameters: dict, tags: list[str]
    ) -> None:
        """Start creating a stack (no rollback: the use case deletes a failed stack itself)."""

    def update_stack(self, name: str, template: Path, environment_files: list[Path], parameters: dict) -> None:
        """Start updating a stack's parameters."""

    def wait_stack(self, name: str, action: str, on_event: Callable[[StackEvent], None], timeout_s: float) -> None:
        """Wait for ``<action>_COMPLETE``, showing each new event.

        Raises:
            StackFailed: The stack reached ``<action>_FAILED``; the message names the failed resource and its reason.
            StackTimedOut: The stack was still in progress after ``timeout_s`` seconds.
        """

    def stack_outputs(self, name: str) -> dict:
        """Return the stack's outputs as {output_key: value}."""

    def find_stack(self, name: str) -> StackSummary | None:
        """Return the stack, or None when there is none."""

    def list_stacks(self, tag: str) -> list[StackSummary]:
        """Return the stacks carrying ``tag``."""

    def delete_stack(self, name: str, timeout_s: float) -> None:
        """Delete the stack and wait until it is gone; succeed if it does not exist.

        Raises:
            StackFailed: The stack reached ``DELETE_FAILED``.
            StackTimedOut: The stack was still being deleted after ``timeout_s`` seconds.
        """

    def create_keypair(self, name: str, public_key: str, cluster: str) -> None:
        """Import a public key as a Nova key pair."""

    def list_tagged(self, tag_prefix: str, owner: str | None) -> list[Leftover]:
        """Ports tagged ``<tag_prefix><owner>`` (any owner when None) and their floating IPs."""

    def list_leftovers(self, cluster: str | None) -> list[Leftover]:
        """Resources tagged with ``cluster`` (any dataops cluster when None) that still exist."""

    def delete_leftover(self, leftover: Leftover) -> None:
        """Delete one leftover; succeed if it is already gone."""
