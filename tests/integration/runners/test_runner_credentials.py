"""A runner's application credential against the real Keystone and Swift of the CI control plane: it is restricted
(it cannot make credentials of its own), expires when asked, has the roles asked for, reaches its own containers and
no other (Swift enforces its access rules), and revoking it removes it with its access rules, twice over."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import openstack.exceptions
import pytest
import yaml

from orchestrator.errors import CloudError
from orchestrator.openstack.app_credentials import KeystoneApplicationCredentials
from orchestrator.runners.credential import access_rules, credential_name
from orchestrator.runners.spec import RunnerSpec

pytestmark = [pytest.mark.integration, pytest.mark.openstack]

# Run in a process of its own, with only the credential's clouds.yaml: what a runner VM does.
PROBE = """
import json, sys, openstack
conn = openstack.connect(cloud="runner")
conn.authorize()
answers = {}
for container in sys.argv[1:]:
    answers[container] = conn.object_store.put(f"/{container}/probe.txt", data=b"x", raise_exc=False).status_code
try:
    conn.identity.create_application_credential(user=conn.current_user_id, name="from-the-runner")
    answers["new credential"] = "created"
except openstack.exceptions.HttpException as exc:
    answers["new credential"] = exc.status_code
print(json.dumps(answers))
"""


@pytest.fixture()
def credentials(cloud):
    """The adapter, and a list of what a test made; every probe credential is revoked afterwards, made or not."""
    issuer = KeystoneApplicationCredentials(cloud)
    made: list[str] = []
    yield issuer, made
    for credential_id in made:
        issuer.revoke(credential_id)
    for left in issuer.credentials(lambda name: name.startswith("dataops-runner-probe")):
        issuer.revoke(left.id)


def _spec(container: str, **fields) -> RunnerSpec:
    return RunnerSpec(name="probe", image="dataops-tiny", flavor="dataops.cpu.small", store=f"swift://{container}",
                      operator_cidr="127.0.0.1/32", **fields)


def _probe(issuer, credential, tmp_path, *containers) -> dict:
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text(yaml.safe_dump({"clouds": {"runner": issuer.client_config(credential)}}))
    clouds.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")} | {"OS_CLIENT_CONFIG_FILE": str(clouds)}
    done = subprocess.run([sys.executable, "-c", PROBE, *containers], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert credential.secret not in done.stdout + done.stderr
    return yaml.safe_load(done.stdout)


def test_a_runner_credential_is_restricted_expiring_and_reaches_only_its_containers(
        cloud, credentials, swift_container, tmp_path):
    issuer, made = credentials
    other = f"{swift_container}-other"
    cloud.object_store.create_container(swift_container)
    cloud.object_store.create_container(other)
    try:
        spec = _spec(swift_container)
        expires = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
        issued = issuer.issue(credential_name("probe", datetime.now(UTC)), description="dataops test",
                              roles=["member"], expires_at=expires, access_rules=access_rules(spec))
        made.append(issued.id)
        assert issued.secret and issued.secret not in repr(issued)
        assert issued.access_rules == 20 and "member" in issued.roles
        kept = cloud.identity.get_application_credential(cloud.current_user_id, issued.id)
        assert kept.unrestricted is False
        assert datetime.fromisoformat(kept.expires_at).replace(tzinfo=UTC) == expires
        issuer.check_object_store(issued, swift_container)

        answers = _probe(issuer, issued, tmp_path, swift_container, other)
        assert answers[swift_container] == 201, "its own container"
        assert answers[other] == 401, "Swift enforces the access rules: no other container"
        assert answers["new credential"] in (401, 403), "it cannot make credentials of its own"
        with pytest.raises(CloudError, match=rf"Swift refuses application credential {issued.name} on container "
                                             rf"{other} \(401\): a credential with access rules") as refused:
            issuer.check_object_store(issued, other)
        assert issued.secret not in str(refused.value)
    finally:
        for obj in list(cloud.object_store.objects(other)):
            cloud.object_store.delete_object(obj, container=other, ignore_missing=True)
        cloud.object_store.delete_container(other, ignore_missing=True)


def test_without_access_rules_the_credential_is_still_restricted(cloud, credentials, swift_container, tmp_path):
    issuer, made = credentials
    cloud.object_store.create_container(swift_container)
    issued = issuer.issue(credential_name("probe", datetime.now(UTC)), description="dataops test", roles=["member"],
                          expires_at=datetime.now(UTC) + timedelta(hours=2), access_rules=None)
    made.append(issued.id)
    answers = _probe(issuer, issued, tmp_path, swift_container)
    assert answers[swift_container] == 201
    assert answers["new credential"] == 403, "a restricted credential may not create credentials"


def test_revoking_removes_the_credential_and_its_access_rules_and_can_be_repeated(cloud, credentials,
                                                                                   swift_container):
    issuer, _ = credentials
    spec = _spec(swift_container, containers=[f"{swift_container}-src"])
    name = credential_name("probe", datetime.now(UTC))
    issued = issuer.issue(name, description="dataops test", roles=["member"],
                          expires_at=datetime.now(UTC) + timedelta(hours=2), access_rules=access_rules(spec))
    kept = cloud.identity.get_application_credential(cloud.current_user_id, issued.id)
    rule_ids = [rule["id"] for rule in kept.access_rules]
    assert [c.id for c in issuer.credentials(lambda n: n == name)] == [issued.id]
    issuer.revoke(issued.id)
    assert issuer.credentials(lambda n: n == name) == []
    for rule_id in rule_ids:
        with pytest.raises(openstack.exceptions.NotFoundException):
            cloud.identity.get_access_rule(cloud.current_user_id, rule_id)
    issuer.revoke(issued.id)


def test_credentials_with_the_same_access_rules_issued_at_once_are_all_created(cloud, credentials, swift_container):
    """Keystone shares a user's identical access rules between credentials; issuing several at once (runners
    created together) races to store them, which the adapter rides out."""
    from concurrent.futures import ThreadPoolExecutor

    issuer, made = credentials
    rules = access_rules(_spec(swift_container))
    at = datetime.now(UTC)

    def issue(index: int):
        return issuer.issue(credential_name(f"probe{index}", at), description="dataops test", roles=["member"],
                            expires_at=at + timedelta(hours=2), access_rules=rules)

    with ThreadPoolExecutor(3) as pool:
        issued = list(pool.map(issue, range(3)))
    made += [c.id for c in issued]
    assert len({c.id for c in issued}) == 3 and all(c.access_rules == 20 for c in issued)
