"""Ansible inventories built from a stack's ``nodes`` output (a cluster's or an inference endpoint's)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

ROLES = ("scheduler", "worker", "gpu_worker", "inference")


@dataclass(frozen=True)
class Node:
    """One server of a cluster, as the stack's ``nodes`` output describes it."""

    name: str
    role: str
    address: str


@dataclass(frozen=True)
class SshAccess:
    """How Ansible reaches the nodes.

    Attributes:
        private_key: Path of the cluster's private SSH key on the operator's machine.
        user: Remote user (root on the CI hosts, the image's default user elsewhere).
        jump_host: ``user@address`` of a host every connection goes through (the scheduler's floating IP
            in jump mode), or None to connect directly.
        port: SSH port of the nodes.
        python_interpreter: Python that runs Ansible's modules on the nodes (the image's system Python,
            never a discovered one that may be a shim).
    """

    private_key: Path
    user: str = "root"
    jump_host: str | None = None
    port: int = 22
    python_interpreter: str = "/usr/bin/python3"


def nodes_from_output(raw: Iterable[Mapping]) -> list[Node]:
    """Turn the stack's ``nodes`` output into nodes, checking each has a name, a known role and an address.

    Args:
        raw: The ``nodes`` output value (a list of mappings).

    Returns:
        The nodes, in output order.

    Raises:
        ValueError: A node lacks a field or has an unknown role.
    """
    nodes = []
    for index, item in enumerate(raw or []):
        missing = [k for k in ("name", "role", "address") if not item.get(k)]
        if missing:
            raise ValueError(f"node {index} of the stack output lacks {', '.join(missing)}: {dict(item)}")
        if item["role"] not in ROLES:
            raise ValueError(f"node {item['name']} has role {item['role']!r}; expected one of {', '.join(ROLES)}")
        nodes.append(Node(name=str(item["name"]), role=str(item["role"]), address=str(item["address"])))
    return nodes


def build_inventory(nodes: Iterable[Node], access: SshAccess) -> dict:
    """Build an ansible-runner inventory (YAML-shaped dict) with one group per role.

    Args:
        nodes: The cluster's nodes.
        access: How to reach them over SSH.

    Returns:
        The inventory, ready to pass as ``inventory=`` to ansible-runner.
    """
    common_args = "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes"
    if access.jump_host:
        common_args += f" -o ProxyCommand='ssh -i {access.private_key} {common_args} -W %h:%p {access.jump_host}'"
    groups: dict[str, dict] = {role: {"hosts": {}} for role in ROLES}
    for node in nodes:
        groups[node.role]["hosts"][node.name] = {"ansible_host": node.address}
    return {
        "all": {
            "vars": {
                "ansible_user": access.user,
                "ansible_port": access.port,
                "ansible_ssh_private_key_file": str(access.private_key),
                "ansible_ssh_common_args": common_args,
                "ansible_python_interpreter": access.python_interpreter,
            },
            "children": groups,
        }
    }
