"""``dataops schedule create|list|show|next|pause|resume|run-now|backfill|delete|tick``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from orchestrator.cli.console import emit_json, err, out
from orchestrator.cli.options import JsonOption, StoreOption

schedule_app = typer.Typer(help="Schedules kept in the store, and the tick a runner executes.", no_args_is_help=True)

NowOption = typer.Option(None, "--now", help="The time to act at, ISO 8601 (tests and backfills); default: the clock.")
MARKS = {"succeeded": "[green]succeeded[/]", "failed": "[red]failed[/]", "retrying": "[yellow]retrying[/]",
         "skipped": "[dim]skipped[/]", "missed": "[dim]missed[/]", "running": "[cyan]running[/]",
         "waiting": "[dim]waiting[/]", "already": "[dim]already[/]", "would-run": "would run"}


def _now(text: str | None):
    from orchestrator.usecases.schedules import parse_time

    return parse_time(text, "--now") if text else None


def _print_outcome(outcome) -> None:
    detail = outcome.reason or (f"run {outcome.run_id}" if outcome.run_id else "")
    err.print(f"  {MARKS.get(outcome.action, outcome.action):<20} {outcome.schedule} {outcome.slot}  {detail}")


@schedule_app.command("create")
def create(
    file: Path = typer.Option(..., "-f", "--file", help="The schedule YAML file."),
    store: str | None = StoreOption,
    now: str | None = NowOption,
) -> None:
    """Keep the schedule of FILE in the store (an existing one of that name is updated); it starts from now."""
    from orchestrator.usecases.schedules import create_schedule, upcoming_slots

    spec, outcome = create_schedule(file, store, _now(now))
    first = upcoming_slots(spec.name, 1, store, _now(now))[0]
    err.print(f"schedule [bold]{spec.name}[/] {outcome}: {spec.what}, cron '{spec.cron}' {spec.timezone}; "
              f"next slot {first[0]:%Y-%m-%d %H:%M}Z")
    out.print(spec.name)


@schedule_app.command("list")
def list_(store: str | None = StoreOption, as_json: bool = JsonOption) -> None:
    """List the schedules of the store."""
    from orchestrator.usecases.schedules import list_schedules

    rows = list_schedules(store)
    if as_json:
        emit_json(rows)
        return
    table = Table("schedule", "runs", "cron", "state", "next slot (UTC)", "last slot", "last status")
    for row in rows:
        table.add_row(row["name"], row["runs"], f"{row['cron']} {row['timezone']}",
                      "paused" if row["paused"] else "active", row["next"], row["last_slot"] or "-",
                      row["last_status"] or "-")
    out.print(table)


@schedule_app.command("show")
def show(
    name: str = typer.Argument(...),
    store: str | None = StoreOption,
    history: int = typer.Option(10, "--history", min=0, help="How many of the newest slots to show."),
    as_json: bool = JsonOption,
) -> None:
    """Show one schedule: its spec, whether it is paused, its next slots and the history of its latest slots."""
    from orchestrator.usecases.schedules import show_schedule

    data = show_schedule(name, store, history)
    if as_json:
        emit_json(data)
        return
    control = data["control"]
    state = f"paused ({control['paused_reason']})" if control["paused"] else "active"
    out.print(f"schedule {name}  {state}  {data['spec']['cron']} {data['spec']['timezone']}  "
              f"catchup {data['spec']['catchup']}  concurrency {data['spec']['concurrency']}")
    out.print(f"next slots (UTC): {', '.join(data['next'])}")
    table = Table("slot (UTC)", "status", "trigger", "attempts", "run ids", "reason")
    for record in data["history"]:
        table.add_row(record["slot"], record["status"], record["trigger"], str(len(record["attempts"])),
                      ", ".join(record["run_ids"]), record["reason"])
    out.print(table)


@schedule_app.command("next")
def next_(
    name: str = typer.Argument(...),
    count: int = typer.Option(5, "-n", min=1, max=1000, help="How many slots."),
    store: str | None = StoreOption,
    now: str | None = NowOption,
    systemd: bool = typer.Option(False, "--systemd", help="Print the OnCalendar= equivalent of the cron expression, "
                                                           "and where systemd's slots would differ."),
) -> None:
    """Print the next slots, in UTC and in the schedule's time zone (daylight saving shows as it will happen)."""
    from orchestrator.usecases.schedules import upcoming_slots

    if systemd:
        from orchestrator.cli.schedule_runner_local import print_oncalendar

        return print_oncalendar(name, count, store, _now(now))
    for utc, local in upcoming_slots(name, count, store, _now(now)):
        out.print(f"{utc:%Y-%m-%dT%H:%M:%SZ}  {local.isoformat()} {local.tzname()}")


@schedule_app.command("pause")
def pause(
    name: str = typer.Argument(...),
    store: str | None = StoreOption,
    reason: str = typer.Option("paused by an operator", "--reason"),
) -> None:
    """Pause a schedule: no slot of it starts until it is resumed (running ones finish)."""
    from orchestrator.usecases.schedules import pause_schedule

    pause_schedule(name, store, reason)
    err.print(f"schedule [bold]{name}[/] paused")


@schedule_app.command("resume")
def resume(name: str = typer.Argument(...), store: str | None = StoreOption, now: str | None = NowOption) -> None:
    """Resume a schedule from now: slots that passed while it was paused are not caught up (backfill runs them)."""
    from orchestrator.usecases.schedules import resume_schedule

    resume_schedule(name, store, _now(now))
    err.print(f"schedule [bold]{name}[/] resumed")


@schedule_app.command("run-now")
def run_now(name: str = typer.Argument(...), store: str | None = StoreOption) -> None:
    """Run one slot of NAME now, here (through the same lease and history as a runner's tick)."""
    from orchestrator.cli.run import StageProgress
    from orchestrator.usecases.schedules import run_now as run_slot_now

    outcome = run_slot_now(name, store, on_event=StageProgress())
    _print_outcome(outcome)
    if outcome.action == "failed":
        raise typer.Exit(1)


@schedule_app.command("backfill")
def backfill(
    name: str = typer.Argument(...),
    start: str = typer.Option(..., "--from", help="First instant of the window, ISO 8601 (UTC if no zone)."),
    end: str = typer.Option(..., "--to", help="Last instant of the window, ISO 8601 (UTC if no zone)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only say which slots would run."),
    store: str | None = StoreOption,
) -> None:
    """Run, here and oldest first, the slots of NAME in a window that did not succeed."""
    from orchestrator.cli.run import StageProgress
    from orchestrator.usecases.schedules import backfill as backfill_slots
    from orchestrator.usecases.schedules import parse_time

    outcomes = backfill_slots(name, parse_time(start, "--from"), parse_time(end, "--to"), store, dry_run,
                              on_event=None if dry_run else StageProgress())
    for outcome in outcomes:
        _print_outcome(outcome)
    if not outcomes:
        err.print(f"no slot of {name} between {start} and {end}")
    if any(o.action == "failed" for o in outcomes):
        raise typer.Exit(1)


@schedule_app.command("delete")
def delete(name: str = typer.Argument(...), store: str | None = StoreOption) -> None:
    """Delete a schedule with its history and leases."""
    from orchestrator.usecases.schedules import delete_schedule

    removed = delete_schedule(name, store)
    err.print(f"schedule [bold]{name}[/] deleted ({removed} objects)")


@schedule_app.command("tick")
def tick(
    store: str | None = StoreOption,
    now: str | None = NowOption,
    as_json: bool = typer.Option(False, "--json", help="Print what the tick did as JSON."),
    runner: str | None = typer.Option(None, "--runner", help="This runner's identity, the same for every tick of a "
                                                             "host; default: host, process and a random part."),
    loop: bool = typer.Option(False, "--loop", help="Tick at every multiple of --every on the clock until SIGTERM: "
                                                    "the runner where systemd is not the service manager."),
    every: str = typer.Option("60s", "--every", help="With --loop: the interval of the ticks."),
) -> None:
    """Start every slot that is due, record the ones skipped or missed: what a runner executes, every minute."""
    from orchestrator.usecases.schedules import tick_schedules

    if loop:
        from orchestrator.cli.schedule_runner_local import tick_loop

        return tick_loop(store, every, runner, now)
    report = tick_schedules(store, _now(now), runner)
    if as_json:
        emit_json(report.to_dict())
    else:
        for outcome in report.outcomes:
            _print_outcome(outcome)
        for name in report.paused:
            err.print(f"  [dim]paused[/]               {name}")
    for name, message in report.errors.items():
        err.print(f"Error: schedule {name}: {message}", markup=False)
    if report.errors:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(schedule_app, name="schedule")


# The other schedule commands live in modules of their own; they register on this group, which they import.
from orchestrator.cli.runner import runner_app  # noqa: E402
from orchestrator.cli.schedule_export import register as _register_export  # noqa: E402
from orchestrator.cli.schedule_runner_local import register as _register_local_runner  # noqa: E402

_register_local_runner(schedule_app)  # install, uninstall, tick-failed
_register_export(schedule_app)  # export, run-slot
schedule_app.add_typer(runner_app, name="runner")  # runner VMs: create, list, show, delete, rotate-credential
