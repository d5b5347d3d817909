"""Current windows: which captured rows a drift check reads, and captured lines as rows with the monitored names.

A window is a span of time (``--window 24h``, or ``--since``/``--until``) or a count of the newest captured rows
(``--last-rows N``). The server writes captures under ``<model>/<version>/<YYYY-MM-DD>/<flush stamp>-...jsonl``:
the date folder lets a time window skip whole days unread, and the flush stamp (a batch holds no row captured
after it) lets it skip the batches flushed before the window began.

A captured line is ``{"ts", "model", "version", "request_id", "inputs": {...}, "outputs": {...}}``; its outputs
become the columns ``dataops predict`` writes: ``label`` -> ``prediction``, ``probabilities[i]`` ->
``proba_<classes[i]>``, ``variable`` -> ``prediction``. Pure functions: no store, no cloud.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import orjson
import pandas as pd

from orchestrator.durations import parse_duration
from orchestrator.errors import DataopsError

# The folder of an artifact store that servers write their captures under (locally or from an endpoint's nodes).
STORE_CAPTURES = "captures"
# The capture time of each row, kept beside the monitored columns (a leading underscore: no feature is named so).
CAPTURED_AT = "_captured_at"
PREDICTION = "prediction"
PROBA_PREFIX = "proba_"
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_FLUSH_STAMP = re.compile(r"^(\d{8}T\d{6}\d{6})Z")


class InvalidWindow(DataopsError):
    """The window options contradict each other or are not written as expected."""

    exit_code = 2


class CaptureFormatError(DataopsError):
    """A captured batch holds a line that is not a capture record; the message names the batch and the line."""

    exit_code = 7


@dataclass(frozen=True)
class TimeWindow:
    """Rows captured at or after ``since`` and before ``until`` (both aware, UTC)."""

    since: dt.datetime
    until: dt.datetime

    def days(self) -> list[str]:
        """The date folders that may hold the window's rows.

        A batch is filed under the day it was flushed, a few seconds after its last row: the day after ``until``
        is read too.
        """
        first, last = self.since.date(), (self.until + dt.timedelta(days=1)).date()
        return [(first + dt.timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]

    def may_hold(self, key: str) -> bool:
        """False when the batch at ``key`` was flushed before the window began (it holds only older rows)."""
        flushed = flush_time(key)
        return flushed is None or flushed >= self.since

    def describe(self) -> dict:
        return {"kind": "time", "since": _iso(self.since), "until": _iso(self.until)}


@dataclass(frozen=True)
class LastRows:
    """The newest ``rows`` captured rows."""

    rows: int

    def describe(self) -> dict:
        return {"kind": "last_rows", "last_rows": self.rows}


Window = TimeWindow | LastRows


def parse_instant(text: str, what: str) -> dt.datetime:
    """An ISO 8601 time (``2026-05-01``, ``2026-05-01T12:00``, ``...Z`` or ``...+02:00``); without an offset, UTC.

    Raises:
        InvalidWindow: the text is not such a time; the message names the option.
    """
    try:
        instant = dt.datetime.fromisoformat(text.strip())
    except (ValueError, AttributeError):
        raise InvalidWindow(f"invalid time {text!r} for {what}: expected ISO 8601, such as 2026-05-01T12:00:00Z "
                            "or 2026-05-01") from None
    return instant.replace(tzinfo=dt.timezone.utc) if instant.tzinfo is None else instant.astimezone(dt.timezone.utc)


def choose_window(window: str | None, since: str | None, until: str | None, last_rows: int | None,
                  now: dt.datetime) -> Window:
    """The window the options name; none at all is the last 24 hours.

    Args:
        window: A duration (``--window 24h``): the span ending at ``until`` (else ``now``).
        since: The window's start (``--since``), ISO 8601.
        until: The window's end (``--until``), ISO 8601; default ``now``.
        last_rows: The newest rows to read instead (``--last-rows``).
        now: The current time (aware).

    Raises:
        InvalidWindow: a duration and a start both given, a count with a time, an empty span or a count below 1.
    """
    if last_rows is not None:
        if window or since or until:
            raise InvalidWindow("--last-rows counts rows, --window/--since/--until span time: give one kind")
        if last_rows < 1:
            raise InvalidWindow(f"--last-rows must be at least 1, got {last_rows}")
        return LastRows(last_rows)
    if window and since:
        raise InvalidWindow("--window and --since both say where the window starts: give one")
    end = parse_instant(until, "--until") if until else now.astimezone(dt.timezone.utc)
    if since:
        start = parse_instant(since, "--since")
    else:
        start = end - dt.timedelta(seconds=parse_duration(window or "24h", "--window"))
    if not start < end:
        raise InvalidWindow(f"the window is empty: it starts at {_iso(start)} and ends at {_iso(end)}")
    return TimeWindow(start, end)


def capture_day(key: str) -> str | None:
    """The date folder of a capture key (``.../<YYYY-MM-DD>/<batch>.jsonl``), or None."""
    parts = key.rstrip("/").split("/")
    return parts[-2] if len(parts) >= 2 and _DAY.match(parts[-2]) else None


def flush_time(key: str) -> dt.datetime | None:
    """When the batch at ``key`` was flushed, from its name (``20260501T120000123456Z-...``), or None."""
    match = _FLUSH_STAMP.match(key.rsplit("/", 1)[-1])
    if not match:
        return None
    return dt.datetime.strptime(match[1], "%Y%m%dT%H%M%S%f").replace(tzinfo=dt.timezone.utc)


def output_columns(outputs: dict, classes: list | None) -> dict:
    """One capture's outputs under the names ``dataops predict`` writes."""
    columns = {}
    if "label" in outputs:
        columns[PREDICTION] = _scalar(outputs["label"])
    elif "variable" in outputs:
        columns[PREDICTION] = _scalar(outputs["variable"])
    probabilities = outputs.get("probabilities")
    if probabilities is not None and classes:
        for klass, value in zip(classes, probabilities):
            columns[f"{PROBA_PREFIX}{klass}"] = value
    return columns


def capture_frame(data: bytes, model: str, version: int, classes: list | None = None,
                  missing_values: dict[str, str] | None = None, source: str = "capture") -> pd.DataFrame:
    """The rows of one captured batch for ``model`` version ``version``, with the monitored column names.

    Args:
        data: The batch, JSON lines.
        model: The model's name; lines of other models are left out.
        version: The model's version; lines of other versions are left out.
        classes: The classifier's classes, in the order of its probabilities (the model card's ``classes``).
        missing_values: Per categorical input, the token the server feeds for a missing value: read as missing.
        source: The batch's name, for error messages.

    Returns:
        One row per captured line: the inputs, ``prediction``, ``proba_<class>`` and ``_captured_at`` (UTC).

    Raises:
        CaptureFormatError: a line is not JSON or lacks ``ts``, ``inputs`` or ``outputs``.
    """
    records = []
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
            if record["model"] != model or str(record["version"]) != str(version):
                continue
            row = dict(record["inputs"])
            row.update(output_columns(record["outputs"], classes))
            row[CAPTURED_AT] = record["ts"]
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
            raise CaptureFormatError(f"{source}, line {number}: not a capture record ({exc}); expected JSON with "
                                     "ts, model, version, inputs and outputs") from None
        records.append(row)
    frame = pd.DataFrame.from_records(records)
    if frame.empty:
        return pd.DataFrame({CAPTURED_AT: pd.Series(dtype="datetime64[ns, UTC]")})
    frame[CAPTURED_AT] = pd.to_datetime(frame[CAPTURED_AT], utc=True, format="ISO8601")
    for name, token in (missing_values or {}).items():
        if name in frame.columns:
            frame[name] = frame[name].mask(frame[name] == token)
    return frame


def within(frame: pd.DataFrame, window: TimeWindow) -> pd.DataFrame:
    """The rows captured inside the time window."""
    stamps = frame[CAPTURED_AT]
    return frame[(stamps >= pd.Timestamp(window.since)) & (stamps < pd.Timestamp(window.until))]


def newest(frame: pd.DataFrame, rows: int) -> pd.DataFrame:
    """The ``rows`` most recently captured rows of ``frame``."""
    if len(frame) <= rows:
        return frame
    return frame.sort_values(CAPTURED_AT, kind="stable").iloc[-rows:]


def _scalar(value):
    # A single-output model's label can come as a one-element list (shape [-1, 1]).
    return value[0] if isinstance(value, list) and len(value) == 1 else value


def _iso(instant: dt.datetime) -> str:
    return instant.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
