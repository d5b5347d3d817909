"""The clock of a closed-loop test: windows of ``every_s`` seconds from a start, shifted traffic sent in each, and
the watch's step taken at each window's end, once the window's rows are in the store."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from orchestrator.usecases.watch import watch_step
from tests.support.drifting_visits import MODEL


class WindowedWorld:
    """What a loop test's world shares: subclasses set ``start``, ``every_s``, ``store`` and ``watch``, and send
    one window's traffic in ``send()``, returning once it is captured."""

    start: datetime
    every_s: float

    def send(self) -> None:
        raise NotImplementedError

    def captured(self) -> int:
        """Rows captured in the store so far, for every version of the model."""
        return sum(len(self.store.get_bytes(key).splitlines()) for key in self.store.list(f"captures/{MODEL}/"))

    def wait_captured(self, rows: int, timeout_s: float, detail=lambda: "") -> None:
        """Until ``rows`` rows are captured in all."""
        deadline = time.monotonic() + timeout_s
        while self.captured() < rows:
            assert time.monotonic() < deadline, f"{rows} rows expected in the store, {self.captured()}{detail()}"
            time.sleep(0.2)

    def end_of_window(self, n: int) -> datetime:
        """The end of window ``n`` (1 is the first), on the clock; waits for it."""
        end = self.start + timedelta(seconds=n * self.every_s)
        time.sleep(max(0.0, (end - datetime.now(UTC)).total_seconds()) + 0.05)
        return end

    def window(self, n: int):
        """Window ``n``: shifted traffic, then the watch's step at the window's end."""
        self.end_of_window(n - 1)
        self.send()
        return watch_step(self.watch, self.end_of_window(n))
