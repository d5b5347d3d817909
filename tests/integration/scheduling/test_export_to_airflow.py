"""A schedule exported to Airflow and to Prefect, each loaded by the orchestrator's own code in a virtualenv of its
own (tests/integration/scheduling/peer_venvs.py): the DAG and the deployment hold the schedule's cron and zone,
catch-up and concurrency; they fire the slots `dataops schedule next` counts on a schedule across both daylight-saving
changes of Europe/Berlin; the command they run, as the orchestrator renders it, runs the slot's real pipeline through
the store's lease and history (trigger external, the slot as as_of); and on the days their cron and ours disagree,
export's warnings say exactly which slots they miss and which times they fire instead."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.artifacts.lineage import list_run_ids, load_record
from orchestrator.artifacts.local import LocalStore
from orchestrator.cli.main import app
from orchestrator.scheduling.cron import slots_between
from orchestrator.scheduling.export import clock_changes
from orchestrator.scheduling.spec import ScheduleSpec
from orchestrator.scheduling.state import ScheduleState, parse_instant
from tests.integration.pipeline.conftest import PIPELINE, make_shop
from tests.integration.scheduling.peer_venvs import AIRFLOW, PREFECT, peer_python, run_probe

pytestmark = pytest.mark.integration

HERE = Path(__file__).parent
DATAOPS = Path(sys.executable).parent / "dataops"
CREATED = "2027-03-25T12:00:00Z"
# Both daylight-saving changes of 2027 in Europe/Berlin: 28 March (02:00 -> 03:00) and 31 October (03:00 -> 02:00).
WINDOWS = [("2027-03-26T00:00:00+00:00", "2027-03-30T00:00:00+00:00"),
           ("2027-10-29T00:00:00+00:00", "2027-11-02T00:00:00+00:00")]
# Schedules whose times fall in the skipped or repeated hour, where the orchestrators' crons and ours part.
CLOCK_CHANGE_CRONS = {"dst-daily": "30 2 * * *", "dst-hourly": "0 * * * *"}
# Nothing of this test's orchestrators calls home.
QUIET = {"DO_NOT_TRACK": "1", "SCARF_ANALYTICS": "false", "AIRFLOW__USAGE_DATA_COLLECTION__ENABLED": "False",
         "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


def dataops(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture(scope="module")
def peer_pythons() -> dict[str, Path]:
    """Both orchestrators' interpreters; on a fresh machine their virtualenvs are made at the same time, since
    making one mostly waits on downloads."""
    with ThreadPoolExecutor(2) as pool:
        made = {peer.folder: pool.submit(peer_python, peer) for peer in (AIRFLOW, PREFECT)}
        pythons = {}
        for folder, future in made.items():
            pythons[folder], took = future.result()
            print(f"\n{folder}: {f'made in {took:.0f} s' if took is not None else 'cached'}")
    return pythons


@pytest.fixture(scope="module")
def airflow_python(peer_pythons):
    return peer_pythons[AIRFLOW.folder]


@pytest.fixture(scope="module")
def prefect_python(peer_pythons):
    return peer_pythons[PREFECT.folder]


@pytest.fixture(scope="module")
def kept(tmp_path_factory, dask_client):
    """A store keeping the shop pipeline's nightly schedule (01:30 Berlin, on the test cluster) and the
    clock-change schedules, all created at CREATED."""
    root = tmp_path_factory.mktemp("export")
    shop = root / "shop"
    shop.mkdir()
    make_shop(shop, rows=600)
    (shop / "pipeline.yaml").write_text(textwrap.dedent(PIPELINE.format(max_bad=0.05, key="event_id")).lstrip())
    files = {"shop-nightly": f"pipeline: shop/pipeline.yaml\ncron: '30 1 * * *'\n"
                             f"scheduler: {dask_client.scheduler.address}\n",
             **{name: f"job: cluster-sweep\ncron: '{cron}'\n" for name, cron in CLOCK_CHANGE_CRONS.items()}}
    store = root / "store"
    for name, body in files.items():
        (root / f"{name}.yaml").write_text(f"name: {name}\n{body}timezone: Europe/Berlin\n")
        dataops("schedule", "create", "-f", str(root / f"{name}.yaml"), "--store", str(store), "--now", CREATED)
    return root, store


def export(to: str, kept, folder: Path) -> None:
    _, store = kept
    for name in ("shop-nightly", *CLOCK_CHANGE_CRONS):
        dataops("schedule", "export", name, "--to", to, "--output", str(folder), "--store", str(store),
                "--dataops-bin", str(DATAOPS))


def dataops_next(store: Path) -> list[str]:
    """The UTC column of `dataops schedule next` for the shop schedule, in each window."""
    slots = []
    for start, end in WINDOWS:
        text = dataops("schedule", "next", "shop-nightly", "-n", "10", "--store", str(store), "--now",
                       (datetime.fromisoformat(start) - timedelta(seconds=1)).isoformat())
        listed = [parse_instant(line.split()[0]) for line in text.splitlines()]
        slots += [slot.isoformat() for slot in listed if slot <= datetime.fromisoformat(end)]
    return slots


def assert_clock_change_warnings_hold(orchestrator: str, name: str, fired: list[str]) -> None:
    """What the orchestrator fires differs from our slots exactly where ``clock_changes`` says it does."""
    spec = ScheduleSpec.model_validate({"name": name, "job": "cluster-sweep", "cron": CLOCK_CHANGE_CRONS[name],
                                        "timezone": "Europe/Berlin"})
    ours, windows = set(), [tuple(map(datetime.fromisoformat, w)) for w in WINDOWS]
    for start, end in windows:
        ours |= set(slots_between(spec.cron, spec.timezone, start - timedelta(seconds=1), end).slots)
    theirs = {datetime.fromisoformat(text) for text in fired}
    changes = [c for c in clock_changes(spec, orchestrator, windows[0][0])
               if any(start <= c.slot <= end for start, end in windows)]
    assert changes, f"{name}: expected a warning for {orchestrator}"
    assert sorted(theirs - ours) == sorted(c.fires_at for c in changes if c.fires_at), name
    assert sorted(ours - theirs) == sorted(c.slot for c in changes), name


def slot_history(store: Path, name: str) -> list[tuple[str, str, str]]:
    return [(r.slot, r.status, r.trigger) for r in ScheduleState(LocalStore(store), name).history()]


def runs_by_as_of(store: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for run_id in list_run_ids(LocalStore(store)):
        record = load_record(LocalStore(store), run_id)
        found.setdefault(record["parameters"]["as_of"], []).append(record["status"])
    return found


def test_airflow_loads_the_dag_fires_our_slots_and_its_command_runs_the_slot_through_the_store(
        tmp_path, kept, airflow_python):
    _, store = kept
    dags = tmp_path / "dags"
    export("airflow", kept, dags)
    home = tmp_path / "airflow-home"
    home.mkdir()
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "AIRFLOW_HOME": str(home),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db", **QUIET}
    slot, not_a_slot = "2027-03-28T23:30:00+00:00", "2027-03-28T23:31:00+00:00"
    seen = run_probe(airflow_python, HERE / "airflow_probe.py",
                     {"dags": str(dags), "render": {"shop-nightly": [slot, not_a_slot]}, "windows": WINDOWS}, env)

    assert seen["import_errors"] == {}
    assert sorted(seen["dags"]) == ["dst-daily", "dst-hourly", "shop-nightly"]
    dag = seen["dags"]["shop-nightly"]
    assert {k: dag[k] for k in ("timetable", "cron", "timezone", "catchup", "max_active_runs", "retries",
                                "skip_on_exit_code", "serialized")} == {
        "timetable": "CronTriggerTimetable", "cron": "30 1 * * *", "timezone": "Europe/Berlin", "catchup": False,
        "max_active_runs": 1, "retries": 0, "skip_on_exit_code": [24], "serialized": True}
    # Its runs are our slots across both clock changes: 23:30Z in summer time, 00:30Z in winter time.
    assert dag["runs"] == dataops_next(store)
    assert dag["runs"] == ["2027-03-26T00:30:00+00:00", "2027-03-27T00:30:00+00:00", "2027-03-28T00:30:00+00:00",
                           "2027-03-28T23:30:00+00:00", "2027-03-29T23:30:00+00:00", "2027-10-29T23:30:00+00:00",
                           "2027-10-30T23:30:00+00:00", "2027-11-01T00:30:00+00:00"]
    for name in CLOCK_CHANGE_CRONS:
        if name == "dst-daily":
            assert_clock_change_warnings_hold("airflow", name, seen["dags"][name]["runs"])
        else:  # Airflow runs both repeated hours, as dataops does: nothing to warn of
            assert set(seen["dags"][name]["runs"]) == {
                slot.isoformat() for start, end in WINDOWS for slot in slots_between(
                    "0 * * * *", "Europe/Berlin", datetime.fromisoformat(start) - timedelta(seconds=1),
                    datetime.fromisoformat(end)).slots}

    command = dag["rendered"][slot]
    passed = 'env -i PATH="$PATH" HOME="$HOME" ${OS_CLOUD+"OS_CLOUD=$OS_CLOUD"} ' \
             '${OS_CLIENT_CONFIG_FILE+"OS_CLIENT_CONFIG_FILE=$OS_CLIENT_CONFIG_FILE"}'
    assert command == (f"exec {passed} {shlex.join([str(DATAOPS), 'schedule', 'run-slot', 'shop-nightly'])} "
                       f"--store {shlex.quote(str(store))} --slot '{slot}'")

    # The worker runs the command as Airflow rendered it: the real pipeline runs for that slot.
    worker = {"PATH": "/usr/bin:/bin", "HOME": str(home), "OS_CLOUD": "dataops-ci", "AIRFLOW__CORE__FERNET_KEY": "k"}
    ran = subprocess.run(["bash", "-c", command], env=worker, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert ("2027-03-28T23:30:00Z", "succeeded", "external") in slot_history(store, "shop-nightly")
    assert runs_by_as_of(store)["2027-03-28T23:30:00Z"] == ["succeeded"]
    # Airflow cleared and ran it again: nothing runs twice.
    again = subprocess.run(["bash", "-c", command], env=worker, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "succeeded already" in again.stderr, again.stderr[-2000:]
    assert runs_by_as_of(store)["2027-03-28T23:30:00Z"] == ["succeeded"]
    refused = subprocess.run(["bash", "-c", dag["rendered"][not_a_slot]], env=worker, capture_output=True, text=True,
                             timeout=120)
    assert refused.returncode == 2 and "is not a slot of schedule shop-nightly" in refused.stderr


def test_prefect_loads_the_deployment_fires_our_slots_and_a_flow_run_runs_its_slot_through_the_store(
        tmp_path, kept, prefect_python):
    _, store = kept
    flows = tmp_path / "flows"
    export("prefect", kept, flows)
    home = tmp_path / "prefect-home"
    home.mkdir()
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "PREFECT_HOME": str(home), **QUIET}
    folders = {name: flows / f"dataops_{name.replace('-', '_')}" for name in ("shop-nightly", *CLOCK_CHANGE_CRONS)}
    slot = "2027-03-29T23:30:00+00:00"
    seen = run_probe(prefect_python, HERE / "prefect_probe.py",
                     {"folders": [str(f) for f in folders.values()], "windows": WINDOWS,
                      "run": {"folder": str(folders["shop-nightly"]), "scheduled": slot}}, env)

    shop = seen["folders"][str(folders["shop-nightly"])]
    assert (shop["flow"], shop["retries"]) == ("shop-nightly", 0)
    assert shop["deployment"]["entrypoint"] == "flow.py:run_slot"
    assert shop["deployment"]["concurrency_limit"] == {"limit": 1, "collision_strategy": "CANCEL_NEW"}
    schedule = {"cron": "30 1 * * *", "timezone": "Europe/Berlin", "day_or": True}
    assert shop["schedules"] == [schedule]
    assert shop["served"] == {"name": "shop-nightly", "schedules": [schedule], "concurrency_limit": 1,
                              "collision_strategy": "CANCEL_NEW"}
    assert shop["dates"] == dataops_next(store)
    for name in CLOCK_CHANGE_CRONS:
        assert_clock_change_warnings_hold("prefect", name, seen["folders"][str(folders[name])]["dates"])

    assert seen["run"]["type"] == "COMPLETED", seen["run"]
    assert ("2027-03-29T23:30:00Z", "succeeded", "external") in slot_history(store, "shop-nightly")
    assert runs_by_as_of(store)["2027-03-29T23:30:00Z"] == ["succeeded"]
