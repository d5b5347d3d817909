"""Schedule runner VMs on the CI control plane, with real hosts behind their servers (the netns compute driver): two
runners created at the same time on the network of a Dask cluster (made by the operator, over TLS) tick one Swift
store with credentials of their own. Schedules made on the operator's side, due every minute, run there unattended:
one history record and one run per slot, never a slot twice, the steady schedule's runs on the cluster's scheduler
with a client certificate issued to each runner; a tick killed in the middle of a run is resumed from the stage
cache by the next one, still with one history record; a failing pipeline fires its hook on the VM and pauses its
schedule. Deleting both runners leaves no server, port, security group, key pair, credential or rule on the
cluster's group behind, a runner created afterwards carries on with the history intact, and the cluster deleted
last leaves nothing either.

The cluster, the runners, the store and the schedules are shared by the module's tests, which run in order."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from netns_driver.netns_host import assert_routed_through_bridge, bridge_name, free_subnet, server_namespace
from support.netns_clusters import RouteCheckedConfigure
from support.netns_clusters import left_behind as cluster_left_behind

from orchestrator.ansible.playbook import run_playbook
from orchestrator.artifacts.lineage import list_run_ids, load_record
from orchestrator.artifacts.swift import SwiftStore
from orchestrator.clusters import provision as clusters
from orchestrator.clusters.provision import Progress
from orchestrator.clusters.spec import ClusterSpec
from orchestrator.clusters.state import cluster_state, ensure_ssh_key
from orchestrator.clusters.wheelhouse import build_wheelhouse, pinned_requirements
from orchestrator.openstack.app_credentials import KeystoneApplicationCredentials
from orchestrator.openstack.cluster_cloud import OpenStackClusterCloud
from orchestrator.runners import provision
from orchestrator.runners.credential import is_credential_of
from orchestrator.runners.spec import load_runner_spec
from orchestrator.runners.state import runner_state
from orchestrator.scheduling.state import ScheduleState, iso
from orchestrator.usecases.runners import cluster_seat, runner_package
from orchestrator.usecases.schedules import create_schedule

pytestmark = [pytest.mark.integration, pytest.mark.openstack, pytest.mark.netns]

FLAVOR = os.environ.get("DATAOPS_TEST_FLAVOR", "dataops.cpu.small")
IMAGE = os.environ.get("DATAOPS_TEST_IMAGE", "dataops-tiny")
TIMEOUT = float(os.environ.get("DATAOPS_TEST_STACK_TIMEOUT", "600"))
DATAOPS = Path(sys.executable).with_name("dataops")
# What the failure hook appends to, on the runner VM that ran the failed slot.
HOOK_FILE = "/opt/dataops/work/failures.jsonl"
# The slow pipeline's features stage takes this long: the window in which its tick is killed.
SLOW_SECONDS = 20
SSH_OPTIONS = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "IdentitiesOnly=yes",
               "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR"]
# Run on a runner VM: SIGKILL the tick loop under the supervisor, with every process it started (its Dask workers).
KILL_TICK = """
import os, signal, subprocess
supervisor = int(open("/opt/dataops/run/dataops-tick.pid").read())
table = [line.split() for line in subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True,
                                                  text=True).stdout.splitlines()]
children = {}
for pid, ppid in table:
    children.setdefault(int(ppid), []).append(int(pid))
(tick,) = children[supervisor]
doomed, pending = [], [tick]
while pending:
    pid = pending.pop()
    doomed.append(pid)
    pending += children.get(pid, [])
for pid in doomed:
    os.kill(pid, signal.SIGKILL)
print(tick)
"""


def _wait(what: str, predicate, timeout_s: float, explain=lambda: ""):
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not after {timeout_s:.0f} s\n{explain()}")
        time.sleep(2)


class RouteChecked:
    """Runs the playbook only once the runner's address is checked to route through its network's bridge."""

    def __init__(self, runner: str):
        self.runner = runner

    def __call__(self, playbook, inventory, extravars, **kwargs):
        bridge = bridge_name(runner_state(self.runner).load()["outputs"]["network_id"])
        for host in inventory["all"]["children"]["runner"]["hosts"].values():
            assert_routed_through_bridge(host["ansible_host"], bridge)
        return run_playbook(playbook, inventory, extravars, **kwargs)


class Fleet:
    """The module's store, schedules and runner VMs, on the operator's side."""

    def __init__(self, conn, container: str, folder: Path):
        self.conn, self.folder, self.container = conn, folder, container
        self.location = f"swift://{container}"
        self.cloud, self.credentials = OpenStackClusterCloud(conn), KeystoneApplicationCredentials(conn)
        self.store = SwiftStore(container, conn=conn, cache_dir=folder / "swift-cache")
        self.created: dict[str, provision.RunnerReady | None] = {}
        self.timings: dict[str, float] = {}
        self.prefix = f"rv{uuid.uuid4().hex[:5]}"
        self.lock = threading.Lock()

    # --- runners ----------------------------------------------------------------------------------------

    # --- the cluster ------------------------------------------------------------------------------------

    def create_cluster(self, wheelhouse_dir: Path) -> clusters.ClusterReady:
        """A scheduler and one worker on a network of their own, as an operator makes them."""
        self.cluster = f"{self.prefix}k"
        self.cluster_subnet = free_subnet()
        spec = ClusterSpec.model_validate({
            "name": self.cluster, "image": IMAGE, "scheduler": {"flavor": FLAVOR},
            "workers": {"flavor": FLAVOR, "count": 1}, "network": {"cidr": str(self.cluster_subnet)},
            "access": "direct", "operator_cidr": f"{self.cluster_subnet.network_address + 1}/32",
        })
        wheelhouse = build_wheelhouse(pinned_requirements(), wheelhouse_dir)
        started = time.monotonic()
        ready = clusters.create_cluster(spec, self.cloud, configure=RouteCheckedConfigure(), wheelhouse=wheelhouse,
                                        stack_timeout_s=TIMEOUT)
        self.timings["cluster"] = time.monotonic() - started
        self.cluster_servers = [s.id for s in self.conn.compute.servers() if s.name.startswith(self.cluster)]
        return ready

    def cluster_rules(self) -> list[str]:
        """The rules of the cluster's group that admit a runner's group (each runner's stack adds one)."""
        group = cluster_state(self.cluster).load_record()["outputs"]["security_group_id"]
        return [r.id for r in self.conn.network.security_group_rules(security_group_id=group)
                if r.remote_group_id and r.remote_group_id != group]

    # --- runners ----------------------------------------------------------------------------------------

    def create_runner(self, letter: str) -> provision.RunnerReady:
        """A runner on the cluster's network, admitted to its scheduler."""
        name = f"{self.prefix}{letter}"
        with self.lock:
            self.created[name] = None
        file = self.folder / f"{name}.yaml"
        file.write_text(yaml.safe_dump({
            "name": name, "image": IMAGE, "flavor": FLAVOR, "store": self.location, "cluster": self.cluster,
            # The operator is the machine itself, on its side of the cluster network's bridge.
            "operator_cidr": f"{self.cluster_subnet.network_address + 1}/32", "every": "60s",
            "credential_ttl": "1d",
        }))
        spec = load_runner_spec(file)
        public_key = ensure_ssh_key(runner_state(name).ssh_key, provision.keypair_name(name))
        steps = Progress(on_step=lambda message: print(f"[{name}] {message}", flush=True))
        ready = provision.create_runner(spec, self.cloud, self.credentials, self.package, public_key, steps,
                                        configure=RouteChecked(name), stack_timeout_s=TIMEOUT,
                                        seat=cluster_seat(name, self.cluster))
        self.created[name] = ready
        print(f"[{name}] ready as {ready.runner_id}: Heat {ready.timings['heat']:.0f} s, installation "
              f"{ready.timings['configure']:.0f} s, total {ready.timings['total']:.0f} s", flush=True)
        return ready

    def runner_of(self, runner_id: str) -> str:
        return next(name for name, ready in self.created.items() if ready and ready.runner_id == runner_id)

    def ssh(self, name: str, *argv: str) -> str:
        outputs = runner_state(name).load()["outputs"]
        assert_routed_through_bridge(outputs["address"], bridge_name(outputs["network_id"]))
        done = subprocess.run(["ssh", "-i", str(runner_state(name).ssh_key), *SSH_OPTIONS, f"root@{outputs['address']}",
                               shlex.join(argv)], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"ssh {name} {argv[0]}: {done.stderr[-1500:]}"
        return done.stdout

    def delete_with_cli(self, name: str) -> dict:
        """``dataops schedule runner delete NAME``, then what the cloud still holds of the runner."""
        outputs = runner_state(name).load()["outputs"]
        done = subprocess.run([str(DATAOPS), "schedule", "runner", "delete", name], capture_output=True, text=True,
                              timeout=900)
        assert done.returncode == 0, done.stderr[-2000:]
        return self.left_behind(name, outputs)

    def left_behind(self, name: str, outputs: dict) -> dict:
        conn = self.conn
        namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        links = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True).stdout
        server = str(outputs.get("server_id", ""))
        return {
            "stacks": [s.name for s in conn.orchestration.stacks() if s.name == provision.stack_name(name)
                       and s.status != "DELETE_COMPLETE"],
            "servers": [s.name for s in conn.compute.servers() if s.name == provision.stack_name(name)],
            "ports": [p.id for p in conn.network.ports(tags=[f"{provision.TAG_PREFIX}{name}"])],
            "security_groups": [g.name for g in conn.network.security_groups()
                                if g.name.startswith(f"{provision.stack_name(name)}-")],
            "keypairs": [k.name for k in conn.compute.keypairs() if k.name == provision.keypair_name(name)],
            "credentials": [c.name for c in conn.identity.application_credentials(conn.current_user_id)
                            if is_credential_of(c.name, name)],
            "namespaces": [server] if server and server_namespace(server) in namespaces else [],
            # A runner on the cluster's network leaves the cluster's bridge to the cluster.
            "bridges": [b for b in [bridge_name(outputs.get("network_id", ""))] if b in links
                        and outputs.get("network_id") != self.cluster_network],
        }

    # --- the store --------------------------------------------------------------------------------------

    def state(self, schedule: str) -> ScheduleState:
        return ScheduleState(self.store, schedule)

    def runs(self, pipeline: str) -> list[dict]:
        records = (load_record(self.store, run_id) for run_id in list_run_ids(self.store))
        return [r for r in records if r["pipeline"]["name"] == pipeline]

    def explain(self, *schedules: str):
        def text() -> str:
            lines = []
            for schedule in schedules:
                for record in self.state(schedule).history():
                    lines.append(f"{schedule} {record.slot} {record.status} {record.reason} {record.attempts}")
            for name in self.created:
                if runner_state(name).exists():
                    lines.append(f"--- tick log of {name}")
                    try:
                        lines.append(self.ssh(name, "tail", "-n", "30", "/opt/dataops/log/dataops-tick.log"))
                    except (AssertionError, subprocess.SubprocessError) as exc:
                        lines.append(f"(unreadable: {exc})")
            return "\n".join(lines)
        return text


def _write_schedules(folder: Path, container: str, cluster: str) -> list[Path]:
    """Three schedules due every minute, each with its pipeline in a folder of its own (kept in the store with it);
    the steady one runs on ``cluster``, the others on the runner's own LocalCluster."""
    source = f"swift://{container}/sources"
    pipeline = textwrap.dedent("""
        name: {name}
        sources:
          events:
            location: {location}
        features:
          - {step}
        split:
          by: hash
          column: event_id
          fractions: {{train: 0.6, validation: 0.2, test: 0.1, serve: 0.1}}
    """).lstrip()
    for name, location, step in (
        ("steady", f"{source}/events.csv", 'derive: {big: "amount > 100"}'),
        ("slow", f"{source}/slow-events.csv", "function: waits:slowly"),
        ("failing", f"{source}/missing.csv", 'derive: {big: "amount > 100"}'),
    ):
        (folder / name).mkdir()
        (folder / name / "pipeline.yaml").write_text(pipeline.format(name=name, location=location, step=step))
    (folder / "slow" / "waits.py").write_text(textwrap.dedent(f"""
        import time


        def slowly(frame):
            # Dask calls this once on a two-row sample for the result's columns: only the real partition waits.
            if len(frame) > 10:
                time.sleep({SLOW_SECONDS})
            return frame
    """).lstrip())
    schedules = {
        "steady": {"cluster": cluster},
        # A run lease of 50 s: a killed run's slot is taken over by the next tick (the heartbeat's 2 minutes,
        # the longest a lapse waits, would take two ticks more).
        "slow": {"run_deadline": "50s"},
        "failing": {"pause_after_failures": 2,
                    "on_failure": {"command": ["sh", "-c", f"cat >> {HOOK_FILE} && echo >> {HOOK_FILE}"]}},
    }
    files = []
    for name, extra in schedules.items():
        path = folder / f"{name}.yaml"
        path.write_text(yaml.safe_dump({"name": name, "pipeline": f"{name}/pipeline.yaml", "cron": "* * * * *",
                                        **extra}))
        files.append(path)
    return files


def _upload_sources(store: SwiftStore, folder: Path) -> None:
    for name, rows in (("events.csv", 400), ("slow-events.csv", 300)):
        path = folder / name
        path.write_text("event_id,amount\n" + "".join(f"{i},{(i * 37) % 250}\n" for i in range(rows)))
        store.put_file(f"sources/{name}", path)


@pytest.fixture(scope="module")
def fleet(netns_compute, tmp_path_factory):
    """Two runners created at the same time on one store, then the schedules (made on the operator's side, in a
    folder the VMs cannot see); every runner and the store are removed at the end, whatever happened."""
    from support.swift_cleanup import remove_container

    started = time.monotonic()
    folder = tmp_path_factory.mktemp("runner-vm")
    runners_dir = folder / "runners"
    previous = os.environ.get("DATAOPS_RUNNERS_DIR")
    os.environ["DATAOPS_RUNNERS_DIR"] = str(runners_dir)  # this process and the CLI it runs
    previous_clusters = os.environ.get("DATAOPS_CLUSTERS_DIR")
    os.environ["DATAOPS_CLUSTERS_DIR"] = str(folder / "clusters")
    fleet = Fleet(netns_compute, f"dataops-test-{uuid.uuid4().hex[:10]}", folder)
    try:
        # The cluster is built while the runner's wheels are: they share nothing but the machine.
        with ThreadPoolExecutor(1) as pool:
            cluster = pool.submit(fleet.create_cluster, tmp_path_factory.getbasetemp().parent / "dataops-wheelhouse")
            fleet.package = runner_package("3.11")
            fleet.timings["package"] = time.monotonic() - started
            _upload_sources(fleet.store, folder)
            fleet.cluster_ready = cluster.result()
        fleet.cluster_network = cluster_state(fleet.cluster).load_record()["outputs"]["network_id"]
        runners_started = time.monotonic()
        with ThreadPoolExecutor(2) as pool:
            for future in [pool.submit(fleet.create_runner, letter) for letter in "ab"]:
                future.result()
        fleet.timings["two runners"] = time.monotonic() - runners_started
        (folder / "schedules").mkdir()
        for path in _write_schedules(folder / "schedules", fleet.container, fleet.cluster):
            create_schedule(path, fleet.location)
        fleet.schedules_at = datetime.now(UTC)
        yield fleet
    finally:
        for name in fleet.created:
            provision.delete_runner(name, fleet.cloud, fleet.credentials, TIMEOUT)
        # Its runners' ports are on its network: the cluster goes last.
        if getattr(fleet, "cluster", None):
            clusters.delete_cluster(fleet.cluster, fleet.cloud)
        remove_container(netns_compute, fleet.container)
        for variable, value in (("DATAOPS_RUNNERS_DIR", previous), ("DATAOPS_CLUSTERS_DIR", previous_clusters)):
            if value is None:
                os.environ.pop(variable)
            else:
                os.environ[variable] = value
        print(f"\nrunner VM module: {time.monotonic() - started:.0f} s; " +
              ", ".join(f"{k} {v:.0f} s" for k, v in fleet.timings.items()), flush=True)


def _first_slot(fleet: Fleet) -> datetime:
    return (fleet.schedules_at + timedelta(minutes=1)).replace(second=0, microsecond=0)


def test_a_tick_killed_in_the_middle_of_a_run_is_resumed_from_the_cache_with_one_history_record(fleet):
    state, slot = fleet.state("slow"), _first_slot(fleet)
    explain = fleet.explain("slow")

    def killed_run_halfway():
        runs = [r for r in fleet.runs("slow") if r["parameters"].get("as_of") == iso(slot)]
        return runs[0] if runs and "ingest.events" in runs[0]["stages"] else None

    killed = _wait("the slow slot's run past its ingest stage", killed_run_halfway, 150, explain)
    assert "features" not in killed["stages"], "the kill must come while the slow features stage runs"
    (attempt,) = state.record(slot).attempts
    victim = fleet.runner_of(attempt["runner"])
    tick = fleet.ssh(victim, "/usr/bin/python3", "-c", KILL_TICK).strip()
    print(f"killed the tick (pid {tick}) of {victim} during slot {iso(slot)}", flush=True)

    record = _wait("the killed slot resumed and succeeded", lambda: (r := state.record(slot)) and r.status ==
                   "succeeded" and r, 200, explain)
    assert [(a["runner"], a["outcome"]) for a in record.attempts] == [
        (attempt["runner"], "lost"), (record.attempts[1]["runner"], "succeeded")]
    assert record.attempts[1].get("resumed") is True
    assert [r.slot for r in state.history()].count(iso(slot)) == 1, "one history record for the slot"
    runs = {r["run_id"]: r for r in fleet.runs("slow") if r["parameters"].get("as_of") == iso(slot)}
    assert runs[killed["run_id"]]["status"] == "running", "the killed run never finished"
    (resumed,) = [runs[run_id] for run_id in record.run_ids]
    assert resumed["status"] == "succeeded"
    statuses = {stage: entry["status"] for stage, entry in resumed["stages"].items()}
    assert statuses["ingest.events"] == "cached" and statuses["features"] == "ran", statuses
    subprocess.run([str(DATAOPS), "schedule", "pause", "slow", "--store", fleet.location], check=True,
                   capture_output=True, timeout=120)


def test_two_runners_run_every_due_slot_once_each_with_its_run_in_the_store(fleet):
    state, first = fleet.state("steady"), _first_slot(fleet)
    slots = [first + timedelta(minutes=n) for n in range(3)]
    records = _wait("three steady slots succeeded", lambda: (found := [state.record(s) for s in slots]) and all(
        r is not None and r.status == "succeeded" for r in found) and found, 300, fleet.explain("steady"))
    runs = fleet.runs("steady")
    for slot, record in zip(slots, records):
        assert len(record.attempts) == 1, f"slot {record.slot} was attempted more than once: {record.attempts}"
        assert len(state.leases(slot)) == 1, f"slot {record.slot} was leased more than once"
        same_slot = [r for r in runs if r["parameters"].get("as_of") == iso(slot)]
        assert [r["run_id"] for r in same_slot] == record.run_ids, "exactly one run per slot, the recorded one"
        run = load_record(fleet.store, record.run_ids[0])
        assert run["status"] == "succeeded"
        assert run["scheduler"] == fleet.cluster_ready.scheduler_url, "the steady runs are on the cluster"
    assert len(fleet.cluster_rules()) == 2, "the cluster's group admits each runner's group, by a rule of its own"
    attempts = [a["runner"] for name in ("steady", "slow", "failing") for r in fleet.state(name).history()
                for a in r.attempts]
    assert {fleet.runner_of(runner) for runner in attempts} == set(fleet.created), "both runners ran slots"


def test_a_failing_pipeline_fires_its_hook_on_the_vm_and_pauses_its_schedule(fleet):
    state = fleet.state("failing")
    control = _wait("the failing schedule paused", lambda: (c := state.control()).paused and c, 240,
                    fleet.explain("failing"))
    assert control.paused_reason.startswith("paused after 2 slots failed in a row")
    failed = [r for r in state.history() if r.status == "failed"]
    assert len(failed) == 2 and all("missing.csv" in r.reason for r in failed), [r.reason for r in failed]
    assert all(r.hook and r.hook["ok"] for r in failed), [r.hook for r in failed]
    summaries = []
    for name in fleet.created:
        text = fleet.ssh(name, "sh", "-c", f"cat {HOOK_FILE} 2>/dev/null || true")
        summaries += [json.loads(line) for line in text.splitlines() if line.strip()]
    assert sorted((s["schedule"], s["slot"], s["consecutive_failures"], s["paused"]) for s in summaries) == [
        ("failing", failed[0].slot, 1, False), ("failing", failed[1].slot, 2, True)]


def test_each_runner_s_credential_is_its_own_restricted_expiring_and_kept_on_its_vm_alone(fleet):
    conn = fleet.conn
    for name, ready in fleet.created.items():
        kept = conn.identity.get_application_credential(conn.current_user_id, ready.credential.id)
        assert kept.unrestricted is False and {r["name"] for r in kept.roles} <= {"member", "reader"}
        expires = datetime.fromisoformat(kept.expires_at).replace(tzinfo=UTC)
        assert timedelta(hours=23) < expires - datetime.now(UTC) <= timedelta(days=1)
        assert {r["path"] for r in kept.access_rules} == {
            f"/v1/*/{c}{tail}" for c in (fleet.container, f"{fleet.container}_segments") for tail in ("", "/**")}
        files = ["/opt/dataops/etc/clouds.yaml", "/opt/dataops/etc/runner.env",
                 f"/opt/dataops/clusters/{fleet.cluster}/tls/client.key"]
        modes = fleet.ssh(name, "stat", "-c", "%a %U %n", *files)
        assert modes.splitlines() == [f"600 root {path}" for path in files], "readable by root only"
        subject = fleet.ssh(name, "/opt/dataops/venv/bin/python", "-c",
                            "import sys; from cryptography import x509; "
                            "print(x509.load_pem_x509_certificate(open(sys.argv[1], 'rb').read()).subject)",
                            f"/opt/dataops/clusters/{fleet.cluster}/tls/client.pem")
        assert f"runner-{name}" in subject, "a client certificate of the cluster's CA for this runner alone"
        assert fleet.ssh(name, "ls", f"/opt/dataops/clusters/{fleet.cluster}/tls").split() == [
            "ca.pem", "client.key", "client.pem"], "no CA key on the runner"
        clouds = yaml.safe_load(fleet.ssh(name, "cat", "/opt/dataops/etc/clouds.yaml"))
        secret = clouds["clouds"]["dataops-runner"]["auth"]["application_credential_secret"]
        stack = conn.orchestration.find_stack(provision.stack_name(name))
        stack = conn.orchestration.get_stack(stack.id)
        places = {
            "stack parameters": json.dumps(stack.parameters),
            "stack outputs": json.dumps(stack.outputs),
            "stack environment": json.dumps(conn.orchestration.get_stack_environment(stack)),
            "the operator's runner folder": "".join(
                p.read_text(errors="replace") for p in runner_state(name).directory.iterdir() if p.is_file()),
            "the tick's log": fleet.ssh(name, "cat", "/opt/dataops/log/dataops-tick.log"),
            "the tick's environment": fleet.ssh(name, "cat", "/opt/dataops/etc/runner.env"),
        }
        assert [where for where, text in places.items() if secret in text] == [], f"the secret of {name} leaked"


def test_runners_deleted_leave_nothing_and_a_new_runner_carries_on_with_the_history(fleet):
    state = fleet.state("steady")
    before = {r.slot: r.to_dict() for r in state.history()}
    old = list(fleet.created)
    started = time.monotonic()
    with ThreadPoolExecutor(3) as pool:
        replacement = pool.submit(fleet.create_runner, "c")
        left = dict(zip(old, pool.map(fleet.delete_with_cli, old)))
        deleted_at = datetime.now(UTC)
        ready = replacement.result()
    fleet.timings["replacement"] = time.monotonic() - started
    for name, found in left.items():
        assert found == {k: [] for k in found}, f"runner {name} left {found}"
    assert not any(runner_state(name).exists() for name in old)

    def carried_on():
        return [r for r in state.history() if r.status == "succeeded" and r.attempts[-1]["runner"] == ready.runner_id]

    (first, *_) = _wait("a steady slot run by the new runner", carried_on, 200, fleet.explain("steady"))
    assert first.slot > iso(deleted_at.replace(second=0, microsecond=0) - timedelta(minutes=1))
    records = state.history()
    history = {r.slot: r.to_dict() for r in records}
    decided = {slot: record for slot, record in before.items() if record["status"] in ("succeeded", "failed")}
    assert {slot: history.get(slot) for slot in decided} == decided, "the history from before is intact"
    assert [r.slot for r in records] == sorted({r.slot for r in records}), "one record per slot"

    found = fleet.delete_with_cli(ready.name)
    assert found == {k: [] for k in found}, f"runner {ready.name} left {found}"
    assert fleet.cluster_rules() == [], "each runner's rule on the cluster's group goes with its stack"
    network = fleet.cluster_network
    clusters.delete_cluster(fleet.cluster, fleet.cloud)
    left = cluster_left_behind(fleet.conn, fleet.cluster, fleet.cluster_servers, network)
    assert left == {k: [] for k in left}, f"cluster {fleet.cluster} left {left}"
    conn = fleet.conn
    rules = [r.path for r in conn.identity.access_rules(conn.current_user_id) if fleet.container in r.path]
    assert rules == [], "the access rules go with the last credential that had them"
    listed = subprocess.run([str(DATAOPS), "schedule", "runner", "list"], capture_output=True, text=True, timeout=120)
    assert listed.stderr.strip() == "No runners."
