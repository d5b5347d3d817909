"""Keystone application credentials on openstacksdk: issue one (restricted, expiring, with the roles and access
rules asked for), list them by name, revoke one with the access rules only it used, write the clouds.yaml entry a
machine authenticates with, and check that a credential reaches a Swift container.

A credential's secret is made and returned once, by :meth:`KeystoneApplicationCredentials.issue`, and kept out of every
``repr``, message and log: the errors raised here are built from the cloud's reason with the secret scrubbed out.
"""

from __future__ import annotations

import contextlib
import itertools
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import openstack.exceptions

from orchestrator.errors import CloudError
from orchestrator.openstack.connection import cloud_errors

APPLICATION_CREDENTIAL_AUTH = "v3applicationcredential"
# Tries again of a creation that lost a race to store an access rule another credential shares (see ``issue``).
_RACE_RETRIES = 3


@dataclass(frozen=True)
class CredentialSummary:
    """An application credential as Keystone lists it (never with its secret)."""

    id: str
    name: str
    expires_at: str | None = None


@dataclass(frozen=True)
class IssuedCredential:
    """A credential just issued: the only time its secret is known. ``repr`` leaves the secret out."""

    id: str
    name: str
    expires_at: str
    secret: str = field(repr=False)
    roles: tuple[str, ...] = ()
    access_rules: int = 0

    def summary(self) -> CredentialSummary:
        return CredentialSummary(self.id, self.name, self.expires_at)


@contextlib.contextmanager
def _scrubbed(action: str, secret: str) -> Iterator[None]:
    """Like ``cloud_errors``, with ``secret`` taken out of the message (a cloud's reason might echo a request)."""
    try:
        with cloud_errors(action):
            yield
    except CloudError as exc:
        message = str(exc).replace(secret, "<secret>") if secret else str(exc)
        raise CloudError(message) from None


class KeystoneApplicationCredentials:
    """The application credentials of the connection's user, on its project.

    Args:
        conn: An openstacksdk connection (the operator's, from clouds.yaml / ``OS_CLOUD``).
    """

    def __init__(self, conn):
        self.conn = conn

    @property
    def user_id(self) -> str:
        return self.conn.current_user_id

    def issue(self, name: str, *, description: str, roles: list[str], expires_at: datetime,
              access_rules: list[dict] | None) -> IssuedCredential:
        """Create a restricted credential (it cannot create credentials or trusts) that expires.

        Args:
            name: Its name, unique among the user's credentials.
            description: What it is for, shown by ``openstack application credential list``.
            roles: Role names on the project (the user must hold them).
            expires_at: When Keystone stops accepting it.
            access_rules: Keystone access rules (service, method, path), or None for none.

        Returns:
            The credential with its secret.

        Raises:
            CloudError: Keystone refused (a role the user lacks, a name taken); the message names the credential,
                never the secret.
        """
        # The secret is made here rather than by Keystone: a creation whose answer was lost (an error after the
        # credential was stored) is then found by its name and still usable.
        secret = secrets.token_urlsafe(48)  # 64 characters: Keystone hashes at most 72
        body = {
            "user": self.user_id, "name": name, "description": description, "secret": secret,
            "roles": [{"name": role} for role in roles], "unrestricted": False,
            "expires_at": expires_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        }
        if access_rules is not None:
            body["access_rules"] = access_rules
        with _scrubbed(f"cannot create application credential {name}", secret):
            for retry in itertools.count():
                try:
                    created = self.conn.identity.create_application_credential(**body)
                    break
                except openstack.exceptions.HttpException as exc:
                    # Keystone shares identical access rules among a user's credentials: credentials created at
                    # once race to store the same rule, and the loser is told Conflict (naming the credential) or
                    # fails on a database deadlock, with nothing stored. Once the rule exists a new try reuses it.
                    if retry == _RACE_RETRIES or not (exc.status_code == 409 or (exc.status_code or 0) >= 500):
                        raise
                    created = self._named(name)
                    if created is not None:
                        break
                    time.sleep(1 + retry)
        return IssuedCredential(
            id=created.id, name=created.name, expires_at=str(created.expires_at), secret=secret,
            roles=tuple(sorted(r.get("name", "") for r in created.roles or [])),
            access_rules=len(created.access_rules or []),
        )

    def _named(self, name: str):
        return next((c for c in self.conn.identity.application_credentials(self.user_id) if c.name == name), None)

    def credentials(self, matches: Callable[[str], bool]) -> list[CredentialSummary]:
        """The user's credentials whose name ``matches``, oldest expiry first."""
        with cloud_errors("cannot list application credentials"):
            found = [CredentialSummary(c.id, c.name, c.expires_at)
                     for c in self.conn.identity.application_credentials(self.user_id) if matches(c.name)]
        return sorted(found, key=lambda c: (c.expires_at or "", c.name))

    def find(self, name: str) -> CredentialSummary | None:
        """The user's credential named ``name``, or None."""
        matching = self.credentials(lambda candidate: candidate == name)
        return matching[0] if matching else None

    def revoke(self, credential_id: str) -> None:
        """Delete a credential (tokens issued from it stop working) and the access rules no other credential uses;
        a credential already gone is not an error."""
        with cloud_errors(f"cannot delete application credential {credential_id}"):
            try:
                credential = self.conn.identity.get_application_credential(self.user_id, credential_id)
            except openstack.exceptions.NotFoundException:
                return
            self.conn.identity.delete_application_credential(self.user_id, credential_id, ignore_missing=True)
            for rule in credential.access_rules or []:
                try:
                    self.conn.identity.delete_access_rule(self.user_id, rule["id"], ignore_missing=True)
                except openstack.exceptions.ForbiddenException:
                    pass  # Keystone keeps a rule another credential of the user still has

    def client_config(self, credential: IssuedCredential) -> dict:
        """The clouds.yaml entry (one cloud's mapping) that authenticates with ``credential`` on this cloud."""
        config = self.conn.config
        entry = {
            "auth_type": APPLICATION_CREDENTIAL_AUTH,
            "auth": {
                "auth_url": config.get_auth_args()["auth_url"],
                "application_credential_id": credential.id,
                "application_credential_secret": credential.secret,
            },
            "identity_api_version": 3,
            "interface": config.get_interface() or "public",
        }
        if config.get_region_name():
            entry["region_name"] = config.get_region_name()
        if config.config.get("verify") is False:
            entry["verify"] = False
        return entry

    def check_object_store(self, credential: IssuedCredential, container: str) -> None:
        """Authenticate with ``credential`` and ask Swift for ``container`` (absent is fine: it is created later).

        Raises:
            CloudError: Keystone or Swift refused the credential; the message says what that means, never the secret.
        """
        from openstack import connection
        from openstack.config import loader

        entry = self.client_config(credential)
        # Only this credential: neither the operator's clouds.yaml nor OS_* variables may mix in.
        region = loader.OpenStackConfig(load_yaml_config=False, load_envvars=False).get_one(**entry)
        with _scrubbed(f"application credential {credential.name} cannot authenticate", credential.secret):
            probe = connection.Connection(config=region)
            try:
                probe.authorize()
                status = probe.object_store.head(f"/{container}", raise_exc=False).status_code
            finally:
                probe.close()
        if status in (401, 403):
            why = ("a credential with access rules reaches a service only where its auth_token middleware sets "
                   "service_type (and keeps the service catalog): on such a cloud set access_rules: false in the "
                   "runner file") if credential.access_rules else "its roles do not give access to the container"
            raise CloudError(f"Swift refuses application credential {credential.name} on container {container} "
                             f"({status}): {why}")
        if status >= 500:
            raise CloudError(f"Swift failed on container {container} ({status}) for application credential "
                             f"{credential.name}")

