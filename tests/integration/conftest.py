"""Fixtures connecting to a real OpenStack cloud.

The cloud comes from ``OS_CLOUD`` (default ``dataops-ci``, the control plane of ``devstack/controlplane.sh``)
and clouds.yaml (``OS_CLIENT_CONFIG_FILE``, default the control plane's ``devstack/.state/clouds.yaml`` when it
exists). The second project, for isolation tests, is ``OS_CLOUD_OTHER`` (default ``dataops-ci-other``).
Outside CI an unreachable cloud skips these tests with the reason; in CI (``CI`` set) it fails them.
"""

from __future__ import annotations

import os
import runpy
import shutil
import uuid
from pathlib import Path

import pytest
import yaml

from orchestrator.errors import CloudError
from orchestrator.openstack import connect

TEST_PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl test"
CONTROL_PLANE_CLOUDS = Path(__file__).resolve().parents[2] / "devstack" / ".state" / "clouds.yaml"

if "OS_CLIENT_CONFIG_FILE" not in os.environ and CONTROL_PLANE_CLOUDS.is_file():
    os.environ["OS_CLIENT_CONFIG_FILE"] = str(CONTROL_PLANE_CLOUDS)
# Commands the tests run (the dataops CLI) find the same cloud as the fixtures.
os.environ.setdefault("OS_CLOUD", "dataops-ci")


def _connect_or_skip(name: str):
    try:
        return connect(name)
    except CloudError as exc:
        reason = (
            f"OpenStack cloud {name!r} is not reachable ({exc}); "
            "bring one up with `devstack/controlplane.sh up` or set OS_CLOUD"
        )
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture(scope="session")
def cloud():
    """A connection to the test project's cloud (``OS_CLOUD``, default ``dataops-ci``)."""
    conn = _connect_or_skip(os.environ.get("OS_CLOUD", "dataops-ci"))
    yield conn
    conn.close()


@pytest.fixture(scope="session")
def other_cloud():
    """A connection to a second project of the same cloud (``OS_CLOUD_OTHER``, default ``dataops-ci-other``)."""
    conn = _connect_or_skip(os.environ.get("OS_CLOUD_OTHER", "dataops-ci-other"))
    yield conn
    conn.close()


@pytest.fixture()
def unique_name():
    """A name no other test run uses, so runs against a shared cloud never collide."""
    return f"dataops-test-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def admin_cloud():
    """The cloud's administrator (``OS_CLOUD_ADMIN``, default ``dataops-ci-admin``), for quotas and hypervisors."""
    return _connect_or_skip(os.environ.get("OS_CLOUD_ADMIN", "dataops-ci-admin"))


@pytest.fixture(scope="session")
def netns_compute(cloud, admin_cloud):
    """Require a cloud whose servers are real namespace hosts (the CI control plane run as root)."""
    admin = admin_cloud
    if "netns" not in {h.hypervisor_type for h in admin.compute.hypervisors(details=True)}:
        reason = "the cloud's compute driver is not the netns driver (devstack/controlplane.sh up, as root)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return cloud


@pytest.fixture()
def swift_container(cloud, unique_name):
    """A container name no other run uses; the container and its segments container are emptied and deleted after."""
    from support.swift_cleanup import remove_container

    yield unique_name
    remove_container(cloud, unique_name)


# The flights example, laid out once per test session, with a lighter model so the tests stay quick.
EXAMPLE = Path(__file__).parents[2] / "examples" / "flights"


@pytest.fixture(scope="session")
def flights_data(tmp_path_factory) -> Path:
    """The example's data files, downloaded and laid out once."""
    folder = tmp_path_factory.mktemp("flights-data")
    runpy.run_path(str(EXAMPLE / "get_data.py"), run_name="not_main")["main"](folder)
    return folder


@pytest.fixture()
def flights_dir(tmp_path, flights_data) -> Path:
    """A copy of the example folder (its data linked in) whose model trains in seconds."""
    folder = tmp_path / "flights"
    folder.mkdir()
    shutil.copy(EXAMPLE / "features.py", folder)
    (folder / "data").symlink_to(flights_data)
    spec = yaml.safe_load((EXAMPLE / "pipeline.yaml").read_text())
    spec["model"]["params"] = {"max_iter": 30, "early_stopping": False}
    spec["model"]["tuning"]["space"] = {"learning_rate": [0.1, 0.2]}
    (folder / "pipeline.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return folder


@pytest.fixture()
def keypair(cloud):
    """A Nova key pair of the test project (a fixed test public key), deleted afterwards."""
    name = f"dataops-test-{uuid.uuid4().hex[:8]}"
    cloud.compute.create_keypair(name=name, public_key=TEST_PUBLIC_KEY)
    yield name
    cloud.compute.delete_keypair(name, ignore_missing=True)


@pytest.fixture()
def openstack_cli() -> str:
    """The plain `openstack` CLI (python-openstackclient with python-heatclient), for templates used without dataops."""
    found = os.environ.get("OPENSTACK_CLI") or shutil.which("openstack")
    fallback = Path("/var/cache/dataops-controlplane/venv/bin/openstack")
    if not found and fallback.exists():
        found = str(fallback)
    if not found:
        pytest.skip("no openstack CLI (python-openstackclient with python-heatclient)")
    return found
