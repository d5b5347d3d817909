"""The one way dataops waits for something to reach a state, after openstacksdk's ``wait_for_status``: a deadline,
a poll interval, the states that mean failure, and a timeout that is a different error from a failure."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from typing import TypeVar

from orchestrator.errors import WaitFailed, WaitTimeout

T = TypeVar("T")

POLL_SECONDS = 2.0


def wait_until(
    poll: Callable[[], T],
    *,
    status: Callable[[T], str],
    ready: Collection[str],
    failures: Collection[str] = (),
    timeout_s: float,
    what: str,
    interval_s: float = POLL_SECONDS,
    reason: Callable[[T], str] = lambda current: "",
    timeout_error: type[WaitTimeout] = WaitTimeout,
    failure_error: type[WaitFailed] = WaitFailed,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``poll`` until the status of what it returns is one of ``ready``; fail on ``failures`` or at the deadline.

    ``poll`` is called at once, then every ``interval_s`` seconds; the last sleep is cut short so that the final
    look comes at the deadline, not after it.

    Args:
        poll: Reads the current state of what is waited for (a stack, a server) and returns it.
        status: The status of what ``poll`` returned, such as ``CREATE_IN_PROGRESS``.
        ready: The statuses that end the wait successfully.
        failures: The statuses that end it with ``failure_error``.
        timeout_s: The longest wait, in seconds.
        what: What is waited for, for the messages: ``stack demo``.
        interval_s: Seconds between two polls.
        reason: The cloud's reason for a failure, read from what ``poll`` returned (asked only on failure).
        timeout_error: The WaitTimeout subclass to raise at the deadline.
        failure_error: The WaitFailed subclass to raise on a failure status.
        clock: Monotonic seconds (a fake in tests).
        sleep: Sleeps that many seconds (a fake in tests).

    Returns:
        What ``poll`` returned last, in a ``ready`` status.

    Raises:
        WaitFailed: (``failure_error``) the status became one of ``failures``; the message names ``what``, the
            status and the reason.
        WaitTimeout: (``timeout_error``) the deadline passed first; the message names ``what``, the status it was
            left in, the statuses waited for and the timeout.
    """
    deadline = clock() + timeout_s
    while True:
        current = poll()
        state = status(current)
        if state in ready:
            return current
        if state in failures:
            why = reason(current)
            raise failure_error(f"{what} {state}: {why}" if why else f"{what} {state}")
        remaining = deadline - clock()
        if remaining <= 0:
            raise timeout_error(f"{what} still {state} after {timeout_s:.0f} s (waited for {' or '.join(ready)})")
        sleep(min(interval_s, remaining))
