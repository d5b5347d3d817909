"""The only package that talks to openstacksdk: connections and error translation."""

from orchestrator.openstack.connection import cloud_errors, connect

__all__ = ["cloud_errors", "connect"]
