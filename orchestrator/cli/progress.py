"""How the cloud commands (``cluster``, ``deploy``) show what happens: Heat events, Ansible tasks that changed or
failed, and the steps of a use case, on stderr as they come."""

from __future__ import annotations

from orchestrator.ansible.playbook import TaskEvent
from orchestrator.cli.console import err
from orchestrator.clusters.provision import Progress
from orchestrator.openstack.stacks import StackEvent


def _stack_event(event: StackEvent) -> None:
    reason = f": {event.reason}" if event.reason and "FAILED" in event.status else ""
    err.print(f"  heat  {event.resource:<28} {event.status}{reason}", markup=False)


def _task(event: TaskEvent) -> None:
    # Tasks that ran unchanged are noise on a cluster of many nodes.
    if event.status in ("changed", "failed", "unreachable"):
        message = f": {event.message}" if event.message else ""
        err.print(f"  {event.host:<28} {event.status:<11} {event.task}{message}", markup=False)


def _step(message: str) -> None:
    err.print(f"[bold]{message}[/bold]")


def console_progress() -> Progress:
    """Progress callbacks that print to the console's stderr."""
    return Progress(on_stack_event=_stack_event, on_task=_task, on_step=_step)
