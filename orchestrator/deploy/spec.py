"""The endpoint file (``deploy.yaml``): where and how a model is served, loaded with errors naming file, line and
field, and the table mapping it to ``heat_templates/inference.yaml``'s parameters."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from orchestrator.clusters.spec import NAME_PATTERN, NetworkSpec
from orchestrator.yaml_files import load_spec


class EndpointSpec(BaseModel):
    """An inference endpoint on OpenStack, as written in an endpoint file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN, description="Endpoint name: lower-case letters, digits, dashes.")
    cloud: str | None = Field(default=None, description="clouds.yaml entry; absent uses OS_CLOUD.")
    image: str = Field(min_length=1)
    flavor: str = Field(min_length=1, description="Nova flavor of the inference servers (a GPU flavor uses CUDA).")
    gpu: bool = Field(default=False, description="The flavor has a GPU: install onnxruntime-gpu and use CUDA.")
    nodes: int = Field(default=2, ge=1, le=64, description="Number of inference servers.")
    port: int = Field(default=8000, ge=1024, le=65535, description="TCP port of the servers.")
    network: NetworkSpec = NetworkSpec(cidr="10.43.0.0/24")
    floating_ips: bool = Field(default=False, description="Give every server a floating IP on network.public.")
    operator_cidr: str = Field(description="CIDR allowed to reach SSH on the servers, e.g. 203.0.113.7/32.")
    client_cidr: str = Field(description="CIDR allowed to reach the serving port.")
    ssh_user: str = Field(default="root", min_length=1)
    max_batch_rows: int = Field(default=32, ge=1, le=4096, description="Server-side micro-batching: rows at most.")
    range_policy: Literal["reject", "flag"] = Field(default="reject", description="A value outside the training "
                                                    "range: reject the request (400) or flag it and answer.")
    capture_rate: float = Field(default=0.0, ge=0.0, le=1.0, description="Share of requests whose rows are captured "
                                "into the store's captures/ for drift checks (0: none). The nodes write through a "
                                "URL signed for that folder alone; they hold no cloud credential.")
    capture_url_days: int = Field(default=30, ge=1, le=365, description="How long the nodes' signed URLs stay "
                                  "valid (captures, and following the store's desired state); each deploy signs "
                                  "new ones.")
    follow_every_s: float = Field(default=5.0, ge=1.0, le=3600.0, description="How often each node reads the "
                                  "store's desired state (a watch deploys through it, without SSH).")
    tls_names: list[str] = Field(default_factory=list, description="DNS names clients use for the servers, added "
                                 "to each node's certificate beside its name and addresses.")
    insecure_http: bool = Field(default=False, description="Serve plain HTTP instead of HTTPS: the bearer token "
                                "and every row scored cross the network in the clear.")

    @field_validator("operator_cidr", "client_cidr")
    @classmethod
    def _is_cidr(cls, value: str) -> str:
        ipaddress.ip_network(value, strict=False)
        return value

    def heat_parameters(self, key_name: str) -> dict:
        """Parameters of ``heat_templates/inference.yaml``, every value a string as Heat expects them."""
        return {
            "endpoint_name": self.name,
            "image": self.image,
            "key_name": key_name,
            "flavor": self.flavor,
            "node_count": str(self.nodes),
            "existing_network": self.network.existing or "",
            "private_network_cidr": self.network.cidr,
            "public_network": (self.network.public or "") if self.floating_ips else "",
            "operator_cidr": self.operator_cidr,
            "client_cidr": self.client_cidr,
            "serving_port": str(self.port),
            "serving_scheme": self.scheme,
        }

    @property
    def scheme(self) -> str:
        """The scheme of the servers' URLs: ``https`` unless the file asks for plain HTTP."""
        return "http" if self.insecure_http else "https"


def load_endpoint_spec(path: Path, overrides: dict | None = None) -> EndpointSpec:
    """Read and validate an endpoint file, with command-line ``overrides`` applied on top.

    Raises:
        SpecError: The file is missing, is not YAML, or a field is wrong; names file, line and field.
    """
    return load_spec(path, EndpointSpec, "endpoint", overrides)
