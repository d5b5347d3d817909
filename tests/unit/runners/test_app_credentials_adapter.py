"""The Keystone adapter of application credentials against a stand-in of openstacksdk's identity proxy: what it asks
Keystone for, how it rides out the race of credentials sharing access rules, that no error it raises carries the
secret, and that revoking takes the access rules no other credential uses. (tests/integration/runners/ runs it
against the real Keystone and Swift.)"""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import openstack.exceptions
import pytest
import requests

import orchestrator.openstack.app_credentials as adapter
from orchestrator.errors import CloudError
from orchestrator.openstack.app_credentials import KeystoneApplicationCredentials


def _http_error(kind, status: int, message: str):
    response = requests.Response()
    response.status_code = status
    return kind(message=message, response=response)


class Identity:
    """Keystone's application credentials of user u1, as openstacksdk's identity proxy returns them."""

    def __init__(self, failures=()):
        self.failures = list(failures)  # exceptions raised by the next creations, in order
        self.credentials: dict[str, SimpleNamespace] = {}
        self.rules_in_use = set()
        self.deleted_rules: list[str] = []
        self.bodies: list[dict] = []

    def create_application_credential(self, **body):
        self.bodies.append(body)
        if self.failures:
            failure = self.failures.pop(0)
            if callable(failure):
                failure = failure(body)
            raise failure
        credential = SimpleNamespace(
            id=f"c{len(self.credentials) + 1}", name=body["name"], expires_at=body["expires_at"] + ".000000",
            roles=[{"name": r["name"]} for r in body["roles"]] + [{"name": "reader"}],
            access_rules=[{**rule, "id": f"rule{i}"} for i, rule in enumerate(body.get("access_rules") or [])])
        self.credentials[credential.id] = credential
        return credential

    def application_credentials(self, user):
        return list(self.credentials.values())

    def get_application_credential(self, user, credential_id):
        if credential_id not in self.credentials:
            raise _http_error(openstack.exceptions.NotFoundException, 404, "Could not find application credential")
        return self.credentials[credential_id]

    def delete_application_credential(self, user, credential_id, ignore_missing=True):
        self.credentials.pop(credential_id, None)

    def delete_access_rule(self, user, rule_id, ignore_missing=True):
        if rule_id in self.rules_in_use:
            raise _http_error(openstack.exceptions.ForbiddenException, 403, "Access rule in use")
        self.deleted_rules.append(rule_id)


@pytest.fixture
def no_waiting(monkeypatch):
    monkeypatch.setattr(adapter.time, "sleep", lambda seconds: None)


def _keystone(identity: Identity) -> KeystoneApplicationCredentials:
    return KeystoneApplicationCredentials(SimpleNamespace(identity=identity, current_user_id="u1"))


RULES = [{"service": "object-store", "method": "GET", "path": "/v1/*/ops/**"}]
EXPIRES = datetime(2027, 4, 15, 8, 30, tzinfo=UTC)


def test_a_credential_is_asked_for_restricted_expiring_with_its_roles_and_rules():
    identity = Identity()
    issued = _keystone(identity).issue("dataops-runner-ops-x", description="ops", roles=["member"],
                                      expires_at=EXPIRES, access_rules=RULES)
    (body,) = identity.bodies
    assert body["unrestricted"] is False and body["roles"] == [{"name": "member"}]
    assert body["expires_at"] == "2027-04-15T08:30:00" and body["access_rules"] == RULES
    assert issued.secret == body["secret"] and len(issued.secret) == 64, "made here, within Keystone's 72"
    assert issued.secret not in repr(issued)
    assert issued.roles == ("member", "reader") and issued.access_rules == 1


def test_a_creation_that_lost_the_race_for_a_shared_access_rule_is_tried_again(no_waiting):
    identity = Identity(failures=[
        _http_error(openstack.exceptions.ConflictException, 409, "Duplicate entry found with name dataops-runner"),
        _http_error(openstack.exceptions.HttpException, 500, "Internal Server Error"),
    ])
    issued = _keystone(identity).issue("dataops-runner-ops-x", description="", roles=["member"], expires_at=EXPIRES,
                                      access_rules=RULES)
    assert len(identity.bodies) == 3 and issued.id == "c1"
    assert len({body["secret"] for body in identity.bodies}) == 1, "every try asks for the same credential"


def test_a_creation_stored_before_its_answer_was_lost_is_found_and_usable(no_waiting):
    identity = Identity()

    def stored_then_failed(body):
        identity.failures.clear()
        identity.create_application_credential(**body)
        return _http_error(openstack.exceptions.HttpException, 502, "Bad Gateway")

    identity.failures = [stored_then_failed]
    issued = _keystone(identity).issue("dataops-runner-ops-x", description="", roles=["member"], expires_at=EXPIRES,
                                      access_rules=None)
    assert list(identity.credentials) == ["c1"] and issued.secret == identity.bodies[0]["secret"]


def test_a_refusal_is_a_cloud_error_naming_the_credential_and_never_its_secret(no_waiting):
    identity = Identity(failures=[lambda body: _http_error(
        openstack.exceptions.BadRequestException, 400, f"Invalid input for field 'secret': {body['secret']}")])
    with pytest.raises(CloudError) as failure:
        _keystone(identity).issue("dataops-runner-ops-x", description="", roles=["member"], expires_at=EXPIRES,
                                  access_rules=None)
    message = str(failure.value)
    assert message.startswith("cannot create application credential dataops-runner-ops-x")
    assert identity.bodies[0]["secret"] not in message and "<secret>" in message
    assert failure.value.__cause__ is None and failure.value.__suppress_context__, "no chained error repeats it"


def test_a_role_the_user_lacks_is_not_tried_again(no_waiting):
    identity = Identity(failures=[_http_error(openstack.exceptions.ForbiddenException, 403, "role not assigned")])
    with pytest.raises(CloudError, match="role not assigned"):
        _keystone(identity).issue("dataops-runner-ops-x", description="", roles=["admin"], expires_at=EXPIRES,
                                  access_rules=None)
    assert len(identity.bodies) == 1


def test_revoking_deletes_the_credential_and_the_rules_no_other_credential_uses():
    identity = Identity()
    keystone = _keystone(identity)
    issued = keystone.issue("dataops-runner-ops-x", description="", roles=["member"], expires_at=EXPIRES,
                            access_rules=RULES + [{"service": "object-store", "method": "PUT", "path": "/v1/*/ops/**"}])
    identity.rules_in_use = {"rule1"}  # another runner's credential has the same PUT rule
    keystone.revoke(issued.id)
    assert identity.credentials == {} and identity.deleted_rules == ["rule0"]
    keystone.revoke(issued.id)
    assert keystone.credentials(lambda name: True) == []
