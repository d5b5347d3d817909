"""``dataops schedule runner create|list|show|delete|rotate-credential``: schedule runner VMs on OpenStack, which tick
the schedules of a store with an application credential of their own while the operator's machine is off."""

from __future__ import annotations

from pathlib import Path

import typer

from orchestrator.cli.console import emit_json, err, out
from orchestrator.cli.progress import console_progress
from orchestrator.cli.timeouts import stack_timeout_s, timeout_option

runner_app = typer.Typer(help="Runner VMs that tick the schedules of a store, with a credential of their own.",
                         no_args_is_help=True)


@runner_app.command("create")
def create(
    file: Path = typer.Option(..., "--file", "-f", help="Runner file (runner.yaml)."),
    cloud: str | None = typer.Option(None, "--cloud", help="clouds.yaml entry (default: the file's, then OS_CLOUD)."),
    timeout: str | None = timeout_option("stack_timeout"),
) -> None:
    """Create a runner VM: Heat stack, an application credential for it alone, the project installed from wheels
    built here, and its tick started."""
    from orchestrator.usecases import runners

    ready = runners.create_runner(file, console_progress(), cloud_name=cloud,
                                  stack_timeout_s=stack_timeout_s("stack_timeout", timeout))
    t = ready.timings
    err.print(
        f"Runner {ready.name} ticks as {ready.runner_id} at {ready.public_address or ready.address}; credential "
        f"{ready.credential.name} expires {ready.credential.expires_at} (Heat {t['heat']:.0f} s, installation "
        f"{t['configure']:.0f} s, total {t['total']:.0f} s)",
        markup=False,
    )
    out.print(ready.name, markup=False)


@runner_app.command("list")
def list_runners(as_json: bool = typer.Option(False, "--json", help="Print JSON on stdout.")) -> None:
    """List the runners created from this machine."""
    from orchestrator.usecases import runners

    rows = runners.list_runners()
    if as_json:
        emit_json(rows)
        return
    if not rows:
        err.print("No runners.")
        return
    for row in rows:
        out.print(f"{row['name']:<24} {row['status']:<12} {row['store']:<28} {row['address'] or '-':<16} "
                  f"credential expires {row['credential_expires_at'] or '-'}", markup=False)


@runner_app.command("show")
def show(name: str = typer.Argument(..., help="Runner name.")) -> None:
    """Show a runner's record as JSON: its file, stack outputs, identity and credential (id, name, expiry)."""
    from orchestrator.usecases import runners

    emit_json(runners.describe_runner(name))


@runner_app.command("delete")
def delete(
    name: str = typer.Argument(..., help="Runner name."),
    cloud: str | None = typer.Option(None, "--cloud", help="clouds.yaml entry (default: the runner's, then OS_CLOUD)."),
    timeout: str | None = timeout_option("stack_delete_timeout"),
) -> None:
    """Delete a runner VM with its key pair and credentials; the schedules and their history stay in the store."""
    from orchestrator.usecases import runners

    swept = runners.delete_runner(name, cloud, stack_timeout_s("stack_delete_timeout", timeout))
    for leftover in swept:
        label = leftover.extra.get("name", leftover.id)
        err.print(f"  deleted {leftover.kind.replace('_', ' ')} {label}", markup=False)
    err.print(f"Runner {name} deleted.", markup=False)


@runner_app.command("rotate-credential")
def rotate_credential(name: str = typer.Argument(..., help="Runner name.")) -> None:
    """Give a runner a new application credential (a fresh expiry), then revoke its old ones."""
    from orchestrator.usecases import runners

    issued, revoked = runners.rotate_credential(name, console_progress())
    err.print(f"Runner {name} now holds credential {issued.name}, expiring {issued.expires_at}; revoked "
              f"{', '.join(c.name for c in revoked) or 'none'}.", markup=False)
