"""The disk under a local store filling up in the middle of a stage (a small tmpfs mounted as the store's disk, filled
by the stage's own user function): `dataops run` fails with one line naming the store's path and "no space", no
partial artifact is visible in the store, and once space is freed the next run resumes after the stages that had
completed and finishes."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest
from typer.testing import CliRunner

from orchestrator.artifacts.local import STAGING, LocalStore
from orchestrator.artifacts.store import MANIFEST
from orchestrator.cli.main import app as dataops
from orchestrator.errors import ArtifactError
from tests.conftest import write
from tests.integration.pipeline.conftest import PIPELINE, make_shop
from tests.support.chaos_table import record as record_case

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

DISK = "8m"
# Run by the features stage on the worker: the first partition that sees the flag fills the disk, once.
FILLER = '''
from pathlib import Path

FLAG = Path({flag!r})
DISK = Path({disk!r})


def features(frame):
    if len(frame) and FLAG.exists():
        FLAG.unlink(missing_ok=True)
        try:
            with open(DISK / f"filler-{{id(frame)}}", "wb") as out:
                while True:
                    out.write(bytes(1 << 16))
        except OSError:
            pass  # the disk is full: what the stage writes next fails
    return frame
'''


@pytest.fixture
def small_disk(tmp_path):
    """A tmpfs of 8 MiB mounted for the test alone, unmounted afterwards whatever happens."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK}", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def visible_artifacts_are_complete(store: LocalStore) -> list[str]:
    """Every stage folder the store shows has its manifest and every file it lists, with that sha256; returns the
    problems found (none when nothing partial is visible)."""
    problems = []
    cache = store.root / "cache"
    for folder in sorted(cache.glob("*/*")) if cache.exists() else []:
        key = folder.relative_to(store.root).as_posix()
        if not (folder / MANIFEST).is_file():
            problems.append(f"{key}: no {MANIFEST}")
            continue
        try:
            store.dataset_path(key, verify=True)
        except ArtifactError as exc:
            problems.append(str(exc))
    return problems


def test_a_disk_filling_during_a_stage_fails_clearly_leaves_nothing_partial_and_the_next_run_resumes(
        small_disk, tmp_path, dask_client):
    folder = tmp_path / "shop"
    folder.mkdir()
    make_shop(folder, bad_rows=3)
    flag = tmp_path / "fill-the-disk"
    (folder / "filler.py").write_text(FILLER.format(flag=str(flag), disk=str(small_disk)))
    text = PIPELINE.format(max_bad=0.05, key="event_id")
    text = text.replace('- derive: {big: "amount > 100"}', "- function: filler:features")
    pipeline = write(folder / "pipeline.yaml", text)
    assert "filler:features" in pipeline.read_text()
    store_dir = small_disk / "store"
    run = ["run", str(pipeline), "--store", str(store_dir), "--scheduler", dask_client.scheduler.address]

    flag.write_text("fill once")
    failed = CliRunner().invoke(dataops, run)
    store = LocalStore(store_dir)
    error_lines = [line for line in failed.output.splitlines() if line.startswith("Error:")]
    partial = visible_artifacts_are_complete(store)
    # Stage scratch folders (random hex names) must be gone; the sources' memoised hashes may stay.
    staged = sorted(p.name for p in (store_dir / STAGING).iterdir() if re.fullmatch(r"[0-9a-f]{32}(\.create)?", p.name))
    features_published = list((store_dir / "cache").glob("features/*"))

    for filler in small_disk.glob("filler-*"):
        filler.unlink()  # space freed
    resumed = CliRunner().invoke(dataops, run)
    record = json.loads(CliRunner().invoke(dataops, ["runs", "show", "latest", "--store", str(store_dir),
                                                     "--json"]).stdout)
    statuses = {name: stage["status"] for name, stage in record["stages"].items()}

    held = (failed.exit_code == ArtifactError.exit_code and len(error_lines) == 1 and "Traceback" not in failed.output
            and not partial and not staged and not features_published and resumed.exit_code == 0)
    record_case(
        "local-store-disk-full-during-a-stage",
        component="local store",
        fault=f"the store's disk ({DISK} tmpfs) filled by another writer while the features stage runs",
        must_hold="`dataops run` fails with one line naming the store path and 'no space'; no partial artifact "
                  "is visible; after space is freed the next run reuses the completed stages and finishes",
        tries=1,
        held=int(held),
        outcomes={"clear error, nothing partial, resumed": 1} if held else {"broken": 1},
        notes="the Dask workers write the stage's Parquet into the store's staging folder, on the same disk",
    )
    assert failed.exit_code == ArtifactError.exit_code, failed.output
    assert len(error_lines) == 1 and "Traceback" not in failed.output, failed.output
    (message,) = error_lines
    assert str(store_dir) in message and re.search(r"no space", message, re.IGNORECASE), message
    assert "features" in message, f"the message should name the stage that could not be written: {message}"
    assert not partial, partial
    assert not features_published, "the features stage was published though its data could not be written"
    assert not staged, f"scratch left in the staging area keeps the disk full: {staged}"
    assert resumed.exit_code == 0, resumed.output
    assert statuses == {"ingest.events": "cached", "ingest.customers": "cached", "blend": "cached",
                        "features": "ran", "split": "ran"}, statuses
    assert not visible_artifacts_are_complete(store)


def test_a_write_meeting_a_full_device_raises_one_error_naming_the_folder_and_what_was_written():
    from orchestrator.artifacts.disk_space import disk_space_checked
    from orchestrator.errors import StoreFull

    # /dev/full answers every write with ENOSPC: a full disk without mounting one.
    with pytest.raises(StoreFull) as failure, disk_space_checked("/srv/store", "artifact 'runs/r1/record.json'"):
        with open("/dev/full", "wb") as device:
            device.write(b"{}")
    assert str(failure.value).startswith(
        "no space left on device under /srv/store while writing artifact 'runs/r1/record.json'; free space")


def test_a_dataset_that_does_not_fit_leaves_no_half_copy_in_the_staging_area(small_disk, tmp_path):
    store = LocalStore(small_disk / "store")
    folder = tmp_path / "quarantine"
    folder.mkdir()
    (folder / "part.0.parquet").write_bytes(os.urandom(12 << 20))  # more than the 8 MiB disk holds
    with pytest.raises(ArtifactError, match=rf"no space left on device under {re.escape(str(store.root))} while "
                                            r"writing artifact 'runs/r1/quarantine/events'"):
        store.put_dataset("runs/r1/quarantine/events", folder)
    assert list((store.root / STAGING).iterdir()) == []
    assert not store.exists("runs/r1/quarantine/events")
