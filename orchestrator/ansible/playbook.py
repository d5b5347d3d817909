"""Run a playbook with ansible-runner in a private data directory, stream its events, turn failures into errors."""

from __future__ import annotations

import os
import shutil
import sys
import time
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import ansible_runner

from orchestrator.errors import ConfigurationFailed

PLAYBOOKS_DIR = Path(__file__).resolve().parents[2] / "playbooks"

_FAILURE_EVENTS = {"runner_on_failed", "runner_on_unreachable"}


@dataclass(frozen=True)
class TaskEvent:
    """One finished task on one host, as shown while a play runs."""

    host: str
    task: str
    status: str  # ok, changed, failed, unreachable, skipped
    message: str = ""


@dataclass
class PlaybookResult:
    """Outcome of a successful run: per-host counts of changed tasks and the seconds it took."""

    changed: dict[str, int] = field(default_factory=dict)
    ok: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def total_changed(self) -> int:
        """Number of tasks that changed something, over all hosts."""
        return sum(self.changed.values())


def _task_event(event: dict) -> TaskEvent | None:
    kind = event.get("event", "")
    data = event.get("event_data", {})
    if not kind.startswith("runner_on_") or kind in {"runner_on_start"}:
        return None
    result = data.get("res") or {}
    if kind == "runner_on_ok":
        status = "changed" if result.get("changed") else "ok"
    else:
        status = kind.removeprefix("runner_on_")
    message = ""
    if kind in _FAILURE_EVENTS:
        message = _reason(result)
    return TaskEvent(host=data.get("host", "?"), task=data.get("task", "?"), status=status, message=message)


def _reason(result: dict) -> str:
    parts = [str(result.get(key) or "").strip() for key in ("msg", "reason", "stderr", "module_stderr")]
    # Fact gathering reports each failing module separately, with the real reason inside.
    for module, detail in (result.get("failed_modules") or {}).items():
        parts.append(f"{module}: {_reason(detail)}")
    # A loop reports "One or more items failed"; each failed item holds its own reason.
    for item in result.get("results") or []:
        if isinstance(item, dict) and item.get("failed"):
            parts.append(_reason(item))
    return " | ".join(dict.fromkeys(p for p in parts if p))[:2000]


def run_playbook(
    playbook: str,
    inventory: dict,
    extravars: dict | None = None,
    limit: str | None = None,
    on_event: Callable[[TaskEvent], None] | None = None,
    forks: int = 32,
    timeout_seconds: int = 1800,
) -> PlaybookResult:
    """Run ``playbooks/<playbook>`` against ``inventory`` and raise on the first failing host.

    Args:
        playbook: File name of a site playbook under ``playbooks/`` (e.g. ``site.yml``).
        inventory: Inventory from :func:`orchestrator.ansible.inventory.build_inventory`.
        extravars: Variables passed with ``-e``; never logged by ansible-runner's own output here.
        limit: Host pattern restricting the run (used to configure only new nodes after a scale-up).
        on_event: Called with each finished task, as it finishes.
        forks: Hosts configured in parallel.
        timeout_seconds: The whole run is stopped after this many seconds.

    Returns:
        Per-host counts of changed and ok tasks.

    Raises:
        ConfigurationFailed: A host failed or was unreachable; names host, task and reason.
    """
    private_dir = Path(tempfile.mkdtemp(prefix="dataops-ansible-"))
    failures: list[TaskEvent] = []

    def handle(event: dict) -> bool:
        task_event = _task_event(event)
        if task_event is not None:
            if task_event.status in ("failed", "unreachable") and not event.get("event_data", {}).get("ignore_errors"):
                failures.append(task_event)
            if on_event is not None:
                on_event(task_event)
        # Only the final stats event is kept: runner.stats reads it back; every other event is dropped here.
        return event.get("event") == "playbook_on_stats"

    try:
        (private_dir / "env").mkdir()
        started = time.monotonic()
        runner = ansible_runner.run(
            private_data_dir=str(private_dir),
            project_dir=str(PLAYBOOKS_DIR),
            playbook=playbook,
            inventory=inventory,
            extravars=extravars or {},
            limit=limit,
            forks=forks,
            timeout=timeout_seconds,
            quiet=True,
            event_handler=handle,
            envvars={
                "ANSIBLE_CONFIG": str(PLAYBOOKS_DIR / "ansible.cfg"),
                "ANSIBLE_ROLES_PATH": str(PLAYBOOKS_DIR / "roles"),
                "ANSIBLE_NOCOLOR": "1",
                # ansible-playbook lives next to this interpreter, which may not be on PATH (an unactivated venv).
                "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
            },
            settings={"suppress_ansible_output": True},
        )
        stats = runner.stats or {}
        if runner.status != "successful" or failures:
            output_tail = "\n".join(runner.stdout.read().strip().splitlines()[-5:]) if not failures else ""
            raise ConfigurationFailed(_failure_message(runner.status, runner.rc, failures, output_tail))
        return PlaybookResult(
            changed=dict(stats.get("changed", {})),
            ok=dict(stats.get("ok", {})),
            seconds=time.monotonic() - started,
        )
    finally:
        # The private directory holds the rendered inventory and extra variables: remove it.
        shutil.rmtree(private_dir, ignore_errors=True)


def _failure_message(status: str, rc: int, failures: list[TaskEvent], output_tail: str = "") -> str:
    if not failures:
        return f"configuration did not complete (ansible-runner status {status}, exit code {rc}):\n{output_tail}"
    lines = [f"configuration failed on {len(failures)} task(s):"]
    lines += [f"  {f.host}: task '{f.task}' {f.status}: {f.message or 'no message'}" for f in failures]
    return "\n".join(lines)
