"""Running the tick on this machine without a timer: ``dataops schedule tick --loop``, the runner where systemd is
not the service manager (a container, a host under runit or supervise), and ``dataops schedule tick-failed``, what
systemd starts when a timer's tick unit failed.

The loop ticks at every multiple of ``--every`` on the wall clock (second 0 of each minute for 60 s), under one
runner identity for its whole life. One tick's failure is reported and the loop goes on. The first SIGTERM (or
SIGINT) lets the running tick finish and stops the loop; a second one abandons the running slot at once: its attempt
is recorded lost, so the next tick, of any runner, resumes it through its lease without waiting for its deadline.
"""

from __future__ import annotations

import math
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from orchestrator.artifacts.open import open_store
from orchestrator.config import setting
from orchestrator.durations import parse_duration
from orchestrator.pipeline.runner import StageEvent
from orchestrator.scheduling.runner_failure import RunnerFailureReport, UnitResult, fail_runner_attempts
from orchestrator.scheduling.tick import TickReport
from orchestrator.usecases.schedules import runner_identity, tick_schedules

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class LoopAbandoned(BaseException):
    """Raised in the loop by a second stop signal. A ``BaseException``, as a kill is: the tick records any
    ``Exception`` of a run as the slot's outcome, and an abandoned run has none."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@dataclass
class LoopSummary:
    """How the loop ended.

    Attributes:
        runner: The runner identity of all its ticks.
        ticks: Ticks that ran to the end.
        failed_ticks: Ticks that raised (reported, then the loop went on).
        stopped_by: The signal that stopped it (``SIGTERM``...).
        abandoned: When a second signal abandoned a tick: the attempts recorded lost.
        recovered: At the start of a loop with a stable ``--runner``: the attempts a previous process of that
            runner left running (it was killed), recorded lost so that the first tick resumes them.
    """

    runner: str
    ticks: int = 0
    failed_ticks: int = 0
    stopped_by: str | None = None
    abandoned: RunnerFailureReport | None = None
    recovered: RunnerFailureReport | None = None
    signals: list[int] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0 for a loop stopped between ticks or after one; 128 + the signal for one that abandoned a run."""
        return 128 + self.signals[-1] if self.abandoned is not None else 0


class _StopSignals:
    """SIGTERM and SIGINT while the loop runs: the first asks it to stop, the second abandons the running tick,
    a third gets the default action (the handlers are the previous ones again by then)."""

    def __init__(self, summary: LoopSummary):
        self.summary = summary
        self.stop = threading.Event()
        self._previous: dict[int, object] = {}

    def __enter__(self) -> _StopSignals:
        if threading.current_thread() is threading.main_thread():  # Python only lets the main thread handle them
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        self._restore()

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame) -> None:
        self.summary.signals.append(signum)
        if not self.stop.is_set():
            self.summary.stopped_by = signal.Signals(signum).name
            self.stop.set()
            return
        self._restore()
        raise LoopAbandoned(signum)


def next_tick_at(now: float, every_s: float) -> float:
    """The first multiple of ``every_s`` (seconds since the epoch, so in UTC) strictly after ``now``."""
    return (math.floor(now / every_s) + 1) * every_s


def run_tick_loop(store: str | None = None, every: str = "60s", runner: str | None = None, *,
                  on_start: Callable[[LoopSummary], None] | None = None,
                  on_tick: Callable[[TickReport], None] | None = None,
                  on_error: Callable[[str], None] | None = None,
                  on_event: StageEvent | None = None,
                  wall_clock: Callable[[], float] = time.time) -> LoopSummary:
    """Tick the store at every multiple of ``every`` until SIGTERM or SIGINT.

    Args:
        store: Where the schedules are kept (else the ``store`` setting).
        every: The interval, a duration such as ``60s``; ticks fall on its multiples since the epoch.
        runner: The runner identity of every tick; default: host, process and a random part, fixed for the loop.
        on_start: Told the summary once the loop has started (its runner, the attempts it took over).
        on_tick: Told each tick's report.
        on_error: Told the message of a tick that raised.
        on_event: Stage events of the pipeline runs.
        wall_clock: Seconds since the epoch (tests).

    Returns:
        How the loop ended; its ``exit_code`` is the process's.

    Raises:
        InvalidDuration: ``every`` is not a duration.
    """
    every_s = parse_duration(every, "--every")
    location = setting("store", store)
    summary = LoopSummary(runner or runner_identity())
    if runner is not None:
        summary.recovered = _recover_own_attempts(location, runner, on_error)
    if on_start is not None:
        on_start(summary)
    with _StopSignals(summary) as signals:
        try:
            while not signals.stop.wait(max(0.0, next_tick_at(wall_clock(), every_s) - wall_clock())):
                try:
                    report = tick_schedules(location, runner=summary.runner, on_event=on_event)
                except Exception as exc:  # the store unreachable for a minute: the next tick tries again
                    summary.failed_ticks += 1
                    if on_error is not None:
                        on_error(f"{type(exc).__name__}: {exc}" if not str(exc) else str(exc))
                    continue
                summary.ticks += 1
                if on_tick is not None:
                    on_tick(report)
        except LoopAbandoned as exc:
            summary.abandoned = fail_runner_attempts(
                open_store(location), summary.runner, datetime.now(UTC),
                why=f"its loop was stopped by a second {exc} during the run", fire_hooks=False)
    return summary


def _recover_own_attempts(location: str, runner: str,
                          on_error: Callable[[str], None] | None) -> RunnerFailureReport | None:
    """A loop given its runner identity is the only process of that identity (one per host, as a timer's tick
    is): any attempt still running under it was left by a previous process that was killed (SIGKILL, the OOM
    killer, a reboot), which a supervisor restarted. Recorded lost, with the failure hooks told, its slots are
    resumed by the first tick instead of waiting for the lease to lapse."""
    try:
        return fail_runner_attempts(open_store(location), runner, datetime.now(UTC),
                                    why="its process ended during the run; a new loop of the runner took over")
    except Exception as exc:  # the store unreachable at start: the leases lapse on their own
        if on_error is not None:
            on_error(f"could not look for slots runner {runner} left running: {exc}")
        return None


def tick_failed(store: str | None, runner: str, environ: Mapping[str, str] | None = None,
                now: datetime | None = None) -> RunnerFailureReport:
    """What ``OnFailure=`` runs after a failed tick unit: record lost the attempts ``runner`` left running, so the
    next tick takes their slots over at once, and fire their schedules' failure hooks (event ``runner_failed``).

    Args:
        store: Where the schedules are kept (else the ``store`` setting).
        runner: The failed tick unit's runner identity.
        environ: Where systemd's ``MONITOR_*`` variables are read (default: this process's environment).
        now: When the loss is recorded (default: the clock).

    Returns:
        The attempts recorded lost, with their hooks' deliveries.
    """
    environ = os.environ if environ is None else environ
    return fail_runner_attempts(open_store(setting("store", store)), runner, now or datetime.now(UTC),
                                UnitResult.from_environment(environ))
