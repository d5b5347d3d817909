"""What the cluster use cases need from the cloud, as a protocol; ``orchestrator.openstack`` implements it with
openstacksdk, the unit tests with an in-memory cloud."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

CLUSTER_TAG_PREFIX = "dataops-cluster="


def cluster_tag(name: str) -> str:
    """The tag every resource of cluster ``name`` carries."""
    return f"{CLUSTER_TAG_PREFIX}{name}"


@dataclass(frozen=True)
class StackEvent:
    """One Heat event, shown as it happens."""

    resource: str
    status: str
    reason: str = ""


@dataclass(frozen=True)
class StackSummary:
    """A cluster's stack as listed by the cloud."""

    name: str
    status: str
    tags: tuple[str, ...] = ()
    created_at: str = ""


@dataclass(frozen=True)
class Leftover:
    """A cloud resource tagged with a cluster (floating IP, port, key pair, application credential)."""

    kind: str
    id: str
    cluster: str
    extra: dict = field(default_factory=dict, compare=False)


class ClusterCloud(Protocol):
    """Cloud operations behind the cluster use cases; every wait has a timeout and raises CloudError on failure."""

    def create_stack(
        self, name: str, template: Path, environment_files: list[Path], parameters: dict, tags: list[str]
    ) -> None:
        """Start creating a stack (no rollback: the use case deletes a failed stack itself)."""

    def update_stack(self, name: str, template: Path, environment_files: list[Path], parameters: dict) -> None:
        """Start updating a stack's parameters."""

    def wait_stack(self, name: str, action: str, on_event: Callable[[StackEvent], None], timeout_s: float) -> None:
        """Wait for ``<action>_COMPLETE``; raise StackFailed naming the failing resource and its reason."""

    def stack_outputs(self, name: str) -> dict:
        """Return the stack's outputs as {output_key: value}."""

    def find_stack(self, name: str) -> StackSummary | None:
        """Return the stack, or None when there is none."""

    def list_stacks(self, tag: str) -> list[StackSummary]:
        """Return the stacks carrying ``tag``."""

    def delete_stack(self, name: str, timeout_s: float) -> None:
        """Delete the stack and wait until it is gone; succeed if it does not exist."""

    def create_keypair(self, name: str, public_key: str, cluster: str) -> None:
        """Import a public key as a Nova key pair."""

    def list_tagged(self, tag_prefix: str, owner: str | None) -> list[Leftover]:
        """Ports tagged ``<tag_prefix><owner>`` (any owner when None) and their floating IPs."""

    def list_leftovers(self, cluster: str | None) -> list[Leftover]:
        """Resources tagged with ``cluster`` (any dataops cluster when None) that still exist."""

    def delete_leftover(self, leftover: Leftover) -> None:
        """Delete one leftover; succeed if it is already gone."""
