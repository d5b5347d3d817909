"""The one wrapper around the cron library (cronsim): the slots of a cron expression in a time zone, as UTC instants.

Daylight-saving behaviour is cronsim's, which follows Debian's cron: on the fall-back day a daily ``30 2 * * *`` runs
once (at the first 02:30), while an hourly job runs in both repeated hours; on the spring-forward day a time that does
not exist moves to the first instant after the gap when the hour is fixed (``30 2 * * *`` runs at 03:00), and an
hourly job simply has one hour fewer. Every other module asks this one, so the library can be swapped behind it and
the golden tests (tests/unit/scheduling/test_cron.py) say whether the new one agrees.

Expressions have the five classic fields (minute hour day-of-month month day-of-week): slots fall on whole minutes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from cronsim import CronSim, CronSimError

from orchestrator.errors import DataopsError


class InvalidCron(DataopsError, ValueError):
    """A cron expression or a time zone cannot be used; a ``ValueError`` too, so that pydantic reports it against
    the field of the schedule file that holds it."""

    exit_code = 2


@dataclass(frozen=True)
class SlotWindow:
    """The slots of a window, oldest first; ``older`` tells that slots older than the first one were left out."""

    slots: list[datetime]
    older: bool


def check_cron(expression: str) -> str:
    """Validate a five-field cron expression.

    Args:
        expression: The expression, such as ``30 2 * * *``.

    Returns:
        The expression, with its spacing normalised.

    Raises:
        InvalidCron: The expression does not have five fields or a field is wrong; the message names the field.
    """
    fields = expression.split() if isinstance(expression, str) else []
    if len(fields) != 5:
        raise InvalidCron(f"invalid cron expression {expression!r}: expected five fields (minute hour day-of-month "
                          "month day-of-week), such as '30 2 * * *'")
    normalised = " ".join(fields)
    try:
        iterator = CronSim(normalised, datetime(2000, 1, 1, tzinfo=UTC))
    except CronSimError as exc:
        raise InvalidCron(f"invalid cron expression {expression!r}: {exc} (expected minute 0-59, hour 0-23, "
                          "day-of-month 1-31, month 1-12 or JAN-DEC, day-of-week 0-7 or SUN-SAT)") from None
    try:
        next(iterator)
    except (StopIteration, CronSimError):
        raise InvalidCron(f"invalid cron expression {expression!r}: it never fires") from None
    return normalised


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name`` (``UTC``, ``Europe/Berlin``...).

    Raises:
        InvalidCron: No such zone; the message suggests the closest name.
    """
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        from orchestrator.yaml_files import suggest

        raise InvalidCron(f"unknown time zone {name!r}{suggest(name, available_timezones())}: expected an IANA name "
                          "such as UTC or Europe/Berlin") from None


def _utc(instant: datetime) -> datetime:
    if instant.tzinfo is None:
        raise ValueError(f"instant {instant.isoformat()} has no time zone")
    return instant.astimezone(UTC)


def next_slots(expression: str, tz: str, after: datetime, count: int) -> list[datetime]:
    """The ``count`` slots strictly after ``after``.

    Args:
        expression: A five-field cron expression.
        tz: The IANA zone the expression's wall-clock times are read in.
        after: An aware instant.
        count: How many slots.

    Returns:
        UTC instants, oldest first.
    """
    iterator = CronSim(expression, _utc(after).astimezone(zone(tz)))
    return [_utc(next(iterator)) for _ in range(count)]


def slots_between(expression: str, tz: str, start: datetime, end: datetime, limit: int = 1000) -> SlotWindow:
    """The slots after ``start`` and up to ``end`` included, at most the ``limit`` newest.

    A runner that was off for a year with a cron firing every minute does not walk half a million slots: the
    window is walked backwards from ``end`` and stops at ``limit``.

    Args:
        expression: A five-field cron expression.
        tz: The IANA zone of its wall-clock times.
        start: Aware instant; a slot exactly at ``start`` is not in the window.
        end: Aware instant; a slot exactly at ``end`` is.
        limit: Most slots returned.

    Returns:
        The window's slots (UTC, oldest first) and whether older ones were left out.
    """
    start, end = _utc(start), _utc(end)
    if end <= start:
        return SlotWindow([], False)
    # Backwards iteration yields instants strictly before its start: begin just after the whole minute of ``end``.
    origin = end.replace(second=0, microsecond=0) + timedelta(minutes=1)
    iterator = CronSim(expression, origin.astimezone(zone(tz)), reverse=True)
    newest_first: list[datetime] = []
    for found in iterator:
        slot = _utc(found)
        if slot <= start:
            return SlotWindow(newest_first[::-1], False)
        if len(newest_first) == limit:
            return SlotWindow(newest_first[::-1], True)
        newest_first.append(slot)
    return SlotWindow(newest_first[::-1], False)


def previous_slot(expression: str, tz: str, before: datetime) -> datetime | None:
    """The newest slot strictly before ``before`` (None if the expression never fired before it)."""
    iterator = CronSim(expression, _utc(before).astimezone(zone(tz)), reverse=True)
    found = next(iterator, None)
    return _utc(found) if found is not None else None
