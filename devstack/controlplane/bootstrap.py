"""Register the CI control plane's catalog and test resources through openstacksdk, in one process.

The ``openstack`` CLI costs several seconds per call on a small machine; one SDK session does the whole
set-up in seconds. Every step is find-or-create, so running it twice changes nothing.

Usage (inside the control plane's virtualenv)::

    python bootstrap.py catalog   # service project, service users, roles, domains, endpoints
    python bootstrap.py cloud     # flavors, image, external network, test projects and users, quotas

Configuration comes from the environment set by ``controlplane.sh``: DATAOPS_CP_IP, DATAOPS_CP_STATE,
DATAOPS_CP_ADMIN_PASSWORD, DATAOPS_CP_SERVICE_PASSWORD, DATAOPS_CP_USER_PASSWORD.
"""

from __future__ import annotations

import datetime
import io
import ipaddress
import json
import os
import subprocess
import sys
import time

import openstack

IP = os.environ["DATAOPS_CP_IP"]
STATE = os.environ["DATAOPS_CP_STATE"]
REGION = "RegionOne"
KEYSTONE = f"http://{IP}:5000/v3"

ENDPOINTS = {
    # service name: (type, url)
    "nova": ("compute", f"http://{IP}:8774/v2.1"),
    "placement": ("placement", f"http://{IP}:8778"),
    "glance": ("image", f"http://{IP}:9292"),
    "neutron": ("network", f"http://{IP}:9696"),
    "heat": ("orchestration", f"http://{IP}:8004/v1/%(project_id)s"),
    "swift": ("object-store", f"http://{IP}:8080/v1/AUTH_%(project_id)s"),
}

# Test projects: clouds.yaml name -> (project, user). Two projects prove isolation between tenants.
TEST_PROJECTS = {"dataops-ci": ("dataops-dev", "dataops-dev"), "dataops-ci-other": ("dataops-other", "dataops-other")}

FLAVORS = {
    # name: (vcpus, ram MiB, disk GiB, extra specs)
    "dataops.cpu.small": (1, 512, 1, {}),
    "dataops.cpu.medium": (2, 2048, 2, {}),
    "dataops.gpu.small": (2, 2048, 2, {"resources:CUSTOM_GPU": "1", "trait:CUSTOM_GPU_A100": "required"}),
}
IMAGE = "dataops-tiny"
# Candidate ranges for the floating-IP subnet (documentation ranges); the first one overlapping no route wins.
EXTERNAL_CANDIDATES = ["203.0.113.0/24", "198.51.100.0/24", "100.64.250.0/24"]


def admin_connection() -> openstack.connection.Connection:
    """Connect as the bootstrap admin (system-wide admin role on the admin project)."""
    # Only these arguments: an OS_CLOUD or clouds.yaml of the caller (a test run restarting a service) would
    # otherwise be merged in, and its auth refused.
    return openstack.connect(
        load_yaml_config=False,
        load_envvars=False,
        auth_url=KEYSTONE,
        username="admin",
        password=os.environ["DATAOPS_CP_ADMIN_PASSWORD"],
        project_name="admin",
        user_domain_name="Default",
        project_domain_name="Default",
        region_name=REGION,
        identity_api_version="3",
    )


def ensure_user(ident, name: str, password: str, domain_id: str = "default"):
    user = ident.find_user(name, domain_id=domain_id)
    if user is None:
        user = ident.create_user(name=name, password=password, domain_id=domain_id)
    return user


def ensure_role(ident, name: str):
    return ident.find_role(name) or ident.create_role(name=name)


def register_catalog(conn) -> None:
    """Service users with admin + service roles, the heat stack domain and every endpoint."""
    ident = conn.identity
    password = os.environ["DATAOPS_CP_SERVICE_PASSWORD"]
    service_project = ident.find_project("service", domain_id="default") or ident.create_project(
        name="service", domain_id="default"
    )
    admin, service = ident.find_role("admin"), ensure_role(ident, "service")
    for role in ("member", "reader", "heat_stack_owner", "heat_stack_user", "ResellerAdmin"):
        ensure_role(ident, role)
    for name in ENDPOINTS:
        user = ensure_user(ident, name, password)
        ident.assign_project_role_to_user(service_project, user, admin)
        ident.assign_project_role_to_user(service_project, user, service)
    heat_domain = ident.find_domain("heat") or ident.create_domain(name="heat", description="Heat stack users")
    domain_admin = ensure_user(ident, "heat_domain_admin", password, domain_id=heat_domain.id)
    ident.assign_domain_role_to_user(heat_domain, domain_admin, admin)
    existing = {(e.service_id, e.interface) for e in ident.endpoints()}
    for name, (kind, url) in ENDPOINTS.items():
        svc = ident.find_service(name) or ident.create_service(name=name, type=kind)
        for interface in ("public", "internal", "admin"):
            if (svc.id, interface) not in existing:
                ident.create_endpoint(service_id=svc.id, interface=interface, url=url, region_id=REGION)
    print("catalog registered:", ", ".join(sorted(ENDPOINTS)))


def wait_for(what: str, check, timeout: float = 300.0, interval: float = 2.0):
    """Poll ``check`` until it returns a truthy value; exit with a message naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except openstack.exceptions.SDKException as exc:  # a service still starting answers 5xx
            value, last = None, exc
        else:
            last = None
        if value:
            return value
        if time.monotonic() > deadline:
            sys.exit(f"timed out after {timeout:.0f} s waiting for {what}" + (f": {last}" if last else ""))
        time.sleep(interval)


def heat_engine_up(conn) -> bool:
    # The SDK has no proxy call for Heat's service list: ask the API directly.
    response = conn.orchestration.get("/services")
    return response.ok and any(s["status"] == "up" for s in response.json()["services"])


def free_external_cidr() -> str:
    """The first candidate range that overlaps no route of this machine (the default route aside)."""
    routes = json.loads(subprocess.run(["ip", "-j", "route"], capture_output=True, check=True, text=True).stdout)
    taken = [ipaddress.ip_network(r["dst"]) for r in routes if r.get("dst") not in (None, "default")]
    for candidate in EXTERNAL_CANDIDATES:
        network = ipaddress.ip_network(candidate)
        if not any(network.overlaps(route) for route in taken):
            return candidate
    sys.exit(f"every external range candidate overlaps a route of this machine: {EXTERNAL_CANDIDATES}")


def ensure_flavors(conn) -> None:
    for name, (vcpus, ram, disk, specs) in FLAVORS.items():
        if conn.compute.find_flavor(name) is None:
            flavor = conn.compute.create_flavor(name=name, vcpus=vcpus, ram=ram, disk=disk, is_public=True)
            if specs:
                conn.compute.create_flavor_extra_specs(flavor, specs)


def ensure_image(conn) -> None:
    if conn.image.find_image(IMAGE) is None:
        # A raw image of zeros: the fake compute driver never boots it, Glance only has to store it.
        conn.image.create_image(
            name=IMAGE,
            data=io.BytesIO(bytes(64 * 1024)),
            disk_format="raw",
            container_format="bare",
            visibility="public",
            wait=True,
        )


def ensure_external_network(conn) -> str:
    net = conn.network.find_network("public")
    if net is None:
        net = conn.network.create_network(
            name="public",
            is_router_external=True,
            provider_network_type="flat",
            provider_physical_network="public",
        )
    subnet = conn.network.find_subnet("public-subnet")
    if subnet is None:
        cidr = free_external_cidr()
        subnet = conn.network.create_subnet(
            name="public-subnet", network_id=net.id, ip_version=4, cidr=cidr, enable_dhcp=False
        )
    return subnet.cidr


def ensure_test_projects(conn) -> None:
    ident = conn.identity
    password = os.environ["DATAOPS_CP_USER_PASSWORD"]
    member = ident.find_role("member")
    for project_name, user_name in TEST_PROJECTS.values():
        project = ident.find_project(project_name, domain_id="default") or ident.create_project(
            name=project_name, domain_id="default"
        )
        user = ensure_user(ident, user_name, password)
        ident.assign_project_role_to_user(project, user, member)
        # Nova's default of 10 members per server group would cap a cluster (one anti-affinity group) at 10 nodes.
        conn.set_compute_quotas(project.id, instances=50, cores=100, ram=102400, server_group_members=50)


def wait_services(conn, since: float) -> None:
    """Wait until Nova's services have reported since ``since`` (epoch seconds: when they were started) and the
    compute node is a hypervisor, and Heat's engine is up: a restarted service's old "up" does not count."""
    started = datetime.datetime.fromtimestamp(since, datetime.timezone.utc).replace(tzinfo=None)

    def reported(service) -> bool:
        updated = datetime.datetime.fromisoformat(str(service.updated_at).rstrip("Z")) if service.updated_at else None
        return service.state == "up" and updated is not None and updated.replace(tzinfo=None) >= started

    wait_for(
        "nova-conductor, nova-scheduler and nova-compute to report up",
        lambda: {s.binary for s in conn.compute.services() if reported(s)}
        >= {"nova-conductor", "nova-scheduler", "nova-compute"},
    )
    wait_for("the compute node to appear as a hypervisor", lambda: list(conn.compute.hypervisors()))
    wait_for("heat-engine to report up", lambda: heat_engine_up(conn))


def setup_cloud(conn) -> None:
    """Create the resources tests rely on (once the services are ready)."""
    ensure_flavors(conn)
    ensure_image(conn)
    cidr = ensure_external_network(conn)
    ensure_test_projects(conn)
    print(f"cloud ready: flavors {', '.join(FLAVORS)}; image {IMAGE}; external network public {cidr}")


def main(argv: list[str]) -> None:
    step = argv[1] if len(argv) > 1 else ""
    conn = admin_connection()
    if step == "catalog":
        register_catalog(conn)
    elif step == "ready":
        wait_services(conn, float(argv[2]))
    elif step == "cloud":
        setup_cloud(conn)
    else:
        sys.exit("usage: bootstrap.py catalog|ready SINCE_EPOCH|cloud")


if __name__ == "__main__":
    main(sys.argv)
