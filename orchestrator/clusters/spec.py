"""The cluster file (``cluster.yaml``): a pydantic model, loaded with errors that name file, line and field,
and the table mapping it to the Heat template's parameters."""

from __future__ import annotations

import ipaddress
from enum import Enum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from orchestrator.durations import parse_duration
from orchestrator.errors import SpecError
from orchestrator.yaml_files import load_spec

NAME_PATTERN = r"^[a-z][a-z0-9-]{0,30}$"


class AccessMode(str, Enum):
    """How the operator's machine reaches the nodes."""

    floating_ip = "floating_ip"  # a floating IP on the scheduler; SSH to workers goes through it
    jump = "jump"  # alias kept for clarity in files: same as floating_ip for workers, explicit jump host
    direct = "direct"  # the operator is on the cluster network (or routes to it): no floating IP


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SchedulerSpec(_Strict):
    flavor: str = Field(min_length=1, description="Nova flavor of the scheduler.")


class WorkerGroupSpec(_Strict):
    flavor: str = Field(min_length=1, description="Nova flavor of the group's workers.")
    count: int = Field(ge=0, le=256, description="Number of workers; may be zero.")


class GpuWorkerGroupSpec(WorkerGroupSpec):
    count: int = Field(default=0, ge=0, le=64)
    as_cpu: bool = Field(default=False, description="Configure GPU-flavor nodes as CPU workers (clouds exposing no GPU).")


class NetworkSpec(_Strict):
    existing: str | None = Field(default=None, description="Existing network to use; absent creates a private one.")
    cidr: str = Field(default="10.42.0.0/24", description="CIDR of the private network created when none exists.")
    public: str | None = Field(default=None, description="External network for the router and the floating IP.")

    @field_validator("cidr")
    @classmethod
    def _is_cidr(cls, value: str) -> str:
        ipaddress.ip_network(value)
        return value


class ClusterSpec(_Strict):
    """A Dask cluster on OpenStack, as written in a cluster file."""

    name: str = Field(pattern=NAME_PATTERN, description="Cluster name: lower-case letters, digits, dashes.")
    cloud: str | None = Field(default=None, description="clouds.yaml entry; absent uses OS_CLOUD.")
    image: str = Field(min_length=1)
    scheduler: SchedulerSpec
    workers: WorkerGroupSpec
    gpu_workers: GpuWorkerGroupSpec | None = None
    network: NetworkSpec = NetworkSpec()
    access: AccessMode = AccessMode.floating_ip
    operator_cidr: str = Field(description="CIDR allowed to reach SSH and the dashboard, e.g. 203.0.113.7/32.")
    ssh_user: str = Field(default="root", min_length=1)
    scratch_volume_gb: int = Field(default=0, ge=0, le=16384)
    ttl: str | None = Field(default=None, description="Delete the cluster after this long idle, e.g. 8h.")

    @field_validator("operator_cidr")
    @classmethod
    def _operator_is_cidr(cls, value: str) -> str:
        ipaddress.ip_network(value, strict=False)
        return value

    @field_validator("ttl")
    @classmethod
    def _ttl_is_duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value, "the time-to-live")
        return value

    @model_validator(mode="after")
    def _floating_ip_needs_public_network(self) -> "ClusterSpec":
        if self.access in (AccessMode.floating_ip, AccessMode.jump) and not self.network.public:
            raise ValueError(f"access '{self.access.value}' needs network.public (the external network of the floating IP)")
        return self

    @property
    def gpu_worker_count(self) -> int:
        """Number of GPU workers (zero when the file has no gpu_workers)."""
        return self.gpu_workers.count if self.gpu_workers else 0

    def with_counts(self, workers: int, gpu_workers: int | None = None) -> "ClusterSpec":
        """Return a copy with new worker counts (the GPU count is kept when ``gpu_workers`` is None)."""
        update: dict = {"workers": self.workers.model_copy(update={"count": workers})}
        if gpu_workers is not None:
            if self.gpu_workers is None and gpu_workers > 0:
                raise SpecError(f"cluster {self.name} has no gpu_workers section: cannot add GPU workers")
            if self.gpu_workers is not None:
                update["gpu_workers"] = self.gpu_workers.model_copy(update={"count": gpu_workers})
        return self.model_copy(update=update)


def heat_parameters(spec: ClusterSpec, key_name: str) -> dict:
    """Map a cluster spec to the parameters of ``heat_templates/cluster.yaml``.

    Args:
        spec: The cluster.
        key_name: The Nova key pair created for the cluster.

    Returns:
        Template parameters, every value a string as Heat expects them.
    """
    gpu_flavor = spec.gpu_workers.flavor if spec.gpu_workers else spec.workers.flavor
    return {
        "cluster_name": spec.name,
        "image": spec.image,
        "key_name": key_name,
        "scheduler_flavor": spec.scheduler.flavor,
        "worker_flavor": spec.workers.flavor,
        "worker_count": str(spec.workers.count),
        "gpu_worker_flavor": gpu_flavor,
        "gpu_worker_count": str(spec.gpu_worker_count),
        "scratch_volume_gb": str(spec.scratch_volume_gb),
        "existing_network": spec.network.existing or "",
        "private_network_cidr": spec.network.cidr,
        "public_network": spec.network.public or "",
        "operator_cidr": spec.operator_cidr,
    }


def environment_files(spec: ClusterSpec) -> list[str]:
    """Environment files (relative to ``heat_templates/``) that switch off the parts this cluster does not use."""
    return [] if spec.access in (AccessMode.floating_ip, AccessMode.jump) else ["environments/no_floating_ip.yaml"]


def load_cluster_spec(path: Path) -> ClusterSpec:
    """Read and validate a cluster file.

    Args:
        path: The cluster file.

    Returns:
        The validated spec.

    Raises:
        SpecError: The file is missing, is not YAML, or a field is wrong; names file, line and field.
    """
    return load_spec(path, ClusterSpec, "cluster")
