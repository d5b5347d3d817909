"""Plain records of what the cloud holds for dataops: Heat stack summaries and events, and the tagged resources
(key pairs, ports, floating IPs) a stack may leave behind, with the tags that name their owner."""

from __future__ import annotations

from dataclasses import dataclass, field

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
