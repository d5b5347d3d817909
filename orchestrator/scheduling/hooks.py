"""The failure hook: a slot's summary (JSON) POSTed to a webhook, or given on standard input to a command.

A webhook URL often carries its secret (a token in the path): it is never written to a message, a record or a
log; only its scheme and host are.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass

from orchestrator.scheduling.spec import FailureHook

WEBHOOK_TIMEOUT_S = 10.0
COMMAND_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class HookDelivery:
    """Whether the hook took the summary, and what it answered (safe to record: no secret in it)."""

    ok: bool
    detail: str

    def to_dict(self) -> dict:
        return {"ok": self.ok, "detail": self.detail}


def fire_failure_hook(hook: FailureHook, summary: dict) -> HookDelivery:
    """Hand ``summary`` to the hook; a hook that fails is reported, never raised (the slot's outcome stands).

    Args:
        hook: The schedule's ``on_failure``.
        summary: The slot's summary (schedule, slot, status, attempts, run ids, reason...).

    Returns:
        How the delivery went.
    """
    body = json.dumps(summary, sort_keys=True).encode()
    if hook.webhook is not None:
        return _post(hook, body)
    return _run(hook, body, summary)


def _post(hook: FailureHook, body: bytes) -> HookDelivery:
    where = hook.describe()
    request = urllib.request.Request(hook.webhook, data=body, method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "dataops-schedule"})
    try:
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_S) as response:
            return HookDelivery(True, f"{where} answered {response.status}")
    except urllib.error.HTTPError as exc:
        return HookDelivery(False, f"{where} answered {exc.code}")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        # The reason of a failed connection names no URL; it is kept short all the same.
        return HookDelivery(False, f"{where} unreachable: {type(reason).__name__}: {str(reason)[:200]}")


def _run(hook: FailureHook, body: bytes, summary: dict) -> HookDelivery:
    where = hook.describe()
    env = {**os.environ, "DATAOPS_SCHEDULE": str(summary.get("schedule", "")),
           "DATAOPS_SLOT": str(summary.get("slot", "")), "DATAOPS_SLOT_STATUS": str(summary.get("status", ""))}
    try:
        done = subprocess.run(hook.command, input=body, capture_output=True, timeout=COMMAND_TIMEOUT_S, env=env,
                              check=False)
    except FileNotFoundError:
        return HookDelivery(False, f"{where}: no such program")
    except subprocess.TimeoutExpired:
        return HookDelivery(False, f"{where}: still running after {COMMAND_TIMEOUT_S:.0f}s, stopped")
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip()[-300:]
        return HookDelivery(False, f"{where} exited {done.returncode}" + (f": {tail}" if tail else ""))
    return HookDelivery(True, f"{where} exited 0")
