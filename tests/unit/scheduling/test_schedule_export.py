"""``dataops schedule run-slot`` and ``export``: an orchestrator's run executes exactly one slot through the store's
lease and history; the DAG file and the Prefect deployment it is exported to are Python and YAML in which every
value is data. (Real Airflow and Prefect load them in tests/integration/scheduling/test_export_to_airflow.py.)"""

from __future__ import annotations

import ast
import json
import shlex
from datetime import UTC, datetime, timedelta

import pytest
import yaml
from typer.testing import CliRunner

from orchestrator.cli.main import app
from orchestrator.scheduling.export import (
    ExportTarget,
    NotASlot,
    SchedulePaused,
    SlotHeldElsewhere,
    airflow_dag,
    check_slot,
    clock_changes,
    prefect_flow,
    prefect_yaml,
)
from orchestrator.scheduling.spec import ScheduleSpec
from orchestrator.scheduling.tick import SlotRunFailed
from orchestrator.usecases.schedule_export import export_schedule, handover_start, run_external_slot

HOSTILE = "/tmp/it's \"{{ 7 * 7 }}\"; __import__('os').system('touch PWNED') #"


def invoke(*args):
    return CliRunner().invoke(app, list(args))


def spec_of(**fields) -> ScheduleSpec:
    return ScheduleSpec.model_validate({"name": "nightly", "job": "cluster-sweep", "cron": "30 2 * * *",
                                        "timezone": "Europe/Berlin", **fields})


def module_literals(source: str) -> dict:
    """The module-level NAME = literal assignments of a generated file."""
    found = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                found[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    return found


def dag_keywords(source: str) -> dict:
    """The keywords of the ``DAG(...)`` call in a generated DAG file, as source text."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "DAG":
            return {k.arg: ast.unparse(k.value) for k in node.keywords}
    raise AssertionError("no DAG(...) call in the file")


class FakeClock:
    """A clock that moves only when the run-slot use case sleeps."""

    def __init__(self, start: datetime):
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)


# --- which times run-slot takes ------------------------------------------------------------------------


def test_a_slot_of_the_cron_is_accepted_in_any_zone_it_is_written_in():
    slot = check_slot(spec_of(), datetime.fromisoformat("2027-06-02T02:30:00+02:00"))
    assert slot == datetime(2027, 6, 2, 0, 30, tzinfo=UTC)


def test_a_time_that_is_not_a_slot_is_refused_with_the_nearest_slots():
    with pytest.raises(NotASlot) as refused:
        check_slot(spec_of(), datetime(2027, 6, 2, 0, 31, tzinfo=UTC))
    assert str(refused.value) == (
        "2027-06-02T00:31:00+00:00 is not a slot of schedule nightly (cron '30 2 * * *' in Europe/Berlin); the "
        "nearest slots are 2027-06-02T00:30:00Z (2027-06-02 02:30 CEST) and 2027-06-03T00:30:00Z "
        "(2027-06-03 02:30 CEST)")


def test_run_slot_refuses_a_time_that_is_not_a_slot_and_runs_nothing(tmp_path, keep, store):
    keep()
    result = invoke("schedule", "run-slot", "hourly", "--slot", "2027-06-01T01:30:00Z", "--store", str(store.root))
    assert result.exit_code == 2, result.output
    assert "is not a slot of schedule hourly" in result.stderr
    assert "2027-06-01T01:00:00Z" in result.stderr and "2027-06-01T02:00:00Z" in result.stderr
    assert list(store.list("schedules/hourly/slots")) == []


# --- what run-slot does with a slot ----------------------------------------------------------------------


def test_run_slot_of_a_slot_that_already_succeeded_is_a_no_op_with_exit_0(keep, store, recorder, at):
    keep()
    run_external_slot("hourly", at("01:00:00"), str(store.root), runner="r1", execute=recorder)
    assert recorder.slots == ["01:00"]

    again = invoke("schedule", "run-slot", "hourly", "--slot", "2027-06-01T01:00:00Z", "--store", str(store.root))
    assert again.exit_code == 0, again.output
    assert "already" in again.stderr and "succeeded already" in again.stderr
    (record,) = json.loads(invoke("schedule", "show", "hourly", "--store", str(store.root), "--json").stdout)["history"]
    assert (record["status"], record["trigger"], len(record["attempts"])) == ("succeeded", "external", 1)


def test_run_slot_of_a_failing_pipeline_exits_1_and_keeps_one_record_with_trigger_external(tmp_path, keep, store):
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text("name: broken\nsources: {}\nsplitt: {}\n")  # malformed: the run fails as it starts
    keep(pipeline=str(pipeline), job=None)

    failed = invoke("schedule", "run-slot", "hourly", "--slot", "2027-06-01T03:00:00+00:00", "--store",
                    str(store.root))
    assert failed.exit_code == 1, failed.output
    assert "Error: slot 2027-06-01T03:00:00Z of schedule hourly failed" in failed.stderr
    history = json.loads(invoke("schedule", "show", "hourly", "--store", str(store.root), "--json").stdout)["history"]
    assert [(r["slot"], r["status"], r["trigger"], len(r["attempts"])) for r in history] == [
        ("2027-06-01T03:00:00Z", "failed", "external", 1)]


def test_run_slot_waits_for_the_schedules_own_retries_and_reports_the_final_outcome(keep, store, recorder, at):
    keep(retries={"max": 2, "backoff": ["5m", "20m"]})
    recorder.failures = [SlotRunFailed("the cloud said 503"), SlotRunFailed("the cloud said 503")]
    clock = FakeClock(at("01:00:05"))

    outcome = run_external_slot("hourly", at("01:00:00"), str(store.root), runner="r1", execute=recorder,
                                clock=clock, sleep=clock.sleep)
    assert (outcome.action, outcome.attempt) == ("succeeded", 3)
    assert clock.slept == [300.0, 1200.0]
    assert recorder.slots == ["01:00", "01:00", "01:00"]


def test_run_slot_fails_once_the_retries_are_spent(keep, store, recorder, at):
    keep(retries={"max": 1, "backoff": "1m"})
    recorder.failures = [SlotRunFailed("disk full"), SlotRunFailed("disk full")]
    clock = FakeClock(at("01:00:05"))
    with pytest.raises(Exception, match="slot 2027-06-01T01:00:00Z of schedule hourly failed: disk full"):
        run_external_slot("hourly", at("01:00:00"), str(store.root), runner="r1", execute=recorder, clock=clock,
                          sleep=clock.sleep)
    assert len(recorder.slots) == 2


def test_run_slot_of_a_slot_another_runner_holds_exits_23_and_leaves_it_running(keep, store, recorder, at):
    keep()
    seen = []

    def second_caller(schedule, slot):
        result = invoke("schedule", "run-slot", "hourly", "--slot", "2027-06-01T01:00:00Z", "--store",
                        str(store.root), "--runner", "r2")
        seen.append((result.exit_code, result.stderr))

    recorder.during = second_caller
    outcome = run_external_slot("hourly", at("01:00:00"), str(store.root), runner="r1", execute=recorder)
    assert outcome.action == "succeeded"
    ((code, message),) = seen
    assert code == SlotHeldElsewhere.exit_code == 23
    assert "held by another runner" in message and "on r1" in message
    assert recorder.slots == ["01:00"]


def test_run_slot_of_a_paused_schedule_exits_24_and_runs_nothing(keep, store, recorder, at):
    keep()
    assert invoke("schedule", "pause", "hourly", "--store", str(store.root), "--reason", "disk swap").exit_code == 0
    result = invoke("schedule", "run-slot", "hourly", "--slot", "2027-06-01T01:00:00Z", "--store", str(store.root))
    assert result.exit_code == SchedulePaused.exit_code == 24
    assert "schedule hourly is paused" in result.stderr and "disk swap" in result.stderr
    assert list(store.list("schedules/hourly/slots")) == []


def test_a_slot_the_tick_skipped_is_run_again_when_an_orchestrator_fires_it(keep, store, recorder, tick_at, at):
    keep(catchup="skip")
    tick_at("03:00:10")  # 01:00, 02:00 and 03:00 came due at once: all skipped
    outcome = run_external_slot("hourly", at("02:00:00"), str(store.root), runner="r1", execute=recorder)
    assert outcome.action == "succeeded"
    record = json.loads(store.get_bytes("schedules/hourly/slots/20270601T020000Z.json"))
    assert (record["status"], record["trigger"]) == ("succeeded", "external")


# --- the files export writes ----------------------------------------------------------------------------


def test_the_airflow_dag_holds_the_schedule_as_literals_and_a_trigger_timetable():
    target = ExportTarget("swift://ops/team", "/opt/dataops/bin/dataops", ("OS_CLOUD",),
                          datetime(2027, 6, 1, 0, 0, 10, tzinfo=UTC))
    source = airflow_dag(spec_of(), target)
    compile(source, "dataops_nightly.py", "exec")
    values = module_literals(source)
    assert {k: values[k] for k in ("SCHEDULE", "STORE", "DATAOPS", "CRON", "TIMEZONE", "PASS_ENV", "START",
                                   "CATCHUP")} == {
        "SCHEDULE": "nightly", "STORE": "swift://ops/team", "DATAOPS": "/opt/dataops/bin/dataops",
        "CRON": "30 2 * * *", "TIMEZONE": "Europe/Berlin", "PASS_ENV": ("OS_CLOUD",),
        "START": "2027-06-01T00:00:10+00:00", "CATCHUP": False}
    keywords = dag_keywords(source)
    assert keywords["schedule"] == "CronTriggerTimetable(CRON, timezone=TIMEZONE)"
    assert keywords["max_active_runs"] == "1"
    assert "bash_command=\"{{ dataops_run_slot }} --slot '{{ logical_date | ts }}'\"" in source
    assert "retries=0" in source


@pytest.mark.parametrize("catchup, expected", [("all", True), ("latest", False), ("skip", False)])
def test_the_dags_catchup_follows_the_schedules_policy(catchup, expected):
    source = airflow_dag(spec_of(catchup=catchup, concurrency="allow"), ExportTarget("/s"))
    assert module_literals(source)["CATCHUP"] is expected
    assert "max_active_runs" not in dag_keywords(source)


def _exec_with_stub_airflow(source: str, monkeypatch) -> dict:
    """Run a generated DAG file with stand-ins for Airflow's classes, which record what they are given."""
    import sys
    import types

    made = {}

    class Recorded:
        def __init__(self, *args, **kwargs):
            made.setdefault(type(self).__name__, []).append((args, kwargs))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    stubs = {name: types.ModuleType(name) for name in (
        "airflow", "airflow.sdk", "airflow.providers", "airflow.providers.standard",
        "airflow.providers.standard.operators", "airflow.providers.standard.operators.bash", "airflow.timetables",
        "airflow.timetables.trigger")}
    stubs["airflow.sdk"].DAG = type("DAG", (Recorded,), {})
    stubs["airflow.providers.standard.operators.bash"].BashOperator = type("BashOperator", (Recorded,), {})
    stubs["airflow.timetables.trigger"].CronTriggerTimetable = type("CronTriggerTimetable", (Recorded,), {})
    for name, module in stubs.items():
        monkeypatch.setitem(sys.modules, name, module)
    namespace: dict = {"__name__": "dag_under_test"}
    exec(compile(source, "dag.py", "exec"), namespace)
    return {"made": made, **namespace}


def test_a_hostile_store_or_executable_stays_data_in_the_dag_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    target = ExportTarget(HOSTILE, "/opt/my dataops/bin/dataops'", ("OS_CLOUD",))
    source = airflow_dag(spec_of(), target)
    ran = _exec_with_stub_airflow(source, monkeypatch)
    assert not (tmp_path / "PWNED").exists()
    assert ran["STORE"] == HOSTILE
    # The shell reads back exactly the arguments, and the Jinja template holds none of them.
    command = shlex.split(ran["RUN_SLOT"])
    assert command[-6:] == ["/opt/my dataops/bin/dataops'", "schedule", "run-slot", "nightly", "--store", HOSTILE]
    (((_, operator),),) = [ran["made"]["BashOperator"]]
    assert operator["bash_command"] == "{{ dataops_run_slot }} --slot '{{ logical_date | ts }}'"
    ((_, dag),) = ran["made"]["DAG"]
    assert dag["user_defined_macros"] == {"dataops_run_slot": ran["RUN_SLOT"]}
    assert operator["skip_on_exit_code"] == 24 and operator["retries"] == 0


def test_the_dag_hands_dataops_only_the_named_variables_by_name(monkeypatch, tmp_path):
    import subprocess

    monkeypatch.chdir(tmp_path)
    ran = _exec_with_stub_airflow(airflow_dag(spec_of(), ExportTarget("/s", "printenv")), monkeypatch)
    assert "s3cr3t" not in ran["RUN_SLOT"]
    # What the worker's shell passes on: the command with printenv as "dataops" shows dataops' environment.
    shell = ran["RUN_SLOT"].replace("exec ", "", 1).replace(" schedule run-slot nightly --store /s", "")
    env = {"PATH": "/usr/bin:/bin", "HOME": "/home/w", "OS_CLOUD": "lab", "AIRFLOW__CORE__FERNET_KEY": "s3cr3t"}
    seen = subprocess.run(["bash", "-c", shell], env=env, capture_output=True, text=True, check=True).stdout
    assert sorted(seen.splitlines()) == ["HOME=/home/w", "OS_CLOUD=lab", "PATH=/usr/bin:/bin"]


def test_a_hostile_store_stays_data_in_the_prefect_flow_and_its_yaml():
    spec = spec_of()
    target = ExportTarget(HOSTILE, "dataops", ("OS_CLOUD",), work_pool="pool: {x}")
    source = prefect_flow(spec, target)
    compile(source, "flow.py", "exec")
    values = module_literals(source)
    assert (values["STORE"], values["SCHEDULE"], values["FORBID_OVERLAP"]) == (HOSTILE, "nightly", True)
    document = yaml.safe_load(prefect_yaml(spec, target))
    (deployment,) = document["deployments"]
    assert deployment["entrypoint"] == "flow.py:run_slot"
    assert deployment["schedules"] == [{"cron": "30 2 * * *", "timezone": "Europe/Berlin", "active": True}]
    assert deployment["work_pool"] == {"name": "pool: {x}"}
    assert deployment["concurrency_limit"] == {"limit": 1, "collision_strategy": "CANCEL_NEW"}


def test_an_invalid_variable_name_to_pass_on_is_refused():
    with pytest.raises(Exception, match="invalid environment variable name 'OS_CLOUD=x'"):
        ExportTarget("/s", pass_env=("OS_CLOUD=x",))


# --- where the orchestrator takes over, and the days it will not fire a slot -----------------------------


def test_the_orchestrator_takes_over_where_the_ticks_left_off(keep, tick_at, at):
    state = keep(catchup="latest")
    tick_at("01:00:10")
    assert handover_start(state, state.load(), at("05:00:00")) == at("01:00:10")


def test_with_catchup_all_the_orchestrator_takes_over_no_earlier_than_max_catchup_slots(keep, tick_at, at):
    state = keep(catchup="all", max_catchup=2)
    tick_at("01:00:10")
    assert handover_start(state, state.load(), at("05:00:00")) == at("03:59:59")


def test_with_catchup_skip_the_orchestrator_starts_from_the_export(keep, tick_at, at):
    state = keep(catchup="skip")
    tick_at("01:00:10")
    assert handover_start(state, state.load(), at("05:00:00")) == at("05:00:00")


def test_the_days_an_orchestrator_fires_other_times_than_our_slots_are_named():
    start = datetime(2027, 1, 1, tzinfo=UTC)
    airflow = clock_changes(spec_of(), "airflow", start)
    assert [(c.day, c.slot, c.fires_at) for c in airflow] == [
        ("2027-03-28", datetime(2027, 3, 28, 1, 0, tzinfo=UTC), datetime(2027, 3, 28, 1, 30, tzinfo=UTC)),
        ("2027-10-31", datetime(2027, 10, 31, 0, 30, tzinfo=UTC), datetime(2027, 10, 31, 1, 30, tzinfo=UTC))]
    assert [c.day for c in clock_changes(spec_of(), "prefect", start)] == ["2027-03-28"]
    hourly = spec_of(cron="0 * * * *")
    assert clock_changes(hourly, "airflow", start) == []
    assert [(c.slot, c.fires_at) for c in clock_changes(hourly, "prefect", start)] == [
        (datetime(2027, 10, 31, 1, 0, tzinfo=UTC), None)]
    assert clock_changes(spec_of(cron="15 1 * * *"), "airflow", start) == []
    assert clock_changes(spec_of(timezone="UTC"), "airflow", start) == []


def test_export_writes_the_files_prints_their_paths_and_warns_of_clock_changes(tmp_path, store):
    schedule = tmp_path / "nightly.yaml"
    schedule.write_text("name: nightly\njob: cluster-sweep\ncron: '30 2 * * *'\ntimezone: Europe/Berlin\n")
    assert invoke("schedule", "create", "-f", str(schedule), "--store", str(store.root)).exit_code == 0

    dags = tmp_path / "dags"
    exported = invoke("schedule", "export", "nightly", "--to", "airflow", "--output", str(dags), "--store",
                      str(store.root), "--dataops-bin", "/opt/dataops/bin/dataops", "--pass-env", "DATAOPS_SCHEDULER")
    assert exported.exit_code == 0, exported.output
    assert exported.stdout.splitlines() == [str(dags / "dataops_nightly.py")]
    values = module_literals((dags / "dataops_nightly.py").read_text())
    assert values["STORE"] == str(store.root.resolve())
    assert values["PASS_ENV"] == ("OS_CLOUD", "OS_CLIENT_CONFIG_FILE", "DATAOPS_SCHEDULER")
    assert "each run executes: /opt/dataops/bin/dataops schedule run-slot nightly --store" in exported.stderr
    assert "Warning:" in exported.stderr and "which Europe/Berlin skips" in exported.stderr

    prefect = invoke("schedule", "export", "nightly", "--to", "prefect", "--output", str(tmp_path / "flows"),
                     "--store", str(store.root))
    assert prefect.exit_code == 0, prefect.output
    folder = tmp_path / "flows" / "dataops_nightly"
    assert prefect.stdout.splitlines() == [str(folder / "flow.py"), str(folder / "prefect.yaml")]

    unknown = invoke("schedule", "export", "nightly", "--to", "dagster", "--store", str(store.root))
    assert unknown.exit_code == 2 and "dagster" in unknown.stderr


def test_export_of_an_unknown_schedule_names_the_known_ones(tmp_path, keep, store):
    keep()
    with pytest.raises(Exception, match="no schedule 'hourli'.*did you mean 'hourly'"):
        export_schedule("hourli", "airflow", tmp_path, str(store.root))
