"""Upload and download of one large artifact: SwiftStore against python-swiftclient's ``swift`` CLI.

Both run against the same Swift, in the same run, interleaved round by round; the CLI uses the same token and
storage URL (no authentication cost on either side). Prints per-round throughputs, medians and the ratios
SwiftStore / CLI (goal: >= 1.0x both ways).

    python bench/swift_store.py [--size-mib 1024] [--rounds 3] [--cloud dataops-ci] [--swift PATH]

The cloud comes from ``--cloud`` / ``OS_CLOUD`` (default ``dataops-ci``) and clouds.yaml (default the CI control
plane's ``devstack/.state/clouds.yaml``). The ``swift`` CLI defaults to the control plane's virtualenv.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONTROL_PLANE_CLOUDS = REPO / "devstack" / ".state" / "clouds.yaml"
DEFAULT_SWIFT_CLI = "/var/cache/dataops-controlplane/venv/bin/swift"


def make_file(path: Path, size: int) -> None:
    """Random bytes (incompressible), written in 8 MiB blocks."""
    block = 8 << 20
    with open(path, "wb") as out:
        remaining = size
        while remaining:
            n = min(block, remaining)
            out.write(os.urandom(n))
            remaining -= n


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cloud", default=os.environ.get("OS_CLOUD", "dataops-ci"))
    parser.add_argument("--swift", default=shutil.which("swift") or DEFAULT_SWIFT_CLI, help="swift CLI to compare")
    parser.add_argument("--workdir", default=str(REPO / "bench" / ".data"))
    args = parser.parse_args()
    if "OS_CLIENT_CONFIG_FILE" not in os.environ and CONTROL_PLANE_CLOUDS.is_file():
        os.environ["OS_CLIENT_CONFIG_FILE"] = str(CONTROL_PLANE_CLOUDS)

    sys.path.insert(0, str(REPO))
    from orchestrator.artifacts.swift import SEGMENT_SUFFIX, SwiftStore
    from orchestrator.openstack import connect
    import openstack.exceptions

    conn = connect(args.cloud)
    container = f"dataops-bench-{uuid.uuid4().hex[:8]}"
    store = SwiftStore(container, conn=conn, cache_dir=Path(args.workdir) / "cache")
    size = args.size_mib << 20
    work = Path(tempfile.mkdtemp(dir=Path(args.workdir).mkdir(parents=True, exist_ok=True) or args.workdir))
    src = work / "artifact.bin"
    print(f"writing {args.size_mib} MiB of random data ...", file=sys.stderr)
    make_file(src, size)
    digest = hashlib.sha256()
    with open(src, "rb") as handle:
        for chunk in iter(lambda: handle.read(8 << 20), b""):
            digest.update(chunk)
    expected = digest.hexdigest()
    cli_env = dict(os.environ, OS_AUTH_TOKEN=conn.auth_token, OS_STORAGE_URL=conn.object_store.get_endpoint())
    cli = [args.swift, "--os-auth-token", conn.auth_token, "--os-storage-url", conn.object_store.get_endpoint()]

    results: dict[str, list[float]] = {"store_up": [], "cli_up": [], "store_down": [], "cli_down": []}
    try:
        for round_no in range(1, args.rounds + 1):
            up = timed(lambda: store.put_file("bench/artifact.bin", src))
            results["store_up"].append(up)
            cli_up = timed(lambda: subprocess.run(
                [*cli, "upload", container, str(src), "--object-name", "cli/artifact.bin"],
                check=True, env=cli_env, stdout=subprocess.DEVNULL))
            results["cli_up"].append(cli_up)
            out = work / "store.out"
            down = timed(lambda: store.get_file("bench/artifact.bin", out, sha256=expected))
            results["store_down"].append(down)
            out.unlink()
            cli_out = work / "cli.out"
            cli_down = timed(lambda: subprocess.run(
                [*cli, "download", container, "cli/artifact.bin", "--output", str(cli_out)],
                check=True, env=cli_env, stdout=subprocess.DEVNULL))
            results["cli_down"].append(cli_down)
            cli_out.unlink()
            print(f"round {round_no}: " + "  ".join(
                f"{name} {args.size_mib / results[name][-1]:.0f} MiB/s" for name in results))
    finally:
        for c in (container, container + SEGMENT_SUFFIX):
            try:
                for obj in list(conn.object_store.objects(c)):
                    conn.object_store.delete_object(obj, container=c, ignore_missing=True)
            except openstack.exceptions.NotFoundException:
                continue
            conn.object_store.delete_container(c, ignore_missing=True)
        shutil.rmtree(work, ignore_errors=True)

    med = {name: args.size_mib / statistics.median(times) for name, times in results.items()}
    print(f"\n{args.size_mib} MiB artifact, {args.rounds} interleaved rounds, median throughput:")
    print(f"  upload    SwiftStore {med['store_up']:7.1f} MiB/s   swift CLI {med['cli_up']:7.1f} MiB/s"
          f"   ratio {med['store_up'] / med['cli_up']:.2f}x")
    print(f"  download  SwiftStore {med['store_down']:7.1f} MiB/s   swift CLI {med['cli_down']:7.1f} MiB/s"
          f"   ratio {med['store_down'] / med['cli_down']:.2f}x")


if __name__ == "__main__":
    main()
