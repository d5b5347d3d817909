"""An in-memory cloud and Keystone at the runner use cases' boundaries, a playbook run that records what it was
given, and a runner file to start from. The integration tests run the real ones."""

from __future__ import annotations

import stat
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from orchestrator.ansible.playbook import PlaybookResult
from orchestrator.errors import CloudError, ConfigurationFailed, StackFailed
from orchestrator.runners.cloud import CredentialSummary, IssuedCredential, Leftover, StackEvent, StackSummary
from orchestrator.runners.provision import RunnerPackage

SECRET_PREFIX = "s3cr3t-"


@pytest.fixture(autouse=True)
def runners_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DATAOPS_RUNNERS_DIR", str(tmp_path / "runners"))
    return tmp_path / "runners"


class RunnerStackCloud:
    """Stacks, key pairs and tagged ports; a stack whose flavor is unknown fails as Heat says it."""

    def __init__(self, flavors=("m1.small",)):
        self.flavors = set(flavors)
        self.stacks: dict[str, dict] = {}
        self.keypairs: dict[str, str] = {}
        self.ports: dict[str, str] = {}  # port id -> owner tag

    def create_stack(self, name, template, environment_files, parameters, tags):
        assert template.name == "runner.yaml" and template.exists()
        self.stacks[name] = {"parameters": dict(parameters), "tags": list(tags)}
        self.ports[f"port-{name}"] = f"dataops-runner={parameters['runner_name']}"

    def wait_stack(self, name, action, on_event, timeout_s):
        flavor = self.stacks[name]["parameters"]["flavor"]
        if flavor not in self.flavors:
            on_event(StackEvent("server", f"{action}_FAILED", f"Flavor {flavor} could not be found."))
            raise StackFailed(f"stack {name} {action}_FAILED: resource server: Flavor {flavor} could not be found.")
        on_event(StackEvent(name, f"{action}_COMPLETE"))

    def stack_outputs(self, name):
        return {"name": name, "server_id": "0123456789abcdef", "address": "10.44.0.7", "public_address": None,
                "network_id": "net-1", "security_group_id": "sg-1"}

    def find_stack(self, name):
        return StackSummary(name, "CREATE_COMPLETE") if name in self.stacks else None

    def delete_stack(self, name, timeout_s):
        self.stacks.pop(name, None)

    def create_keypair(self, name, public_key, cluster):
        self.keypairs.setdefault(name, public_key)

    def list_tagged(self, tag_prefix, owner):
        return [Leftover("port", port, owner) for port, tag in self.ports.items() if tag == f"{tag_prefix}{owner}"]

    def delete_leftover(self, leftover):
        if leftover.kind == "keypair":
            self.keypairs.pop(leftover.id, None)
        elif leftover.kind == "port":
            self.ports.pop(leftover.id, None)


class InMemoryKeystone:
    """Application credentials of one user, with what Keystone enforces of them; ``reachable`` says whether Swift
    lets a credential reach a container (False: as Swift refuses access rules it does not enforce)."""

    def __init__(self, user_roles=("member", "reader")):
        self.user_roles = set(user_roles)
        self.by_id: dict[str, dict] = {}
        self.reachable = True
        self.issued = 0

    def issue(self, name, *, description, roles, expires_at, access_rules):
        if any(c["name"] == name for c in self.by_id.values()):
            raise CloudError(f"cannot create application credential {name}: Conflict")
        missing = set(roles) - self.user_roles
        if missing:
            raise CloudError(f"cannot create application credential {name}: the user has no role {sorted(missing)}")
        self.issued += 1
        credential_id = f"cred{self.issued}"
        self.by_id[credential_id] = {
            "name": name, "description": description, "roles": list(roles), "unrestricted": False,
            "expires_at": expires_at, "access_rules": access_rules, "secret": f"{SECRET_PREFIX}{credential_id}",
        }
        return IssuedCredential(credential_id, name, expires_at.strftime("%Y-%m-%dT%H:%M:%S.000000"),
                                f"{SECRET_PREFIX}{credential_id}", tuple(roles), len(access_rules or []))

    def credentials(self, matches):
        return [CredentialSummary(i, c["name"], c["expires_at"].isoformat())
                for i, c in self.by_id.items() if matches(c["name"])]

    def revoke(self, credential_id):
        self.by_id.pop(credential_id, None)

    def client_config(self, credential):
        return {"auth_type": "v3applicationcredential",
                "auth": {"auth_url": "https://keystone.test:5000/v3", "application_credential_id": credential.id,
                         "application_credential_secret": credential.secret}}

    def check_object_store(self, credential, container):
        if not self.reachable:
            raise CloudError(f"Swift refuses application credential {credential.name} on container {container} (401)")

    def secrets(self) -> list[str]:
        return [f"{SECRET_PREFIX}cred{n}" for n in range(1, self.issued + 1)]


class RecordingConfigure:
    """Stands in for ansible-runner: records each run and what the credential file held while the play ran."""

    def __init__(self, fail_with: str | None = None):
        self.calls: list[dict] = []
        self.fail_with = fail_with

    def __call__(self, playbook, inventory, extravars, limit=None, on_event=None):
        clouds = Path(extravars["schedule_runner_clouds_yaml"])
        self.calls.append({
            "playbook": playbook, "inventory": inventory, "extravars": dict(extravars),
            "clouds": yaml.safe_load(clouds.read_text()),
            "file_mode": stat.S_IMODE(clouds.stat().st_mode), "folder_mode": stat.S_IMODE(clouds.parent.stat().st_mode),
        })
        if self.fail_with:
            raise ConfigurationFailed(self.fail_with)
        return PlaybookResult()


class Steps:
    """Progress callbacks that keep every message (what the CLI would print)."""

    def __init__(self):
        self.messages: list[str] = []
        self.on_stack_event = lambda event: self.messages.append(f"{event.resource} {event.status} {event.reason}")
        self.on_task = lambda event: self.messages.append(f"{event.host} {event.task} {event.message}")
        self.on_step = self.messages.append


@pytest.fixture
def package(tmp_path) -> RunnerPackage:
    wheel = tmp_path / "dataops-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"wheel")
    archive = tmp_path / "dataops-wheelhouse-0123.tar"
    archive.write_bytes(b"tar")
    return RunnerPackage(wheel, archive, ["dask==2026.8.0", "distributed==2026.8.0"])


def runner_file(folder: Path, text: str = "", name: str = "ops") -> Path:
    """A valid runner file, with ``text`` appended (later keys of a YAML mapping would clash: add new ones)."""
    path = folder / "runner.yaml"
    path.write_text(textwrap.dedent(f"""\
        name: {name}
        image: debian-12
        flavor: m1.small
        store: swift://ops/schedules
        operator_cidr: 192.0.2.2/32
    """) + textwrap.dedent(text))
    return path


def fixed_clock(text: str = "2027-01-15T08:30:00"):
    return lambda: datetime.fromisoformat(text).replace(tzinfo=UTC)
