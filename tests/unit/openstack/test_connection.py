"""Connecting names the cloud, and SDK failures become CloudError."""

import keystoneauth1.exceptions
import openstack.exceptions
import pytest

from orchestrator.errors import CloudError
from orchestrator.openstack import cloud_errors, connect


def test_connect_without_a_cloud_name_or_os_cloud_says_what_to_set(monkeypatch):
    monkeypatch.delenv("OS_CLOUD", raising=False)
    with pytest.raises(CloudError, match="OS_CLOUD"):
        connect()


def test_connect_to_an_unknown_cloud_names_it(monkeypatch, tmp_path):
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text("clouds: {}\n")
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds))
    with pytest.raises(CloudError, match="'nowhere'"):
        connect("nowhere")


def test_connect_to_an_unreachable_cloud_fails_with_cloud_error(monkeypatch, tmp_path):
    clouds = tmp_path / "clouds.yaml"
    # Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    clouds.write_text(
        "clouds:\n  dead:\n    auth:\n      auth_url: http://127.0.0.1:9/v3\n      username: u\n"
        "      password: p\n      project_name: p\n      user_domain_name: Default\n"
        "      project_domain_name: Default\n    identity_api_version: 3\n"
    )
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds))
    with pytest.raises(CloudError, match="cannot connect to cloud 'dead'"):
        connect("dead")


@pytest.mark.parametrize(
    "raised",
    [
        openstack.exceptions.ResourceNotFound("No Stack found for x"),
        keystoneauth1.exceptions.ConnectFailure("refused"),
    ],
)
def test_sdk_and_http_failures_become_cloud_errors_naming_the_action(raised):
    with pytest.raises(CloudError, match="creating stack x: ") as info:
        with cloud_errors("creating stack x"):
            raise raised
    assert info.value.__cause__ is raised


def test_other_errors_pass_through_unchanged():
    with pytest.raises(ValueError):
        with cloud_errors("anything"):
            raise ValueError("a bug, not a cloud failure")
