"""Structured access log: one JSON object per request, on stderr.

Lines are buffered on the event loop and written at most every ``interval`` seconds (or when the buffer is
large), so logging costs a list append per request instead of a system call. Headers, bodies and query strings
are never logged: a bearer token cannot leak through here.
"""

from __future__ import annotations

import asyncio
import atexit
import sys


class AccessLog:
    """Buffered JSON-lines writer bound to the running event loop."""

    def __init__(self, stream=None, interval: float = 0.2, max_buffered: int = 512):
        self.stream = stream or sys.stderr
        self.interval = interval
        self.max_buffered = max_buffered
        self._lines: list[str] = []
        self._scheduled = False
        atexit.register(self.flush)

    def write(self, line: str) -> None:
        """Queue one line (without its newline); schedule a flush on the running loop."""
        self._lines.append(line)
        if len(self._lines) >= self.max_buffered:
            self.flush()
        elif not self._scheduled:
            self._scheduled = True
            try:
                asyncio.get_running_loop().call_later(self.interval, self.flush)
            except RuntimeError:  # no loop (tests calling directly): write now
                self.flush()

    def flush(self) -> None:
        self._scheduled = False
        if not self._lines:
            return
        lines, self._lines = self._lines, []
        try:
            self.stream.write("\n".join(lines) + "\n")
            self.stream.flush()
        except (OSError, ValueError):  # stderr closed at shutdown: nothing sensible left to do with the lines
            pass
