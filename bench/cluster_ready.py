"""Time to a ready cluster, split into Heat, configuration and our own overhead, against a baseline of the same
stack through ``openstack stack create --wait`` measured in the same run.

    OS_CLOUD=dataops-ci python -m bench cluster_ready [--workers 2,8,32] [--rounds 3] [--heat-only] [--wheelhouse DIR]

Without --heat-only the cloud's servers must be real hosts (Nova's compute driver netns_driver.driver.NetnsDriver)
and the configuration runs the site playbook on them, installing from a wheelhouse (built in DIR, default
~/.cache/dataops/wheelhouse, before the clock starts) as nodes without internet egress do. Rounds interleave the
baseline and ours. Goals: our Heat phase (create, wait, outputs) at most 1.10x the baseline at every size;
configuration time growing far slower than the number of workers.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from orchestrator.clusters import provision
from orchestrator.clusters.cloud import cluster_tag
from orchestrator.clusters.spec import ClusterSpec, heat_parameters
from orchestrator.clusters.wheelhouse import build_wheelhouse, pinned_requirements

FLAVOR = os.environ.get("DATAOPS_TEST_FLAVOR", "dataops.cpu.small")
IMAGE = os.environ.get("DATAOPS_TEST_IMAGE", "dataops-tiny")
# The `openstack` command: DATAOPS_OPENSTACK_CLI, else one on PATH, else the control plane's own (devstack/).
OPENSTACK_CLI = (os.environ.get("DATAOPS_OPENSTACK_CLI") or shutil.which("openstack")
                 or str(Path(os.environ.get("DATAOPS_CP_VENV", "/var/cache/dataops-controlplane/venv")) / "bin" / "openstack"))
TIMEOUT = 3600
GOAL_RATIO = 1.10


def _spec(name: str, workers: int) -> ClusterSpec:
    return ClusterSpec.model_validate({
        "name": name, "image": IMAGE, "scheduler": {"flavor": FLAVOR},
        "workers": {"flavor": FLAVOR, "count": workers}, "access": "direct",
        "network": {"cidr": "10.214.100.0/24"}, "operator_cidr": "127.0.0.1/32",
    })


def baseline_seconds(cloud, workers: int) -> float:
    """Seconds for ``openstack stack create --wait`` of the same template and parameters, then delete it."""
    name = f"b{uuid.uuid4().hex[:8]}"
    spec = _spec(name, workers)
    cloud.create_keypair(provision.keypair_name(name), _throwaway_public_key(), name)
    params = heat_parameters(spec, provision.keypair_name(name))
    argv = [OPENSTACK_CLI, "stack", "create", "--wait", "-t", str(provision.CLUSTER_TEMPLATE),
            "-e", str(provision.TEMPLATES / "environments/no_floating_ip.yaml")]
    for key, value in params.items():
        argv += ["--parameter", f"{key}={value}"]
    argv.append(name)
    started = time.monotonic()
    try:
        subprocess.run(argv, check=True, capture_output=True, timeout=TIMEOUT)
        return time.monotonic() - started
    finally:
        provision.delete_cluster(name, cloud, stack_timeout_s=TIMEOUT)


def ours(cloud, workers: int, heat_only: bool, wheelhouse: Path | None) -> dict:
    """Timings of our create (Heat, configuration, total), then delete the cluster."""
    name = f"o{uuid.uuid4().hex[:8]}"
    spec = _spec(name, workers)
    try:
        if heat_only:
            cloud.create_keypair(provision.keypair_name(name), _throwaway_public_key(), name)
            started = time.monotonic()
            cloud.create_stack(name, provision.CLUSTER_TEMPLATE,
                               [provision.TEMPLATES / "environments/no_floating_ip.yaml"],
                               heat_parameters(spec, provision.keypair_name(name)), tags=["dataops", cluster_tag(name)])
            cloud.wait_stack(name, "CREATE", lambda e: None, TIMEOUT)
            cloud.stack_outputs(name)
            total = time.monotonic() - started
            return {"heat": total, "configure": 0.0, "total": total}
        return provision.create_cluster(spec, cloud, wheelhouse=wheelhouse, stack_timeout_s=TIMEOUT).timings
    finally:
        provision.delete_cluster(name, cloud, stack_timeout_s=TIMEOUT)


def _throwaway_public_key() -> str:
    directory = tempfile.mkdtemp()
    try:
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{directory}/k"], check=True)
        return open(f"{directory}/k.pub").read().strip()
    finally:
        shutil.rmtree(directory)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="2,8,32")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--heat-only", action="store_true")
    parser.add_argument("--wheelhouse", type=Path, default=Path.home() / ".cache" / "dataops" / "wheelhouse")
    args = parser.parse_args(argv)
    wheelhouse = None if args.heat_only else build_wheelhouse(pinned_requirements(), args.wheelhouse)
    from orchestrator.openstack import connect
    from orchestrator.openstack.cluster_cloud import OpenStackClusterCloud

    cloud = OpenStackClusterCloud(connect())
    rows = []
    for workers in (int(w) for w in args.workers.split(",")):
        base, runs = [], []
        for round_ in range(args.rounds):
            # Interleaved, and the order alternates, so that neither side always meets a cloud warmed by the other.
            for side in (("baseline", "ours") if round_ % 2 == 0 else ("ours", "baseline")):
                if side == "baseline":
                    base.append(baseline_seconds(cloud, workers))
                else:
                    runs.append(ours(cloud, workers, args.heat_only, wheelhouse))
            print(f"{workers} workers, round {round_ + 1}: baseline {base[-1]:.1f} s, ours heat {runs[-1]['heat']:.1f} s",
                  flush=True)
        rows.append((workers, base, runs))
    print(f"\n{'workers':>7} {'baseline s':>10} {'ours heat s':>11} {'config s':>8} {'total s':>8} {'ours/baseline':>13}"
          f"  (medians of {args.rounds} rounds; the ratio is the median of per-round ratios)")
    for workers, base, runs in rows:
        ratio = statistics.median(r["heat"] / b for r, b in zip(runs, base))
        print(f"{workers:>7} {statistics.median(base):>10.1f} {statistics.median(r['heat'] for r in runs):>11.1f} "
              f"{statistics.median(r['configure'] for r in runs):>8.1f} {statistics.median(r['total'] for r in runs):>8.1f}"
              f" {ratio:>13.2f}")
    print(f"goal (ours heat <= {GOAL_RATIO}x baseline at every size): "
          f"{'met' if all(statistics.median(r['heat'] / b for r, b in zip(runs, base)) <= GOAL_RATIO for _, base, runs in rows) else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
