"""Flavors of the CI control plane schedule through the real Nova and Placement."""

from __future__ import annotations

import os

import pytest

pytestmark = [pytest.mark.openstack, pytest.mark.integration]

GPU_FLAVOR = os.environ.get("DATAOPS_TEST_GPU_FLAVOR", "dataops.gpu.small")
IMAGE = os.environ.get("DATAOPS_TEST_IMAGE", "dataops-tiny")


def test_gpu_flavor_schedules_on_the_gpu_resource_class(cloud, unique_name):
    flavor = cloud.compute.find_flavor(GPU_FLAVOR, ignore_missing=True)
    if flavor is None:
        pytest.skip(f"the cloud has no GPU flavor {GPU_FLAVOR!r} (set DATAOPS_TEST_GPU_FLAVOR)")
    assert flavor.extra_specs.get("resources:CUSTOM_GPU") == "1"
    image = cloud.image.find_image(IMAGE, ignore_missing=False)
    server = cloud.compute.create_server(name=unique_name, flavor_id=flavor.id, image_id=image.id, networks="none")
    try:
        server = cloud.compute.wait_for_server(server, status="ACTIVE", failures=["ERROR"], interval=2, wait=300)
        assert server.status == "ACTIVE"
    finally:
        cloud.compute.delete_server(server, ignore_missing=True)
        cloud.compute.wait_for_delete(server, interval=2, wait=300)
