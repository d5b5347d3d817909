"""The runner file (``runner.yaml``): where a schedule runner VM lives, which store it ticks, and how its credential
is limited; loaded with errors naming file, line and field, and the table mapping it to
``heat_templates/runner.yaml``'s parameters."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from orchestrator.durations import parse_duration
from orchestrator.yaml_files import load_spec

NAME_PATTERN = r"^[a-z][a-z0-9-]{0,30}$"
# A Swift container name as the runner's access rules can name it: no slash, no wildcard of the rules' syntax.
CONTAINER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,255}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RunnerNetwork(_Strict):
    """The network of the runner's server."""

    existing: str | None = Field(default=None, description="Existing network to use; absent creates a private one.")
    cidr: str = Field(default="10.44.0.0/24", description="CIDR of the private network created when none exists.")
    public: str | None = Field(default=None, description="External network for the router (and the floating IP).")

    @field_validator("cidr")
    @classmethod
    def _is_cidr(cls, value: str) -> str:
        ipaddress.ip_network(value)
        return value


class RunnerSpec(_Strict):
    """A schedule runner VM, as written in a runner file."""

    name: str = Field(pattern=NAME_PATTERN, description="Runner name: lower-case letters, digits, dashes.")
    cloud: str | None = Field(default=None, description="clouds.yaml entry; absent uses OS_CLOUD.")
    image: str = Field(min_length=1, description="Glance image (Debian or Ubuntu with Python 3.11+).")
    flavor: str = Field(min_length=1, description="Nova flavor of the runner's server.")
    store: str = Field(description="The store the schedules are kept in: swift://CONTAINER[/PREFIX].")
    network: RunnerNetwork = RunnerNetwork()
    floating_ip: bool = Field(default=False, description="Give the server a floating IP on network.public.")
    operator_cidr: str = Field(description="CIDR allowed to reach SSH on the server, e.g. 203.0.113.7/32.")
    ssh_user: str = Field(default="root", min_length=1)
    python_version: str = Field(default="3.11", pattern=r"^3\.\d{1,2}$",
                                description="Python version of the image, for the wheels it installs.")
    every: str = Field(default="60s", description="How often the runner ticks (aligned on the wall clock).")
    credential_ttl: str = Field(default="90d", description="Lifetime of the runner's application credential; "
                                                           "`dataops schedule runner rotate-credential` renews it.")
    credential_roles: list[str] = Field(default=["member"], min_length=1,
                                        description="Roles of the credential on the project (the fewest it needs).")
    access_rules: bool = Field(default=True, description="Limit the credential to the runner's containers "
                                                         "(needs a cloud whose Swift enforces access rules).")
    containers: list[str] = Field(default_factory=list,
                                  description="More containers the runs read or write (sources), beside the store's.")
    cluster: str | None = Field(
        default=None, pattern=NAME_PATTERN,
        description="A cluster made from this machine by `dataops cluster create` that schedules naming it run on: "
                    "the runner joins the cluster's network, holds a client certificate of the cluster's CA, and "
                    "the cluster admits it (and nothing else new) to its scheduler's port.")

    @field_validator("operator_cidr")
    @classmethod
    def _operator_is_cidr(cls, value: str) -> str:
        ipaddress.ip_network(value, strict=False)
        return value

    @field_validator("store")
    @classmethod
    def _store_is_swift(cls, value: str) -> str:
        parsed = urlparse(value)
        if parsed.scheme != "swift" or not parsed.netloc:
            raise ValueError(f"expected swift://CONTAINER[/PREFIX] (a runner VM cannot reach this machine's "
                             f"folders), got {value!r}")
        _container_name(parsed.netloc)
        return value

    @field_validator("containers")
    @classmethod
    def _containers_are_names(cls, value: list[str]) -> list[str]:
        for name in value:
            _container_name(name)
        return value

    @field_validator("every")
    @classmethod
    def _every_is_duration(cls, value: str) -> str:
        if parse_duration(value, "every") < 10:
            raise ValueError("expected at least 10s between ticks")
        return value

    @field_validator("credential_ttl")
    @classmethod
    def _ttl_is_duration(cls, value: str) -> str:
        if parse_duration(value, "credential_ttl") < 3600:
            raise ValueError("expected a lifetime of at least 1h")
        return value

    @model_validator(mode="after")
    def _floating_ip_needs_public_network(self) -> RunnerSpec:
        if self.floating_ip and not self.network.public:
            raise ValueError("floating_ip needs network.public (the external network of the floating IP)")
        return self

    @model_validator(mode="after")
    def _cluster_brings_its_network(self) -> RunnerSpec:
        if self.cluster and self.network.existing:
            raise ValueError(f"cluster {self.cluster!r} puts the runner on that cluster's network: drop "
                             f"network.existing ({self.network.existing!r})")
        return self

    @property
    def store_container(self) -> str:
        """The container the store lives in."""
        return urlparse(self.store).netloc

    @property
    def every_s(self) -> float:
        return parse_duration(self.every, "every")

    @property
    def credential_ttl_s(self) -> float:
        return parse_duration(self.credential_ttl, "credential_ttl")

    def heat_parameters(self, key_name: str, seat: ClusterSeat | None = None) -> dict:
        """Parameters of ``heat_templates/runner.yaml``, every value a string as Heat expects them; with ``seat``,
        those putting the runner on that cluster's network, admitted to its scheduler. The credential is not among
        them: Heat never sees it."""
        parameters = {
            "runner_name": self.name,
            "image": self.image,
            "flavor": self.flavor,
            "key_name": key_name,
            "existing_network": self.network.existing or "",
            "private_network_cidr": self.network.cidr,
            "public_network": self.network.public or "",
            "floating_ip": "true" if self.floating_ip else "false",
            "operator_cidr": self.operator_cidr,
        }
        if seat is not None:
            parameters.update({"existing_network": seat.network_id, "cluster_security_group": seat.security_group_id,
                               "cluster_scheduler_port": str(seat.scheduler_port)})
        return parameters


@dataclass(frozen=True)
class ClusterSeat:
    """What a runner needs to run slots on a cluster (built by the use case from the cluster's own state): the
    network and security group it joins, the scheduler's port, and what its VM keeps so that the tick reaches the
    scheduler as the operator does: the cluster's record (no key in it) and a client certificate of its CA."""

    cluster: str
    network_id: str
    security_group_id: str
    scheduler_port: int
    record: dict
    ca: Path
    cert: Path
    key: Path


def _container_name(name: str) -> str:
    if not re.fullmatch(CONTAINER_PATTERN, name):
        raise ValueError(f"{name!r} is not a container name (letters, digits, '.', '_', '-'; no '/' or '*')")
    return name


def load_runner_spec(path: Path, overrides: dict | None = None) -> RunnerSpec:
    """Read and validate a runner file, with command-line ``overrides`` applied on top.

    Args:
        path: The runner file.
        overrides: Fields replacing the file's (None values are ignored).

    Returns:
        The validated spec.

    Raises:
        SpecError: The file is missing, is not YAML, or a field is wrong; names file, line and field.
    """
    return load_spec(path, RunnerSpec, "runner", overrides)
