"""The schedule file: what runs (a pipeline file, a registered job or a watch of a served model), when (cron and time zone), and what happens
when slots are missed, overlap or fail. Loaded with errors that name file, line and field, with "did you mean"."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from orchestrator.durations import format_duration, parse_duration
from orchestrator.scheduling.cron import check_cron, zone
from orchestrator.yaml_files import read_mapping, spec_error

NAME_PATTERN = r"^[a-z][a-z0-9-]{0,62}$"

# Jobs a schedule may run instead of a pipeline, by name; what each one does is the use cases' business
# (orchestrator/usecases/schedules.py maps every name here to a function).
REGISTERED_JOBS = ("cluster-sweep",)


class CatchUp(str, Enum):
    """What a tick does when it finds several slots due at once (the runner was off, or busy, across a slot)."""

    skip = "skip"  # run none of them: wait for the next slot
    latest = "latest"  # run the newest once, record the others skipped
    all = "all"  # run them all, oldest first, at most max_catchup of the newest


class Concurrency(str, Enum):
    """Whether a slot may start while an earlier slot of the same schedule still runs."""

    forbid = "forbid"  # the later slot is recorded skipped, with the running slot as the reason
    allow = "allow"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _duration(value: str | None, what: str) -> str | None:
    if value is not None:
        parse_duration(value, what)
    return value


class RetrySpec(_Strict):
    """Attempts after a failed one, and the wait before each."""

    max: int = Field(default=0, ge=0, le=20, description="Retries after the first attempt fails.")
    backoff: str | list[str] = Field(
        default="5m",
        description="Wait before a retry: one duration, doubled at each retry, or a list (the last one repeats).",
    )

    @field_validator("backoff")
    @classmethod
    def _backoff_is_durations(cls, value: str | list[str]) -> str | list[str]:
        for item in [value] if isinstance(value, str) else value:
            parse_duration(item, "retries.backoff")
        if isinstance(value, list) and not value:
            raise ValueError("expected at least one duration, such as [1m, 5m, 20m]")
        return value

    def delay_s(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first retry)."""
        if isinstance(self.backoff, list):
            return parse_duration(self.backoff[min(retry, len(self.backoff)) - 1], "retries.backoff")
        return parse_duration(self.backoff, "retries.backoff") * 2 ** (retry - 1)


class FailureHook(_Strict):
    """Told of a slot that failed for good, with the slot's summary as JSON: POSTed to ``webhook``, or given on
    standard input to ``command``."""

    webhook: str | None = Field(default=None, description="An http(s) URL receiving the summary as a JSON POST.")
    command: list[str] | None = Field(default=None, min_length=1, description="argv reading the summary on stdin.")

    @field_validator("webhook")
    @classmethod
    def _webhook_is_http(cls, value: str | None) -> str | None:
        if value is not None:
            parsed = urlparse(value)
            # The URL itself is never repeated in the message: webhook URLs often carry their secret in the path.
            if parsed.scheme not in ("http", "https") or not parsed.netloc:
                raise ValueError("expected an http:// or https:// URL with a host")
        return value

    @model_validator(mode="after")
    def _one_of_webhook_or_command(self) -> FailureHook:
        if (self.webhook is None) == (self.command is None):
            raise ValueError("expected exactly one of 'webhook' (an http(s) URL) or 'command' (a list of arguments)")
        return self

    def describe(self) -> str:
        """The hook as it may be shown: a webhook by its scheme and host only."""
        if self.webhook is not None:
            parsed = urlparse(self.webhook)
            port = f":{parsed.port}" if parsed.port else ""
            return f"webhook {parsed.scheme}://{parsed.hostname}{port}/..."
        return f"command {self.command[0]}"


class WatchSpec(_Strict):
    """A watch of the closed loop: each slot checks the drift of a served model's captures, decides, and may
    retrain with ``pipeline`` (orchestrator/usecases/watch.py runs it)."""

    endpoint: str | None = Field(default=None, min_length=1, description="An endpoint made by `dataops deploy`.")
    server: str | None = Field(default=None, description="A local inference server's base URL.")
    pipeline: str = Field(min_length=1, description="The pipeline file that retrains, relative to this file.")
    token_file: str | None = Field(default=None, min_length=1, description="The server's bearer token file.")
    repository_dir: str | None = Field(default=None, min_length=1,
                                       description="The server's --repository-dir, where a new version is placed.")
    capture_dir: str | None = Field(default=None, min_length=1, description="The server's --capture-dir.")
    target: str | None = Field(default=None, min_length=1, description="The name of the loop's records.")

    @field_validator("server")
    @classmethod
    def _server_is_http(cls, value: str | None) -> str | None:
        if value is not None and (urlparse(value).scheme not in ("http", "https") or not urlparse(value).netloc):
            raise ValueError("expected the server's base URL, such as http://127.0.0.1:8080")
        return value

    @model_validator(mode="after")
    def _one_served_thing(self) -> WatchSpec:
        if (self.endpoint is None) == (self.server is None):
            raise ValueError("expected exactly one of 'endpoint' (an endpoint's name) or 'server' (a URL)")
        return self


class ScheduleSpec(_Strict):
    """A schedule, as written in a schedule file."""

    name: str = Field(pattern=NAME_PATTERN, description="Schedule name: lower-case letters, digits, dashes.")
    pipeline: str | None = Field(default=None, min_length=1, description="Pipeline file, relative to this file.")
    job: str | None = Field(default=None, description=f"A registered job: {', '.join(REGISTERED_JOBS)}.")
    watch: WatchSpec | None = Field(default=None, description="A watch of a served model (the closed loop).")
    cron: str = Field(description="Five-field cron expression, read in `timezone`.")
    timezone: str = Field(default="UTC", description="IANA time zone of the cron expression's wall-clock times.")
    catchup: CatchUp = CatchUp.latest
    max_catchup: int = Field(default=5, ge=1, le=1000, description="With catchup 'all': most slots run at once.")
    starting_deadline: str | None = Field(default=None, description="A slot not started this long after its time "
                                                                    "is recorded missed.")
    run_deadline: str = Field(default="4h", description="A run still holding its slot this long is taken for lost; "
                                                        "the next tick takes the slot over.")
    retries: RetrySpec = RetrySpec()
    concurrency: Concurrency = Concurrency.forbid
    on_failure: FailureHook | None = None
    pause_after_failures: int | None = Field(default=None, ge=1, description="Pause after this many slots in a row "
                                                                             "failed.")
    store: str | None = Field(default=None, description="Where the runs write; default: where the schedule is kept.")
    cluster: str | None = Field(default=None, description="A cluster made by `dataops cluster create`.")
    scheduler: str | None = Field(default=None, description="A Dask scheduler address (tcp:// or tls://).")

    @field_validator("cron")
    @classmethod
    def _cron_is_valid(cls, value: str) -> str:
        return check_cron(value)

    @field_validator("timezone")
    @classmethod
    def _timezone_exists(cls, value: str) -> str:
        zone(value)
        return value

    @field_validator("job")
    @classmethod
    def _job_is_registered(cls, value: str | None) -> str | None:
        if value is not None and value not in REGISTERED_JOBS:
            from orchestrator.yaml_files import suggest

            raise ValueError(f"unknown job {value!r}{suggest(value, REGISTERED_JOBS)}; expected one of: "
                             f"{', '.join(REGISTERED_JOBS)}")
        return value

    @field_validator("starting_deadline")
    @classmethod
    def _starting_deadline_is_duration(cls, value: str | None) -> str | None:
        return _duration(value, "starting_deadline")

    @field_validator("run_deadline")
    @classmethod
    def _run_deadline_is_duration(cls, value: str) -> str:
        return _duration(value, "run_deadline")

    @model_validator(mode="after")
    def _one_thing_to_run(self) -> ScheduleSpec:
        if [self.pipeline, self.job, self.watch].count(None) != 2:
            raise ValueError("expected exactly one of 'pipeline' (a pipeline file), 'job' "
                             f"(one of: {', '.join(REGISTERED_JOBS)}) or 'watch' (a served model)")
        if self.cluster and self.scheduler:
            raise ValueError("'cluster' and 'scheduler' name two places to run; give one")
        return self

    @property
    def starting_deadline_s(self) -> float | None:
        return parse_duration(self.starting_deadline, "starting_deadline") if self.starting_deadline else None

    @property
    def run_deadline_s(self) -> float:
        return parse_duration(self.run_deadline, "run_deadline")

    @property
    def what(self) -> str:
        """What the schedule runs, in a few words."""
        if self.watch is not None:
            return f"watch {self.watch.endpoint or self.watch.server}"
        return f"pipeline {self.pipeline}" if self.pipeline else f"job {self.job}"

    @property
    def pipeline_file(self) -> str | None:
        """The pipeline file the schedule runs: its own, or its watch's (which retrains with it)."""
        return self.watch.pipeline if self.watch is not None else self.pipeline

    def summary(self) -> dict:
        """The spec as it may be shown: the failure hook's webhook reduced to its host."""
        data = self.model_dump(mode="json")
        if self.on_failure is not None:
            data["on_failure"] = self.on_failure.describe()
        data["run_deadline"] = format_duration(self.run_deadline_s)
        return data


def load_schedule_spec(path: Path | str) -> ScheduleSpec:
    """Read and validate a schedule file; its paths (the pipeline, a watch's files) come back absolute (they are
    relative to the file).

    Args:
        path: The schedule file.

    Returns:
        The validated spec.

    Raises:
        SpecError: The file is missing, is not YAML, or a field is wrong; names file, line and field.
    """
    path = Path(path)
    _, node, data = read_mapping(path, "schedule")
    try:
        spec = ScheduleSpec.model_validate(data)
    except ValidationError as exc:
        raise spec_error(path, node, exc, ScheduleSpec) from None
    if spec.pipeline is not None:
        spec = spec.model_copy(update={"pipeline": str((path.parent / spec.pipeline).resolve())})
    if spec.watch is not None:
        files = {name: str((path.parent / getattr(spec.watch, name)).resolve())
                 for name in ("pipeline", "token_file", "repository_dir", "capture_dir")
                 if getattr(spec.watch, name) is not None}
        spec = spec.model_copy(update={"watch": spec.watch.model_copy(update=files)})
    return spec
