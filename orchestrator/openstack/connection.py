"""Open a cloud connection from clouds.yaml / ``OS_CLOUD`` and turn SDK failures into CloudError."""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

import keystoneauth1.exceptions
import openstack
import openstack.config.exceptions
import openstack.exceptions

from orchestrator.errors import CloudError

# Failures of the SDK and of the HTTP layer beneath it that mean "the cloud said no" or "the cloud is not there".
SDK_ERRORS = (
    openstack.exceptions.SDKException,
    openstack.config.exceptions.OpenStackConfigException,
    keystoneauth1.exceptions.ClientException,
)


def connect(cloud: str | None = None) -> openstack.connection.Connection:
    """Connect to ``cloud`` (a clouds.yaml entry), or to ``OS_CLOUD`` when none is given.

    Credentials come only from openstacksdk's own loading (clouds.yaml, ``OS_CLIENT_CONFIG_FILE``,
    ``OS_*`` variables). The token is fetched once here, so a wrong password fails now, with the cloud named.

    Args:
        cloud: name of the cloud in clouds.yaml; ``None`` uses ``OS_CLOUD``.

    Returns:
        An authenticated openstacksdk connection.

    Raises:
        CloudError: the cloud is unknown, unreachable or refuses the credentials.
    """
    name = cloud or os.environ.get("OS_CLOUD")
    if not name:
        raise CloudError("no cloud named: pass one or set OS_CLOUD to an entry of clouds.yaml")
    with cloud_errors(f"cannot connect to cloud {name!r}"):
        conn = openstack.connect(cloud=name)
        conn.authorize()
    return conn


@contextlib.contextmanager
def cloud_errors(action: str) -> Iterator[None]:
    """Re-raise any SDK failure inside the block as CloudError("<action>: <the cloud's reason>")."""
    try:
        yield
    except SDK_ERRORS as exc:
        raise CloudError(f"{action}: {_reason(exc)}") from exc


def _reason(exc: Exception) -> str:
    details = getattr(exc, "details", None)
    message = str(exc).strip() or type(exc).__name__
    if details and str(details) not in message:
        message = f"{message} ({details})"
    return message
