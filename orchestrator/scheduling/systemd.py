"""The runner's systemd units, as text: a timer that ticks on the wall clock, the oneshot service it starts (running
``dataops schedule tick``), and the service that ``OnFailure=`` starts when a tick is killed, runs out of memory or
out of time (running ``dataops schedule tick-failed``). Also the translation of a cron expression into the
``OnCalendar=`` expression systemd reads the same way, and readers of ``systemd-analyze``'s checks of both.

The tick decides which slots are due (cron in Python, one engine: orchestrator/scheduling/cron.py); systemd only
wakes it up, so the timer fires every ``--every`` on UTC's clock, where no daylight-saving change skips or repeats
a tick. ``cron_to_oncalendar`` is for people comparing the two: systemd and cron agree on every day but the
daylight-saving ones (see its docstring).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path, PurePosixPath

from orchestrator.durations import format_duration
from orchestrator.errors import DataopsError
from orchestrator.scheduling.cron import check_cron, zone

TIMER = "dataops-tick.timer"
TICK_SERVICE = "dataops-tick.service"
FAILED_SERVICE = "dataops-tick-failed.service"
UNIT_NAMES = (TIMER, TICK_SERVICE, FAILED_SERVICE)

SYSTEM, USER = "system", "user"

# ProtectSystem=full makes these read-only for the service: a local store under one of them could not be written.
PROTECTED_BY_PROTECT_SYSTEM = ("/usr", "/boot", "/efi", "/etc")
# Time left to a tick past the longest run deadline, for its own bookkeeping (records, leases) before it is killed.
TIMEOUT_MARGIN_S = 60
# tick-failed fires one hook per slot (a command may take 60 s, a webhook 10 s); more than this is a hung hook.
FAILED_TIMEOUT = "15m"

_USER_NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}\$?$")
_ELAPSE = re.compile(r"^\s*(?:Next elapse|Iter\. #\d+):\s+\w{3} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC\s*$")


class InvalidUnitSetting(DataopsError):
    """A value given for the units cannot be written into them (an interval systemd cannot repeat on the wall
    clock, a user name, a path with a line break)."""

    exit_code = 2


class SystemdToolFailed(DataopsError):
    """``systemd-analyze`` could not check a unit or a calendar expression; the message carries its output."""


# --- the units -------------------------------------------------------------------------------------------


def every_to_oncalendar(seconds: float) -> str:
    """The ``OnCalendar=`` expression (UTC) firing every ``seconds``, on the multiples of it on the wall clock.

    Args:
        seconds: The interval; it must divide a minute, an hour or a day, so ticks fall at the same times daily.

    Returns:
        Such as ``*-*-* *:*:00 UTC`` for 60 s or ``*-*-* *:00/5:00 UTC`` for 5 minutes.

    Raises:
        InvalidUnitSetting: The interval does not divide a minute, an hour or a day evenly.
    """
    whole = int(seconds)
    if whole == seconds and whole > 0:
        if 60 % whole == 0:
            return "*-*-* *:*:00 UTC" if whole == 60 else f"*-*-* *:*:00/{whole} UTC"
        if whole % 60 == 0 and 3600 % whole == 0:
            return "*-*-* *:00:00 UTC" if whole == 3600 else f"*-*-* *:00/{whole // 60}:00 UTC"
        if whole % 3600 == 0 and 86400 % whole == 0:
            return "*-*-* 00:00:00 UTC" if whole == 86400 else f"*-*-* 00/{whole // 3600}:00:00 UTC"
    raise InvalidUnitSetting(f"invalid interval {format_duration(seconds)} for --every: expected one that divides "
                             "a minute, an hour or a day evenly, such as 30s, 1m, 5m or 1h, so that ticks fall at the "
                             "same wall-clock times every day")


def exec_argument(argument: str) -> str:
    """One argument of an ``ExecStart=`` line, quoted so that systemd reads it back as given: no specifier
    (``%``), variable (``$``) or escape (``\\``) in it is expanded.

    Raises:
        InvalidUnitSetting: The argument holds a line break.
    """
    if "\n" in argument or "\r" in argument:
        raise InvalidUnitSetting(f"cannot write {argument!r} into a unit: it holds a line break")
    escaped = argument.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$")
    if escaped and re.fullmatch(r"[A-Za-z0-9_@+=:,./%$-]+", escaped) and escaped != ";":
        return escaped
    return f'"{escaped}"'


def _specifier_safe(text: str) -> str:
    if "\n" in text or "\r" in text:
        raise InvalidUnitSetting(f"cannot write {text!r} into a unit: it holds a line break")
    return text.replace("%", "%%")


def _local_store_path(store: str) -> PurePosixPath | None:
    if store.startswith("swift://"):
        return None
    return PurePosixPath(store.removeprefix("file://"))


@dataclass(frozen=True)
class RunnerUnits:
    """What the three units say: which ``dataops`` runs, on which store, as which runner, how often and for how long.

    Attributes:
        executable: The absolute path of the ``dataops`` executable.
        store: The store the schedules are kept in (an absolute path, ``file://`` or ``swift://`` URL).
        runner: The runner identity every tick of this host uses (tick-failed finds its slots by it).
        scope: ``system`` (units of the system manager) or ``user`` (of the operator's user manager).
        every_s: Seconds between ticks.
        run_deadline_s: The longest ``run_deadline`` of the store's schedules: a tick running longer is killed.
        environment_file: Variables for both services (``OS_CLOUD``, ``OS_CLIENT_CONFIG_FILE``), if any.
        run_as: The user system units run as (none for user units: they run as their manager's user).
    """

    executable: Path
    store: str
    runner: str
    scope: str = SYSTEM
    every_s: float = 60
    run_deadline_s: float = 4 * 3600
    environment_file: Path | None = None
    run_as: str | None = None

    def __post_init__(self):
        if self.scope not in (SYSTEM, USER):
            raise InvalidUnitSetting(f"unknown scope {self.scope!r}: expected {SYSTEM} or {USER}")
        if not Path(self.executable).is_absolute():
            raise InvalidUnitSetting(f"the dataops executable must be an absolute path, got {self.executable}")
        if self.run_as is not None and (self.scope == USER or not _USER_NAME.match(self.run_as)):
            raise InvalidUnitSetting(f"cannot run the units as {self.run_as!r}: a user name is given to system "
                                     "units only, and must be a valid one (such as dataops)")
        local = _local_store_path(self.store)
        if local is not None and not local.is_absolute():
            raise InvalidUnitSetting(f"the store of a unit must be absolute (a unit runs in /), got {self.store!r}")

    @property
    def oncalendar(self) -> str:
        return every_to_oncalendar(self.every_s)

    @property
    def timeout_start(self) -> str:
        return format_duration(self.run_deadline_s + TIMEOUT_MARGIN_S)

    def files(self) -> dict[str, str]:
        """The text of each unit file, by unit name."""
        return {TIMER: self._timer(), TICK_SERVICE: self._tick_service(), FAILED_SERVICE: self._failed_service()}

    def _command(self, subcommand: str) -> str:
        argv = [str(self.executable), "schedule", subcommand, "--store", self.store, "--runner", self.runner]
        return " ".join(exec_argument(argument) for argument in argv)

    def _timer(self) -> str:
        return "\n".join([
            _HEADER,
            "[Unit]",
            f"Description=dataops schedule tick every {format_duration(self.every_s)} ({self.scope} units)",
            "",
            "[Timer]",
            f"OnCalendar={self.oncalendar}",
            "# Ticks when due: the default accuracy (1min) would let systemd move them by up to a minute.",
            "AccuracySec=1s",
            "# A tick missed while the machine was off or asleep starts once when it is back; which slots are caught",
            "# up then is the schedules' catchup policy, decided by the tick.",
            "Persistent=true",
            f"Unit={TICK_SERVICE}",
            "",
            "[Install]",
            "# timers.target exists in the system manager and in user managers (pulled in by their basic.target).",
            "WantedBy=timers.target",
            "",
        ])

    def _unit_section(self, description: str, on_failure: bool) -> list[str]:
        lines = ["[Unit]", f"Description={_specifier_safe(description)}"]
        if on_failure:
            lines += ["# Started when the tick is killed (signal, memory, TimeoutStartSec=) or fails: it marks the slots",
                      "# the tick was running lost, so the next tick takes them over at once, and fires their hooks.",
                      f"OnFailure={FAILED_SERVICE}"]
        if self.scope == SYSTEM:
            # A store on Swift needs the network; a user manager cannot order itself after the system's targets.
            lines += ["Wants=network-online.target", "After=network-online.target"]
        return lines

    def _service_section(self, subcommand: str, note: str, timeout: str, why_timeout: str) -> list[str]:
        lines = ["[Service]", f"# {note}", "Type=oneshot", f"ExecStart={self._command(subcommand)}"]
        if self.environment_file is not None:
            lines.append(f"EnvironmentFile={_specifier_safe(str(self.environment_file))}")
        if self.run_as is not None:
            lines.append(f"User={self.run_as}")
        lines += [f"# {line}" for line in why_timeout.splitlines()]
        lines.append(f"TimeoutStartSec={timeout}")
        lines += self._hardening()
        return lines

    def _hardening(self) -> list[str]:
        lines = ["# A oneshot CLI needs no new privileges (no setuid helper is run).", "NoNewPrivileges=yes"]
        if self.scope == USER:
            # A user manager can only set up file-system namespaces (PrivateTmp=, ProtectSystem=) together with
            # PrivateUsers=, which needs unprivileged user namespaces (disabled on some hosts) and shows every
            # other user's files as owned by nobody, breaking data readable through a group.
            lines.append("# PrivateTmp= and ProtectSystem= need PrivateUsers= in a user manager: left out.")
            return lines
        lines += ["# Dask's spill files and the runs' temporary files stay private to the tick and go with it.",
                  "PrivateTmp=yes"]
        local = _local_store_path(self.store)
        if local is not None and any(local.is_relative_to(p) for p in PROTECTED_BY_PROTECT_SYSTEM):
            lines.append(f"# ProtectSystem=full left out: it would make the store under {local.parts[1]} read-only.")
            return lines
        lines += ["# /usr, /boot, /efi and /etc become read-only; /var, /srv, /opt and /home (where stores, data and",
                  "# clouds.yaml live) stay writable. strict would make every path read-only but ReadWritePaths=,",
                  "# and the runs write wherever their schedule's store and cache are.",
                  "ProtectSystem=full"]
        return lines

    def _tick_service(self) -> str:
        return "\n".join([
            _HEADER,
            *self._unit_section(f"dataops schedule tick on {self.store} as runner {self.runner}", on_failure=True),
            "",
            *self._service_section("tick", "oneshot: a timer finding the tick still running leaves it running, so the "
                                   "ticks of a host never overlap.", self.timeout_start,
                                   "The longest run deadline of the store's schedules and a margin (a oneshot service\n"
                                   "has no limit by default): a tick running longer is hung, and is killed."),
            "",
        ])

    def _failed_service(self) -> str:
        return "\n".join([
            _HEADER,
            *self._unit_section(f"dataops schedule tick-failed for runner {self.runner} on {self.store}",
                                on_failure=False),
            "",
            *self._service_section("tick-failed", "systemd tells it how the tick ended: MONITOR_SERVICE_RESULT, "
                                   "MONITOR_EXIT_CODE, MONITOR_EXIT_STATUS.", FAILED_TIMEOUT,
                                   "One failure hook per slot the tick was running, each one bounded: more is a hung "
                                   "hook."),
            "",
        ])


_HEADER = "# Written by `dataops schedule install`; `dataops schedule uninstall` removes it."


# --- cron as OnCalendar= --------------------------------------------------------------------------------

_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day-of-month", 1, 31), ("month", 1, 12), ("day-of-week", 0, 7))
_MONTH_NAMES = "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split()
_DAY_NAMES = "SUN MON TUE WED THU FRI SAT".split()
_SYSTEMD_DAYS = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")


@dataclass(frozen=True)
class CalendarTranslation:
    """A cron expression as ``OnCalendar=``, or why it has none."""

    cron: str
    timezone: str
    oncalendar: str | None
    reason: str = ""


class _NoEquivalent(Exception):
    pass


def _number(field: str, text: str) -> int:
    if field == "month" and text in _MONTH_NAMES:
        return _MONTH_NAMES.index(text) + 1
    if field == "day-of-week" and text in _DAY_NAMES:
        return _DAY_NAMES.index(text)
    if not text.isdigit():
        raise _NoEquivalent(f"the {field} field's {text!r}")
    return int(text)


def _values(field: str, low: int, high: int, text: str) -> set[int]:
    """The values a cron field matches, read as cron reads it (cronsim and Debian cron agree on this syntax)."""
    found: set[int] = set()
    for term in text.split(","):
        if field == "day-of-month" and ("L" in term or "W" in term):
            raise _NoEquivalent(f"the day-of-month {term!r} (last day, nearest weekday)")
        if field == "day-of-week" and ("#" in term or term.endswith("L")):
            raise _NoEquivalent(f"the day-of-week {term!r} (n-th or last weekday of the month)")
        base, _, step = term.partition("/")
        if base == "*":
            start, end = low, high
        elif "-" in base:
            first, last = base.split("-", 1)
            start, end = _number(field, first), _number(field, last)
        else:
            start = _number(field, base)
            end = high if step else start
        found.update(range(start, end + 1, int(step) if step else 1))
    return {value % 7 for value in found} if field == "day-of-week" else found


def _runs(values: list[int]) -> list[list[int]]:
    runs: list[list[int]] = []
    for value in values:
        if runs and value == runs[-1][-1] + 1:
            runs[-1].append(value)
        else:
            runs.append([value])
    return runs


def _component(values: set[int], low: int, high: int) -> str:
    """One component of a calendar expression: ``*``, ``00/15`` (a start and a step to the end), or a list of
    values and ranges ``a..b``."""
    if values == set(range(low, high + 1)):
        return "*"
    ordered = sorted(values)
    steps = {b - a for a, b in pairwise(ordered)}
    if len(ordered) > 2 and len(steps) == 1 and steps != {1} and ordered[-1] + min(steps) > high:
        return f"{ordered[0]:02d}/{min(steps)}"
    parts = []
    for run in _runs(ordered):
        if len(run) > 2:
            parts.append(f"{run[0]:02d}..{run[-1]:02d}")
        else:
            parts.extend(f"{value:02d}" for value in run)
    return ",".join(parts)


def _weekdays(days: set[int]) -> str:
    # systemd's week starts on Monday and its ranges do not wrap: Sunday is last.
    monday_first = sorted((day - 1) % 7 for day in days)
    parts = []
    for run in _runs(monday_first):
        names = [_SYSTEMD_DAYS[(index + 1) % 7] for index in run]
        parts.append(f"{names[0]}..{names[-1]}" if len(names) > 2 else ",".join(names))
    return ",".join(parts)


def translate_cron(cron: str, timezone: str = "UTC") -> CalendarTranslation:
    """The ``OnCalendar=`` expression matching the same wall-clock times as a cron expression, if there is one.

    Cron fires on a day when its day-of-month *or* its day-of-week matches, once both are restricted (neither
    starts with ``*``); systemd needs both to match, so such an expression has no equivalent, nor have the
    ``L``, ``W`` and ``#`` forms. Where there is one, both fire at the same instants on every day but the two
    daylight-saving days of the zone: on the spring-forward day systemd skips a time that does not exist (cron,
    as cronsim and Debian cron, runs a fixed-time job at the first instant after the gap), and on the fall-back
    day systemd fires once in the repeated hour (cron runs an hourly job in both).

    Args:
        cron: A five-field cron expression.
        timezone: The IANA zone its times are read in; written at the end of the expression.

    Returns:
        The translation: the expression, or None with the reason.

    Raises:
        InvalidCron: The expression or the zone is invalid.
    """
    cron, _ = check_cron(cron), zone(timezone)
    fields = cron.upper().split()
    try:
        minute, hour, days, months, weekdays = (_values(name, low, high, text)
                                                for (name, low, high), text in zip(_FIELDS, fields))
    except _NoEquivalent as exc:
        return CalendarTranslation(cron, timezone, None, f"systemd has no form for {exc}")
    every_day, every_weekday = set(range(1, 32)), set(range(7))
    if not fields[2].startswith("*") and not fields[4].startswith("*"):
        # Cron's OR of two restricted day fields: only equivalent when one of them matches every day anyway.
        if days != every_day and weekdays != every_weekday:
            return CalendarTranslation(cron, timezone, None, "cron fires when the day of the month or the day of the "
                                       "week matches, systemd only when both do")
        days, weekdays = every_day, every_weekday
    day_part = "" if weekdays == every_weekday else _weekdays(weekdays) + " "
    expression = (f"{day_part}*-{_component(months, 1, 12)}-{_component(days, 1, 31)} "
                  f"{_component(hour, 0, 23)}:{_component(minute, 0, 59)}:00 {timezone}")
    return CalendarTranslation(cron, timezone, expression)


def cron_to_oncalendar(cron: str, tz: str = "UTC") -> str | None:
    """The ``OnCalendar=`` equivalent of a cron expression in a zone, or None when there is no exact one (see
    :func:`translate_cron`, which also says why)."""
    return translate_cron(cron, tz).oncalendar


# --- systemd-analyze ----------------------------------------------------------------------------------------


def systemd_analyze() -> str | None:
    """The path of ``systemd-analyze``, None where it is not installed."""
    return shutil.which("systemd-analyze")


def calendar_elapses(expression: str, after: datetime, count: int) -> list[datetime]:
    """When systemd would fire an ``OnCalendar=`` expression: its next ``count`` elapses strictly after ``after``,
    as ``systemd-analyze calendar`` computes them.

    Args:
        expression: A calendar expression, with its zone.
        after: An aware instant (whole seconds are used).
        count: How many elapses.

    Returns:
        UTC instants, oldest first (fewer than ``count`` if the expression stops firing).

    Raises:
        SystemdToolFailed: systemd-analyze is missing or rejects the expression.
    """
    tool = systemd_analyze()
    if tool is None:
        raise SystemdToolFailed("systemd-analyze is not installed here")
    done = subprocess.run([tool, "calendar", f"--iterations={count}", f"--base-time=@{int(after.timestamp())}",
                           expression], capture_output=True, text=True, timeout=30, check=False,
                          env={**os.environ, "TZ": "UTC", "LC_ALL": "C"})
    if done.returncode != 0:
        raise SystemdToolFailed(f"systemd-analyze calendar {expression!r}: {done.stderr.strip()[-500:]}")
    return [datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
            for match in map(_ELAPSE.match, done.stdout.splitlines()) if match]


def verify_units(paths: list[Path], scope: str) -> list[str] | None:
    """Check unit files with ``systemd-analyze verify``, as the manager of ``scope`` would load them.

    ``verify`` exits 0 on many problems it only warns about (an unknown key, a value it cannot parse and ignores):
    every line it writes about one of the given units counts.

    Args:
        paths: The unit files, named as installed (``dataops-tick.service``...).
        scope: ``system`` or ``user``.

    Returns:
        The problems found (empty when none), or None where systemd-analyze is not installed.
    """
    tool = systemd_analyze()
    if tool is None:
        return None
    env = {**os.environ, "LC_ALL": "C", "SYSTEMD_LOG_COLOR": "0"}
    with tempfile.TemporaryDirectory(prefix="dataops-verify-") as runtime:
        if scope == USER and not Path(env.get("XDG_RUNTIME_DIR") or "/nonexistent").is_dir():
            env["XDG_RUNTIME_DIR"] = runtime  # a user manager's checks need one, even offline
        command = [tool, *(["--user"] if scope == USER else []), "verify", *map(str, paths)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False, env=env)
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    names = {Path(path).name for path in paths}
    problems = [line for line in lines if any(name in line for name in names)]
    if done.returncode != 0 and not problems:
        problems = lines or [f"systemd-analyze verify exited {done.returncode}"]
    return problems
