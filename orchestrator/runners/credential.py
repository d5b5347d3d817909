"""What a runner's Keystone application credential may do: its name (one per issue, so a rotation overlaps the old
one until the VM uses the new), its expiry, its roles, and the access rules that limit it to the runner's containers.

The credential is restricted (it cannot create other credentials or trusts) and carries only the roles asked for.
Access rules limit it further, to the object-store paths of the store's container, its segments container and the
containers the runs read; a cloud's Swift enforces them only when its auth_token middleware knows its own
``service_type`` (without it, such a token is refused outright, which the runner's creation checks).
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, timedelta

from orchestrator.runners.spec import RunnerSpec

NAME_PREFIX = "dataops-runner-"
# Swift's static large objects keep their segments in a container named after the object's (swift_objects.py).
SEGMENT_SUFFIX = "_segments"
OBJECT_STORE_METHODS = ("GET", "HEAD", "PUT", "POST", "DELETE")
_STAMP = "%Y%m%dt%H%M%S"


def credential_name(runner: str, now: datetime) -> str:
    """The name of a credential issued to ``runner`` at ``now``: names are unique per Keystone user, and a random
    part keeps two issued within one second (a rotation right after a creation) apart."""
    return f"{NAME_PREFIX}{runner}-{now.astimezone(UTC).strftime(_STAMP)}-{secrets.token_hex(2)}"


def is_credential_of(name: str, runner: str) -> bool:
    """Whether ``name`` is a credential issued to ``runner`` (and not to a runner whose name starts alike)."""
    return re.fullmatch(rf"{re.escape(NAME_PREFIX + runner)}-\d{{8}}t\d{{6}}-[0-9a-f]{{4}}", name) is not None


def expires_at(spec: RunnerSpec, now: datetime) -> datetime:
    """When a credential issued now for ``spec`` expires (whole seconds, UTC)."""
    return (now.astimezone(UTC) + timedelta(seconds=spec.credential_ttl_s)).replace(microsecond=0)


def containers(spec: RunnerSpec, shared: tuple[str, ...] = ()) -> list[str]:
    """The containers the runner's credential reaches: the store's, the runs' own, the ``shared`` ones (the cloud's
    records of clusters and endpoints), and their segments containers."""
    names = list(dict.fromkeys([spec.store_container, *spec.containers, *shared]))
    return [c for name in names for c in (name, name + SEGMENT_SUFFIX)]


def access_rules(spec: RunnerSpec, shared: tuple[str, ...] = ()) -> list[dict] | None:
    """Keystone access rules for the runner's credential, or None when the file turns them off.

    Each container is reached as itself (listing, metadata such as the TempURL key) and through every object in it
    (``**`` matches any number of path segments); ``*`` stands for the project's account.
    """
    if not spec.access_rules:
        return None
    return [
        {"service": "object-store", "method": method, "path": path}
        for container in containers(spec, shared)
        for path in (f"/v1/*/{container}", f"/v1/*/{container}/**")
        for method in OBJECT_STORE_METHODS
    ]
