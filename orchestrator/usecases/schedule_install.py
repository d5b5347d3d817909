"""Install the runner of this machine as systemd units (``dataops schedule install --systemd``) and remove them
(``uninstall``): the timer ticking the store, the tick service and the service its failures start.

User units go to ``$XDG_CONFIG_HOME/systemd/user`` (``~/.config/systemd/user``), system units to
``/etc/systemd/system``, or anywhere with ``--unit-dir`` (tests, packages): there they are only written, never
enabled. The units are checked with ``systemd-analyze verify`` before anything is written. Where systemd is not
the service manager, only ``--unit-dir`` is possible: such a machine runs ``dataops schedule tick --loop`` under
its supervisor.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

from orchestrator.artifacts.open import open_store
from orchestrator.atomic import write_atomically
from orchestrator.config import setting
from orchestrator.durations import parse_duration
from orchestrator.errors import DataopsError
from orchestrator.scheduling.spec import ScheduleSpec
from orchestrator.scheduling.state import ScheduleState, schedule_names
from orchestrator.scheduling.systemd import (
    SYSTEM,
    TIMER,
    UNIT_NAMES,
    USER,
    RunnerUnits,
    calendar_elapses,
    systemd_analyze,
    translate_cron,
    verify_units,
)
from orchestrator.usecases.schedules import upcoming_slots

# sd_booted(3)'s test: this directory exists only when systemd is the running service manager.
SYSTEMD_RUNNING_MARKER = Path("/run/systemd/system")
SYSTEM_UNIT_DIR = Path("/etc/systemd/system")
COMMAND_TIMEOUT_S = 120


class SystemdUnavailable(DataopsError):
    """systemd is not the service manager here: its units cannot be enabled."""


class UnitsInvalid(DataopsError):
    """``systemd-analyze verify`` found problems in the units; nothing was written."""


class SystemctlFailed(DataopsError):
    """``systemctl`` or ``loginctl`` failed; the message names the command and carries what it said."""


@dataclass
class InstallReport:
    """What ``install`` did: the units written, whether they were checked, and the commands run."""

    scope: str
    unit_dir: Path
    units: RunnerUnits
    files: list[Path]
    verified: bool  # False where systemd-analyze is not installed
    enabled: bool
    commands: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class UninstallReport:
    """What ``uninstall`` did."""

    scope: str
    unit_dir: Path
    removed: list[Path]
    commands: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def host_runner_id() -> str:
    """The runner identity of this host's units: its name, the same for every tick, so tick-failed finds them."""
    return socket.gethostname()


def systemd_is_running() -> bool:
    """Whether systemd is the service manager of this machine."""
    return SYSTEMD_RUNNING_MARKER.is_dir()


def default_scope() -> str:
    """System units for root, the user's own otherwise."""
    return SYSTEM if os.geteuid() == 0 else USER


def unit_directory(scope: str, environ: dict | None = None) -> Path:
    """Where the manager of ``scope`` reads the units an administrator (or a user) writes."""
    if scope == SYSTEM:
        return SYSTEM_UNIT_DIR
    environ = os.environ if environ is None else environ
    config = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "systemd" / "user"


def dataops_executable() -> Path:
    """The absolute path of the ``dataops`` executable running now (or of the one of this environment).

    Raises:
        DataopsError: None can be found.
    """
    running = sys.argv[0] if sys.argv else ""
    if Path(running).name == "dataops":
        found = running if os.sep in running else shutil.which(running)
        if found and os.access(found, os.X_OK):
            return Path(found).resolve()
    beside = Path(sys.prefix) / "bin" / "dataops"  # the virtual environment's entry point
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside.absolute()
    on_path = shutil.which("dataops")
    if on_path:
        return Path(on_path).resolve()
    raise DataopsError("cannot find the dataops executable to write into the units: install the package (pip install "
                       "-e .) so that a dataops command exists, and run install through it")


def _unit_store(location: str) -> str:
    """The store as a unit names it: a local path made absolute (a unit runs in /), a URL as given."""
    parsed = urlparse(location)
    if parsed.scheme in ("", "file"):
        return str(Path(parsed.path if parsed.scheme else location).expanduser().resolve())
    return location


def _longest_run_deadline(location: str) -> float:
    default = parse_duration(ScheduleSpec.model_fields["run_deadline"].default, "run_deadline")
    try:
        store = open_store(location)
        deadlines = [ScheduleState(store, name).load().spec.run_deadline_s for name in schedule_names(store)]
    except DataopsError as exc:
        raise DataopsError(f"cannot read the schedules of {location} to size the tick's time limit ({exc}); give "
                           "--run-deadline (the longest run_deadline of its schedules)") from None
    return max(deadlines, default=default)


def _run(command: list[str], commands: list[str], *, check: bool = True) -> subprocess.CompletedProcess:
    commands.append(" ".join(command))
    tool = shutil.which(command[0])
    if tool is None:
        raise SystemctlFailed(f"{command[0]} is not installed: cannot run {' '.join(command)}")
    done = subprocess.run([tool, *command[1:]], capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S,
                          check=False)
    if check and done.returncode != 0:
        said = (done.stderr or done.stdout).strip()[-500:]
        raise SystemctlFailed(f"{' '.join(command)} exited {done.returncode}" + (f": {said}" if said else ""))
    return done


def _systemctl(scope: str, *args: str) -> list[str]:
    return ["systemctl", *(["--user"] if scope == USER else []), *args]


def _where(scope: str, unit_dir: Path | None) -> Path:
    if unit_dir is not None:
        return Path(unit_dir)
    if not systemd_is_running():
        raise SystemdUnavailable(f"systemd is not the service manager here ({SYSTEMD_RUNNING_MARKER} is missing): "
                                 "its units cannot be enabled. Run `dataops schedule tick --loop` under this "
                                 "machine's supervisor instead, or give --unit-dir to only write the units")
    return unit_directory(scope)


def install_runner(scope: str | None = None, store: str | None = None, every: str = "60s",
                   runner: str | None = None, unit_dir: Path | None = None, run_deadline: str | None = None,
                   environment_file: Path | None = None, run_as: str | None = None) -> InstallReport:
    """Write, check and enable the runner's units: a timer ticking ``store`` every ``every`` as ``runner``.

    Args:
        scope: ``system`` or ``user`` units; default: system units for root, user units otherwise.
        store: Where the schedules are kept (else the ``store`` setting); a local path is made absolute.
        every: Interval of the ticks; it must divide a minute, an hour or a day.
        runner: The runner identity of every tick (default: the host name).
        unit_dir: Write the units there only: they are not enabled (tests, packages).
        run_deadline: The tick's time limit, less its margin; default: the longest ``run_deadline`` of the store's
            schedules now.
        environment_file: Variables for the services (``OS_CLOUD``, ``OS_CLIENT_CONFIG_FILE``); an absolute path.
        run_as: The user system units run as (default: the one who ran sudo, else root).

    Returns:
        The files written and the commands run.

    Raises:
        SystemdUnavailable: systemd is not the service manager here and no ``unit_dir`` was given.
        UnitsInvalid: systemd-analyze found problems in the units.
        SystemctlFailed: Enabling them failed.
    """
    scope = scope or default_scope()
    target = _where(scope, unit_dir)
    location = setting("store", store)
    if environment_file is not None and not Path(environment_file).is_absolute():
        raise DataopsError(f"--environment-file must be an absolute path, got {environment_file}")
    if scope == SYSTEM and run_as is None:
        run_as = os.environ.get("SUDO_USER") or None
    units = RunnerUnits(
        executable=dataops_executable(), store=_unit_store(location), runner=runner or host_runner_id(),
        scope=scope, every_s=parse_duration(every, "--every"),
        run_deadline_s=parse_duration(run_deadline, "--run-deadline") if run_deadline else
        _longest_run_deadline(location),
        environment_file=Path(environment_file) if environment_file else None, run_as=run_as)
    texts = units.files()
    verified = _verify(texts, scope)
    files = []
    try:
        target.mkdir(parents=True, exist_ok=True)
        for name, text in texts.items():
            write_atomically(target / name, text, 0o644)
            files.append(target / name)
    except PermissionError:
        raise DataopsError(f"cannot write the units to {target}: permission denied; install system units as root "
                           "(sudo), or the user's own with --user") from None
    report = InstallReport(scope, target, units, files, verified, enabled=False)
    if not verified:
        report.warnings.append("systemd-analyze is not installed: the units were not checked")
    if unit_dir is not None:
        return report
    _run(_systemctl(scope, "daemon-reload"), report.commands)
    _run(_systemctl(scope, "enable", "--now", TIMER), report.commands)
    report.enabled = True
    if scope == USER:
        # Without lingering, a user's manager (and its timers) stops when the user's last session ends.
        user = getpass.getuser()
        done = _run(["loginctl", "enable-linger", user], report.commands, check=False)
        if done.returncode != 0:
            report.warnings.append(f"loginctl enable-linger {user} failed ({(done.stderr or '').strip()[-200:]}): "
                                   "the timer runs only while you are logged in")
    return report


def _verify(texts: dict[str, str], scope: str) -> bool:
    if systemd_analyze() is None:
        return False
    with tempfile.TemporaryDirectory(prefix="dataops-units-") as folder:
        paths = []
        for name, text in texts.items():
            (Path(folder) / name).write_text(text)
            paths.append(Path(folder) / name)
        problems = verify_units(paths, scope)
    if problems:
        raise UnitsInvalid("systemd-analyze verify found problems in the units (nothing was written):\n  "
                           + "\n  ".join(line.replace(folder + "/", "") for line in problems))
    return True


def uninstall_runner(scope: str | None = None, unit_dir: Path | None = None) -> UninstallReport:
    """Stop and remove the runner's units (a tick running now finishes). Lingering stays as it is: other units of
    the user may need it.

    Args:
        scope: ``system`` or ``user`` units; default as for :func:`install_runner`.
        unit_dir: Remove the units from there only, with no systemctl command.

    Returns:
        The files removed and the commands run.

    Raises:
        SystemdUnavailable: systemd is not the service manager here and no ``unit_dir`` was given.
        SystemctlFailed: Disabling the timer failed.
    """
    scope = scope or default_scope()
    target = _where(scope, unit_dir)
    present = [target / name for name in UNIT_NAMES if (target / name).exists()]
    report = UninstallReport(scope, target, [])
    if unit_dir is None and present:
        _run(_systemctl(scope, "disable", "--now", TIMER), report.commands)
        # The Persistent= stamp would make a reinstalled timer fire at once for the time it was away.
        cleaned = _run(_systemctl(scope, "clean", "--what=state", TIMER), report.commands, check=False)
        if cleaned.returncode != 0:
            report.warnings.append(f"could not remove the timer's stamp: {(cleaned.stderr or '').strip()[-200:]}")
    for path in present:
        path.unlink()
        report.removed.append(path)
    if unit_dir is None and present:
        _run(_systemctl(scope, "daemon-reload"), report.commands)
        _run(_systemctl(scope, "reset-failed", *UNIT_NAMES), report.commands, check=False)
    return report


def oncalendar_preview(name: str, count: int = 5, store: str | None = None,
                       now: datetime | None = None) -> dict:
    """A schedule's cron expression as ``OnCalendar=`` and, where systemd-analyze is installed, the next slots
    of both side by side: the daylight-saving days show where they differ.

    Returns:
        ``oncalendar`` (None when there is no equivalent) with ``reason``, ``cron`` (the next UTC slots) and
        ``systemd`` (systemd's next elapses, None without systemd-analyze or an equivalent).
    """
    now = now or datetime.now(UTC)
    slots = [utc for utc, _ in upcoming_slots(name, count, store, now)]
    spec = ScheduleState(open_store(setting("store", store)), name).load().spec
    translation = translate_cron(spec.cron, spec.timezone)
    systemd = None
    if translation.oncalendar is not None and systemd_analyze() is not None:
        systemd = calendar_elapses(translation.oncalendar, now, count)
    return {"name": name, "cron": spec.cron, "timezone": spec.timezone, "oncalendar": translation.oncalendar,
            "reason": translation.reason, "cron_slots": slots, "systemd_slots": systemd}
