"""The runner's systemd units and the OnCalendar= translation of cron, checked against the real systemd-analyze:
the units it verifies, the calendar it computes. Where systemd and cron (cronsim) disagree by design, on the
daylight-saving days, the tests state the difference."""

from __future__ import annotations

import getpass
import os
import stat
import textwrap
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli.main import app
from orchestrator.scheduling.cron import next_slots
from orchestrator.scheduling.systemd import (
    FAILED_SERVICE,
    TICK_SERVICE,
    TIMER,
    InvalidUnitSetting,
    RunnerUnits,
    calendar_elapses,
    cron_to_oncalendar,
    every_to_oncalendar,
    systemd_analyze,
    translate_cron,
    verify_units,
)
from orchestrator.usecases import schedule_install

DATAOPS = Path("/opt/dataops/venv/bin/dataops")
needs_systemd_analyze = pytest.mark.skipif(systemd_analyze() is None,
                                           reason="systemd-analyze is not installed (apt-get install systemd)")


def sections(text: str) -> dict[str, dict[str, list[str]]]:
    """A unit file read as systemd reads it: sections of keys, each with every value given (comments dropped)."""
    found: dict[str, dict[str, list[str]]] = {}
    current = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = found.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key, []).append(value)
    return found


def units(**fields) -> dict[str, dict[str, dict[str, list[str]]]]:
    config = {"executable": DATAOPS, "store": "swift://ops/flights", "runner": "runner-1", **fields}
    return {name: sections(text) for name, text in RunnerUnits(**config).files().items()}


def invoke(*args):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


# --- the units ------------------------------------------------------------------------------------------


def test_the_timer_ticks_every_minute_on_utc_precisely_persistently_and_starts_the_tick_service():
    timer = units()[TIMER]
    assert timer["Timer"] == {"OnCalendar": ["*-*-* *:*:00 UTC"], "AccuracySec": ["1s"], "Persistent": ["true"],
                              "Unit": [TICK_SERVICE]}
    assert timer["Install"] == {"WantedBy": ["timers.target"]}


def test_the_tick_service_is_a_oneshot_running_tick_on_the_store_as_the_runner_and_its_failures_start_tick_failed():
    tick = units(run_deadline_s=6 * 3600)[TICK_SERVICE]
    assert tick["Unit"]["OnFailure"] == [FAILED_SERVICE]
    assert tick["Service"]["Type"] == ["oneshot"]
    assert tick["Service"]["ExecStart"] == [f"{DATAOPS} schedule tick --store swift://ops/flights --runner runner-1"]
    assert tick["Service"]["TimeoutStartSec"] == ["6h1m"], "the longest run deadline and a minute"
    failed = units()[FAILED_SERVICE]
    assert failed["Service"]["ExecStart"] == [
        f"{DATAOPS} schedule tick-failed --store swift://ops/flights --runner runner-1"]
    assert failed["Service"]["Type"] == ["oneshot"]
    assert "OnFailure" not in failed["Unit"], "a failing tick-failed must not start itself again"


def test_system_units_run_as_their_user_after_the_network_with_the_full_hardening_set():
    for service in units(run_as="dataops", environment_file=Path("/opt/dataops/etc/runner.env")).values():
        if "Service" not in service:
            continue
        assert service["Unit"]["After"] == ["network-online.target"]
        assert service["Service"]["User"] == ["dataops"]
        assert service["Service"]["EnvironmentFile"] == ["/opt/dataops/etc/runner.env"]
        assert {key: service["Service"][key] for key in ("NoNewPrivileges", "PrivateTmp", "ProtectSystem")} == {
            "NoNewPrivileges": ["yes"], "PrivateTmp": ["yes"], "ProtectSystem": ["full"]}


def test_user_units_have_no_user_no_system_targets_and_only_the_hardening_a_user_manager_can_apply():
    written = units(scope="user")
    assert written[TIMER]["Install"] == {"WantedBy": ["timers.target"]}
    for name in (TICK_SERVICE, FAILED_SERVICE):
        service = written[name]
        assert "User" not in service["Service"] and "EnvironmentFile" not in service["Service"]
        assert "After" not in service["Unit"] and "Wants" not in service["Unit"]
        assert service["Service"]["NoNewPrivileges"] == ["yes"]
        assert "PrivateTmp" not in service["Service"] and "ProtectSystem" not in service["Service"]
    with pytest.raises(InvalidUnitSetting, match="system units only"):
        RunnerUnits(DATAOPS, "swift://ops", "r", scope="user", run_as="dataops")


def test_a_local_store_under_a_folder_protect_system_makes_read_only_keeps_its_write_access():
    under_var = units(store="/var/lib/dataops/store")[TICK_SERVICE]["Service"]
    assert under_var["ProtectSystem"] == ["full"]
    text = RunnerUnits(DATAOPS, "/etc/dataops/store", "r").files()[TICK_SERVICE]
    assert "ProtectSystem" not in sections(text)["Service"]
    assert "ProtectSystem=full left out: it would make the store under etc read-only" in text
    with pytest.raises(InvalidUnitSetting, match="must be absolute"):
        RunnerUnits(DATAOPS, "relative/store", "r")


def test_arguments_are_quoted_so_that_systemd_expands_no_specifier_variable_or_space_in_them():
    tick = units(store="/srv/data ops/%r $HOME", runner="runner's")[TICK_SERVICE]
    assert tick["Service"]["ExecStart"] == [
        f'{DATAOPS} schedule tick --store "/srv/data ops/%%r $$HOME" --runner "runner\'s"']
    assert tick["Unit"]["Description"] == ["dataops schedule tick on /srv/data ops/%%r $HOME as runner runner's"]


def test_every_becomes_a_utc_calendar_on_the_wall_clocks_multiples_and_must_divide_a_minute_an_hour_or_a_day():
    assert every_to_oncalendar(30) == "*-*-* *:*:00/30 UTC"
    assert every_to_oncalendar(60) == "*-*-* *:*:00 UTC"
    assert every_to_oncalendar(300) == "*-*-* *:00/5:00 UTC"
    assert every_to_oncalendar(7200) == "*-*-* 00/2:00:00 UTC"
    assert every_to_oncalendar(86400) == "*-*-* 00:00:00 UTC"
    for wrong in (7 * 60, 45, 5 * 3600, 1.5):
        with pytest.raises(InvalidUnitSetting, match="divides a minute, an hour or a day"):
            every_to_oncalendar(wrong)


@needs_systemd_analyze
@pytest.mark.parametrize("every_s", [15, 60, 600, 3 * 3600])
def test_systemd_fires_the_tick_timer_exactly_every_interval_on_its_multiples(every_s):
    base = datetime(2027, 10, 30, 23, 59, 1, tzinfo=UTC)  # across Berlin's fall-back night: UTC has none
    elapses = calendar_elapses(every_to_oncalendar(every_s), base, 6)
    assert len(elapses) == 6
    assert all(int(elapse.timestamp()) % every_s == 0 for elapse in elapses)
    assert {b - a for a, b in pairwise(elapses)} == {timedelta(seconds=every_s)}


@needs_systemd_analyze
@pytest.mark.parametrize("scope", ["system", "user"])
def test_systemd_analyze_verify_accepts_the_generated_units(tmp_path, scope):
    extra = {"run_as": "root", "environment_file": Path("/etc/hostname")} if scope == "system" else {}
    written = RunnerUnits(schedule_install.dataops_executable(), "/var/lib/dataops store/%r", "runner 1",
                          scope=scope, run_deadline_s=2 * 86400, **extra).files()
    paths = []
    for name, text in written.items():
        (tmp_path / name).write_text(text)
        paths.append(tmp_path / name)
    assert verify_units(paths, scope) == []
    # The check is a real one: a value systemd cannot read is found, though verify itself still exits 0.
    (tmp_path / TICK_SERVICE).write_text(written[TICK_SERVICE].replace("TimeoutStartSec=", "TimeoutStartSec=soon"))
    (problem,) = verify_units(paths, scope)
    assert "TimeoutStartSec" in problem and TICK_SERVICE in problem


# --- installing -------------------------------------------------------------------------------------------


def schedule(tmp_path, store: str, name: str, run_deadline: str) -> None:
    path = tmp_path / f"{name}.yaml"
    path.write_text(textwrap.dedent(f"""
        name: {name}
        job: cluster-sweep
        cron: "0 3 * * *"
        run_deadline: {run_deadline}
    """).lstrip())
    assert invoke("schedule", "create", "-f", str(path), "--store", store).exit_code == 0


@needs_systemd_analyze
def test_install_into_a_unit_dir_writes_verified_units_running_this_dataops_with_the_longest_run_deadline(tmp_path):
    store = str(tmp_path / "store")
    schedule(tmp_path, store, "short", "30m")
    schedule(tmp_path, store, "long", "6h")
    result = invoke("schedule", "install", "--systemd", "--user", "--store", store, "--unit-dir",
                    str(tmp_path / "units"), "--runner", "host-a", "--every", "30s")
    assert result.exit_code == 0, result.output
    assert "checked with systemd-analyze verify" in result.stderr and "not enabled" in result.stderr
    written = {path.name: sections(path.read_text()) for path in (tmp_path / "units").iterdir()}
    assert sorted(written) == sorted([TIMER, TICK_SERVICE, FAILED_SERVICE])
    exec_start = written[TICK_SERVICE]["Service"]["ExecStart"][0].split()
    executable = Path(exec_start[0])
    assert executable.is_absolute() and executable.name == "dataops" and os.access(executable, os.X_OK)
    assert exec_start[1:] == ["schedule", "tick", "--store", store, "--runner", "host-a"]
    assert written[TICK_SERVICE]["Service"]["TimeoutStartSec"] == ["6h1m"]
    assert written[TIMER]["Timer"]["OnCalendar"] == ["*-*-* *:*:00/30 UTC"]
    paths = sorted((tmp_path / "units").iterdir())
    assert verify_units(paths, "user") == []

    removed = invoke("schedule", "uninstall", "--systemd", "--user", "--unit-dir", str(tmp_path / "units"))
    assert removed.exit_code == 0 and not list((tmp_path / "units").iterdir())


def test_install_where_systemd_is_not_the_service_manager_says_to_run_the_loop_under_a_supervisor(tmp_path,
                                                                                                 monkeypatch):
    monkeypatch.setattr(schedule_install, "SYSTEMD_RUNNING_MARKER", tmp_path / "no-systemd-here")
    result = invoke("schedule", "install", "--systemd", "--user", "--store", str(tmp_path / "store"),
                    "--run-deadline", "1h")
    assert result.exit_code == 1
    assert "systemd is not the service manager here" in result.stderr
    assert "dataops schedule tick --loop" in result.stderr and "--unit-dir" in result.stderr
    assert invoke("schedule", "install", "--store", str(tmp_path)).exit_code == 2, "--systemd is required"
    wrong = invoke("schedule", "install", "--systemd", "--user", "--store", str(tmp_path), "--every", "7m",
                   "--unit-dir", str(tmp_path / "units"), "--run-deadline", "1h")
    assert wrong.exit_code == 2 and "divides a minute, an hour or a day" in wrong.stderr


def fake_tool(folder: Path, name: str, log: Path) -> None:
    """A stand-in for systemctl or loginctl: a real program that writes its arguments to ``log``."""
    path = folder / name
    path.write_text(f"#!/bin/sh\necho \"{name} $*\" >> {log}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_install_with_a_user_manager_reloads_it_enables_the_timer_and_lets_it_linger_then_uninstall_undoes_it(
        tmp_path, monkeypatch):
    running = tmp_path / "run-systemd-system"
    running.mkdir()
    monkeypatch.setattr(schedule_install, "SYSTEMD_RUNNING_MARKER", running)
    tools, log = tmp_path / "bin", tmp_path / "commands.log"
    tools.mkdir()
    for name in ("systemctl", "loginctl"):
        fake_tool(tools, name, log)
    monkeypatch.setenv("PATH", f"{tools}:{os.environ['PATH']}")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))

    result = invoke("schedule", "install", "--systemd", "--user", "--store", str(tmp_path / "store"),
                    "--run-deadline", "2h")
    assert result.exit_code == 0, result.output
    unit_dir = tmp_path / "config" / "systemd" / "user"
    assert sorted(path.name for path in unit_dir.iterdir()) == sorted([TIMER, TICK_SERVICE, FAILED_SERVICE])
    user = getpass.getuser()
    assert log.read_text().splitlines() == ["systemctl --user daemon-reload", f"systemctl --user enable --now {TIMER}",
                                            f"loginctl enable-linger {user}"]

    log.unlink()
    removed = invoke("schedule", "uninstall", "--systemd", "--user")
    assert removed.exit_code == 0, removed.output
    assert not list(unit_dir.iterdir())
    assert log.read_text().splitlines() == [
        f"systemctl --user disable --now {TIMER}", f"systemctl --user clean --what=state {TIMER}",
        "systemctl --user daemon-reload", f"systemctl --user reset-failed {TIMER} {TICK_SERVICE} {FAILED_SERVICE}"]


# --- cron as OnCalendar= --------------------------------------------------------------------------------


def test_cron_forms_systemd_cannot_express_have_no_oncalendar_equivalent_and_say_why():
    for expression in ("0 0 L * *", "0 0 LW * *", "0 0 * * 5L", "0 0 * * MON#2"):
        translation = translate_cron(expression)
        assert translation.oncalendar is None and "systemd has no form" in translation.reason
    either = translate_cron("0 0 13 * FRI")
    assert either.oncalendar is None and "day of the month or the day of the week" in either.reason
    # A restricted day-of-month with every weekday (or the other way round) fires every day of both readings.
    assert cron_to_oncalendar("0 0 1-31 * MON") == "*-*-* 00:00:00 UTC"


@needs_systemd_analyze
def test_systemd_would_fire_a_friday_13th_cron_only_on_fridays_the_13th_which_is_why_there_is_no_equivalent():
    after = datetime(2026, 12, 31, 12, tzinfo=UTC)
    cron = next_slots("0 0 13 * FRI", "UTC", after, 6)
    both = calendar_elapses("Fri *-*-13 00:00:00 UTC", after, 2)
    assert [f"{slot:%m-%d}" for slot in cron] == ["01-01", "01-08", "01-13", "01-15", "01-22", "01-29"]
    assert [f"{slot:%Y-%m-%d}" for slot in both] == ["2027-08-13", "2028-10-13"]


EXPRESSIONS = [
    ("* * * * *", 24), ("*/5 * * * *", 24), ("*/7 * * * *", 24), ("0 * * * *", 24), ("15,45 * * * *", 24),
    ("10-20/3 * * * *", 24), ("0 */6 * * *", 24), ("30 2 * * *", 24), ("0 9 * * MON-FRI", 24), ("0 9 * * 1-5", 24),
    ("0 0 * * 0", 24), ("0 0 * * 7", 24), ("0 0 * * SAT,SUN", 24), ("0 0 * * 5-7", 24), ("0 12 1 * *", 24),
    ("0 0 1,15 * *", 24), ("0 0 31 * *", 12), ("0 6 */2 * *", 24), ("0 6 */2 * MON", 12), ("0 0 29 2 *", 3),
    ("0 0 1 JAN,JUL *", 6), ("5 4 * 6-8 SUN", 12), ("0 0 1-7 * *", 24), ("0 0 1-31 * MON", 24),
    ("0 0,12 1 */3 *", 8),
]


@needs_systemd_analyze
@pytest.mark.parametrize("tz", ["UTC", "Europe/Berlin", "America/New_York"])
@pytest.mark.parametrize(("expression", "count"), EXPRESSIONS, ids=[e for e, _ in EXPRESSIONS])
def test_systemd_fires_the_translation_exactly_when_cron_fires_away_from_daylight_saving_changes(expression, count,
                                                                                              tz):
    after = datetime(2027, 6, 1, tzinfo=UTC)
    oncalendar = cron_to_oncalendar(expression, tz)
    assert oncalendar is not None and oncalendar.endswith(f" {tz}")
    assert calendar_elapses(oncalendar, after, count) == next_slots(expression, tz, after, count)


def differences(expression: str, tz: str, after: str, count: int) -> tuple[list[str], list[str]]:
    """The slots only cron fires and those only systemd fires, over the window both computed."""
    start = datetime.fromisoformat(after)
    cron = next_slots(expression, tz, start, count)
    systemd = calendar_elapses(cron_to_oncalendar(expression, tz), start, count)
    horizon = min(cron[-1], systemd[-1])

    def shown(slots):
        return {f"{slot:%Y-%m-%dT%H:%MZ}" for slot in slots if slot <= horizon}

    return sorted(shown(cron) - shown(systemd)), sorted(shown(systemd) - shown(cron))


# Europe/Berlin 2027: 28 March 02:00 CET -> 03:00 CEST (01:00Z); 31 October 03:00 CEST -> 02:00 CET (01:00Z).
# America/New_York 2027: 14 March 02:00 EST -> 03:00 EDT (07:00Z); 7 November 02:00 EDT -> 01:00 EST (06:00Z).
DST_CASES = [
    # A fixed time that does not exist on the spring-forward day: cron runs it at 03:00, systemd skips the day.
    ("30 2 * * *", "Europe/Berlin", "2027-03-26T12:00Z", 4, ["2027-03-28T01:00Z"], []),
    ("0 2 * * *", "Europe/Berlin", "2027-03-27T12:00Z", 3, ["2027-03-28T01:00Z"], []),
    ("30 2 * * *", "America/New_York", "2027-03-13T12:00Z", 3, ["2027-03-14T07:00Z"], []),
    # Hourly on the spring-forward day: both lose the missing hour.
    ("0 * * * *", "Europe/Berlin", "2027-03-27T23:30Z", 4, [], []),
    ("*/15 2 * * *", "Europe/Berlin", "2027-03-27T12:00Z", 9, [], []),
    # A fixed time in the repeated hour of the fall-back day: both run it once, at its first occurrence.
    ("30 2 * * *", "Europe/Berlin", "2027-10-30T12:00Z", 3, [], []),
    ("30 1 * * *", "America/New_York", "2027-11-06T12:00Z", 3, [], []),
    # Minutes or hours not fixed: cron runs in both repeated hours, systemd in the first only.
    ("0 * * * *", "Europe/Berlin", "2027-10-30T23:30Z", 5, ["2027-10-31T01:00Z"], []),
    ("*/15 2 * * *", "Europe/Berlin", "2027-10-30T12:00Z", 9,
     ["2027-10-31T01:00Z", "2027-10-31T01:15Z", "2027-10-31T01:30Z", "2027-10-31T01:45Z"], []),
    ("*/30 * * * *", "America/New_York", "2027-11-07T04:45Z", 7, ["2027-11-07T06:00Z", "2027-11-07T06:30Z"], []),
    # UTC has no daylight saving: never a difference.
    ("30 2 * * *", "UTC", "2027-03-26T12:00Z", 4, [], []),
    ("0 * * * *", "UTC", "2027-10-30T23:30Z", 5, [], []),
]


@needs_systemd_analyze
@pytest.mark.parametrize(("expression", "tz", "after", "count", "cron_only", "systemd_only"), DST_CASES,
                         ids=[f"{c[0]} {c[1]} {c[2][:10]}" for c in DST_CASES])
def test_on_daylight_saving_days_systemd_and_cron_differ_only_as_documented(expression, tz, after, count, cron_only,
                                                                           systemd_only):
    assert differences(expression, tz, after, count) == (cron_only, systemd_only)


@needs_systemd_analyze
def test_next_systemd_prints_the_oncalendar_equivalent_and_marks_the_slot_only_cron_runs(tmp_path):
    store = str(tmp_path / "store")
    path = tmp_path / "nightly.yaml"
    path.write_text('name: nightly\njob: cluster-sweep\ncron: "30 2 * * *"\ntimezone: Europe/Berlin\n')
    assert invoke("schedule", "create", "-f", str(path), "--store", store).exit_code == 0
    result = invoke("schedule", "next", "nightly", "--systemd", "-n", "3", "--store", store,
                    "--now", "2027-03-26T12:00:00Z")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["OnCalendar=*-*-* 02:30:00 Europe/Berlin"]
    assert result.stderr.splitlines() == ["  2027-03-27T01:30:00Z  both", "  2027-03-28T01:00:00Z  cron only",
                                          "  2027-03-29T00:30:00Z  both"]
    path.write_text('name: nightly\njob: cluster-sweep\ncron: "0 0 13 * FRI"\n')
    assert invoke("schedule", "create", "-f", str(path), "--store", store).exit_code == 0
    none = invoke("schedule", "next", "nightly", "--systemd", "--store", store)
    assert none.exit_code == 1 and "cron '0 0 13 * FRI' has no OnCalendar= equivalent" in none.stderr
