"""``dataops schedule install|uninstall|tick-failed``, ``schedule tick --loop`` and ``schedule next --systemd``:
the runner of this machine, as systemd units or as a loop under a supervisor."""

from __future__ import annotations

from pathlib import Path

import typer

from orchestrator.cli.console import emit_json, err, out
from orchestrator.cli.options import StoreOption

SystemdFlag = typer.Option(False, "--systemd", help="systemd units: the one kind of runner install writes.")
ScopeOption = typer.Option(None, "--system/--user", help="System units (/etc/systemd/system) or the user's "
                                                         "(~/.config/systemd/user); default: system units as root.")
UnitDirOption = typer.Option(None, "--unit-dir", help="Only write the units to this folder, without enabling them "
                                                      "(tests, packages).")
RunnerOption = typer.Option(None, "--runner", help="The runner identity of every tick of this host; default: the "
                                                   "host name.")


def _scope(system: bool | None) -> str | None:
    return None if system is None else ("system" if system else "user")


def _require_systemd(systemd: bool) -> None:
    if not systemd:
        raise typer.BadParameter("give --systemd (the one kind of runner install writes); where systemd is not the "
                                 "service manager, run `dataops schedule tick --loop` under a supervisor",
                                 param_hint="--systemd")


def install(
    systemd: bool = SystemdFlag,
    system: bool | None = ScopeOption,
    store: str | None = StoreOption,
    every: str = typer.Option("60s", "--every", help="Interval of the ticks; it divides a minute, an hour or a day."),
    runner: str | None = RunnerOption,
    unit_dir: Path | None = UnitDirOption,
    run_deadline: str | None = typer.Option(
        None, "--run-deadline", help="The tick's time limit, less a minute; default: the longest run_deadline of the "
                                     "store's schedules now (install again after adding a longer one)."),
    environment_file: Path | None = typer.Option(
        None, "--environment-file", help="Variables of the services, such as OS_CLOUD and OS_CLIENT_CONFIG_FILE "
                                         "(absolute path, mode 0600)."),
    run_as: str | None = typer.Option(None, "--run-as", help="The user system units run as; default: the one who "
                                                             "ran sudo, else root."),
) -> None:
    """Write, check and enable a timer that ticks the store, with a tick service whose failures mark its slots lost
    and fire their hooks."""
    from orchestrator.usecases.schedule_install import install_runner

    _require_systemd(systemd)
    report = install_runner(_scope(system), store, every, runner, unit_dir, run_deadline, environment_file, run_as)
    for path in report.files:
        out.print(str(path))
    checked = "checked with systemd-analyze verify" if report.verified else "not checked"
    err.print(f"{report.scope} units written to {report.unit_dir} ({checked}): {report.units.executable} ticks "
              f"{report.units.store} as runner {report.units.runner} ({report.units.oncalendar}, time limit "
              f"{report.units.timeout_start})", markup=False)
    for command in report.commands:
        err.print(f"  ran: {command}", markup=False)
    for warning in report.warnings:
        err.print(f"[yellow]warning[/]: {warning}")
    if not report.enabled:
        err.print("not enabled (--unit-dir): enable them with systemctl once they are where the manager reads units")


def uninstall(systemd: bool = SystemdFlag, system: bool | None = ScopeOption,
              unit_dir: Path | None = UnitDirOption) -> None:
    """Disable and remove the runner's units (a tick running now finishes)."""
    from orchestrator.usecases.schedule_install import uninstall_runner

    _require_systemd(systemd)
    report = uninstall_runner(_scope(system), unit_dir)
    for path in report.removed:
        out.print(str(path))
    for command in report.commands:
        err.print(f"  ran: {command}", markup=False)
    for warning in report.warnings:
        err.print(f"[yellow]warning[/]: {warning}")
    err.print(f"{report.scope} units removed from {report.unit_dir}" if report.removed
              else f"no dataops units in {report.unit_dir}", markup=False)


def tick_failed(
    store: str | None = StoreOption,
    runner: str | None = RunnerOption,
    as_json: bool = typer.Option(False, "--json", help="Print what was done as JSON."),
) -> None:
    """Record lost the slots a failed tick unit was running under RUNNER, so the next tick resumes them at once, and
    fire their failure hooks: what the tick unit's OnFailure= runs."""
    from orchestrator.usecases.schedule_install import host_runner_id
    from orchestrator.usecases.tick_loop import tick_failed as record_runner_failed

    report = record_runner_failed(store, runner or host_runner_id())
    if as_json:
        emit_json(report.to_dict())
    else:
        how = report.unit_result.describe() if report.unit_result else "no result from systemd"
        err.print(f"runner {report.runner} failed ({how}): {len(report.lost)} slot(s) it was running", markup=False)
        for lost in report.lost:
            hook = f"; hook: {lost.hook.detail}" if lost.hook else ""
            err.print(f"  lost  {lost.schedule} {lost.slot} attempt {lost.attempt}: {lost.status}{hook}", markup=False)
    for name, message in report.errors.items():
        err.print(f"Error: schedule {name}: {message}", markup=False)
    if report.errors or any(lost.hook is not None and not lost.hook.ok for lost in report.lost):
        raise typer.Exit(1)


def tick_loop(store: str | None, every: str, runner: str | None, now: str | None = None) -> None:
    """``dataops schedule tick --loop``: tick until SIGTERM, printing each tick's outcomes as ``tick`` does."""
    from orchestrator.cli.schedule import _print_outcome
    from orchestrator.usecases.tick_loop import run_tick_loop

    if now is not None:
        raise typer.BadParameter("a loop ticks on the clock: --now goes with a single tick", param_hint="--now")

    def print_tick(report) -> None:
        for outcome in report.outcomes:
            _print_outcome(outcome)
        for name, message in report.errors.items():
            err.print(f"Error: schedule {name}: {message}", markup=False)

    def print_error(message: str) -> None:
        err.print(f"Error: tick failed, trying again at the next one: {message}", markup=False)

    def print_start(summary) -> None:
        err.print(f"ticking every {every} until SIGTERM as runner {summary.runner}", markup=False)
        for lost in summary.recovered.lost if summary.recovered else ():
            err.print(f"  taken over  {lost.schedule} {lost.slot} attempt {lost.attempt}: left running by an ended "
                      f"process of this runner; the first tick resumes it", markup=False)

    summary = run_tick_loop(store, every, runner, on_start=print_start, on_tick=print_tick, on_error=print_error)
    err.print(f"stopped by {summary.stopped_by} after {summary.ticks} tick(s) as runner {summary.runner}"
              + (f", {summary.failed_ticks} failed" if summary.failed_ticks else ""), markup=False)
    if summary.abandoned is not None:
        for lost in summary.abandoned.lost:
            err.print(f"  abandoned  {lost.schedule} {lost.slot} attempt {lost.attempt}: the next tick resumes it",
                      markup=False)
    if summary.exit_code:
        raise typer.Exit(summary.exit_code)


def print_oncalendar(name: str, count: int, store: str | None, now) -> None:
    """``dataops schedule next NAME --systemd``: the OnCalendar= equivalent, and where systemd's slots differ."""
    from orchestrator.usecases.schedule_install import oncalendar_preview

    preview = oncalendar_preview(name, count, store, now)
    if preview["oncalendar"] is None:
        err.print(f"cron '{preview['cron']}' has no OnCalendar= equivalent: {preview['reason']}", markup=False)
        raise typer.Exit(1)
    out.print(f"OnCalendar={preview['oncalendar']}", markup=False)
    if preview["systemd_slots"] is None:
        return
    cron, systemd = set(preview["cron_slots"]), set(preview["systemd_slots"])
    horizon = min(max(preview["cron_slots"]), max(preview["systemd_slots"], default=max(cron)))
    for slot in sorted(cron | systemd):
        if slot <= horizon:
            mark = "both" if slot in cron and slot in systemd else ("cron only" if slot in cron else "systemd only")
            err.print(f"  {slot:%Y-%m-%dT%H:%M:%SZ}  {mark}", markup=False)


def register(schedule_app: typer.Typer) -> None:
    """Add install, uninstall and tick-failed to ``dataops schedule``."""
    schedule_app.command("install")(install)
    schedule_app.command("uninstall")(uninstall)
    schedule_app.command("tick-failed")(tick_failed)
