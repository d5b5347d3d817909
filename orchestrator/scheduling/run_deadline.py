"""A slot's run stopped at its run deadline by the process that runs it.

The lease already bounds a run for everyone else: past its deadline (or once its heartbeat stops) another runner
takes the slot over. Without a stop in the running process, a hung run would go on beside the one taking over, and
a ``tick --loop`` would hang with it, ticking no other schedule. So the tick arms a timer for each run (SIGALRM in
the main thread, as ``timeout(1)`` would, but without leaving the process) that raises :class:`RunDeadlineExceeded`
into the run: the slot is recorded failed (and retried) while this runner still holds its lease. A run stuck where
no signal reaches Python (a C call that never returns) is killed with its process after a grace period: its lease
then lapses and the next tick, of any runner, takes the slot over.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from orchestrator.errors import DataopsError

# Stopped this much before the lease's deadline, so the failure is recorded while this runner still holds the slot
# (another runner's tick may take it over the moment the lease lapses): 2 % of the deadline, at most a minute.
MARGIN_FRACTION, MARGIN_MAX_S = 0.02, 60.0
# After the timer fired, how long the run may take to unwind (closing its Dask cluster) before the process is killed.
GRACE_S = 60.0


class RunDeadlineExceeded(DataopsError):
    """A run went on past its schedule's run deadline and was stopped; the slot is retried like any failed run."""

    exit_code = 27
    retryable = True


def stop_after(run_deadline_s: float) -> float:
    """When a run with this deadline is stopped, in seconds after its start: a little before the lease lapses."""
    return max(run_deadline_s - min(MARGIN_MAX_S, run_deadline_s * MARGIN_FRACTION), run_deadline_s / 2)


@contextmanager
def enforced_deadline(seconds: float, message: str, *, grace_s: float = GRACE_S,
                      kill: Callable[[], None] | None = None) -> Iterator[None]:
    """Raise :class:`RunDeadlineExceeded` in the body once it has run ``seconds``, and kill the process if the body
    has not ended ``grace_s`` after that.

    Only the main thread receives signals: elsewhere the body runs unbounded (its lease still bounds it for other
    runners). A timer armed outside (``signal.setitimer``) is not supported: this one replaces it while the body runs.

    Args:
        seconds: The body's time limit.
        message: The error's message ("every-minute 2026-12-01T10:00:00Z ran past its run deadline of 4h").
        grace_s: How long the body may unwind after the error was raised.
        kill: What ends the process after the grace (default: SIGKILL to itself).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    kill = kill or (lambda: os.kill(os.getpid(), signal.SIGKILL))
    last_resort = threading.Timer(grace_s, kill)
    last_resort.daemon = True

    def on_alarm(signum, frame) -> None:
        last_resort.start()
        raise RunDeadlineExceeded(message)

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        last_resort.cancel()
