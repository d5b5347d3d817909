"""The pipeline file: pydantic models of every section, and the loader that reports mistakes by file, line and field.

A pipeline file declares, in order: ``sources`` (read, validate, clean), ``blend`` (joins onto a base source, plain or
time-aligned), ``features`` (derived columns), ``split`` (train / validation / test / serve), ``model`` and
``monitoring`` (the drift policy saved with the model).
"""

from __future__ import annotations

import hashlib
import re
import zoneinfo
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails

from orchestrator.durations import parse_duration
from orchestrator.errors import SpecError
from orchestrator.ml.spec import ModelSpec
from orchestrator.monitoring.policy import DriftPolicy
from orchestrator.pipeline.web_api_spec import WebApi
from orchestrator.yaml_files import line_of, read_mapping, spec_error, suggest

PARTITIONS = ("train", "validation", "test", "serve")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


ColumnType = Literal["int", "float", "string", "bool", "datetime"]
# Named ways of writing a datetime, besides a strftime format.
DATETIME_FORMATS = ("iso8601", "unix_s", "unix_ms")


class ColumnRule(_Strict):
    """What every value of one column must satisfy; a row that breaks any rule goes to quarantine."""

    type: ColumnType | None = Field(None, description="Type the column's values must parse as.")
    not_null: bool = Field(False, description="Reject rows where the value is missing.")
    min: float | None = Field(None, description="Smallest allowed value (numeric columns).")
    max: float | None = Field(None, description="Largest allowed value (numeric columns).")
    allowed: list[Any] | None = Field(None, description="The only values allowed.")
    format: str | None = Field(
        None, description="type: datetime. How the values are written: a strftime format such as '%d/%m/%Y %H:%M', "
                          "or unix_s, unix_ms (seconds or milliseconds since 1970 UTC) or iso8601 (the default).")
    timezone: str | None = Field(
        None, description="type: datetime. The IANA zone (Europe/Berlin) of values written without an offset "
                          "(default UTC); every datetime column ends up in UTC.")

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str | None) -> str | None:
        if value is None or value in DATETIME_FORMATS:
            return value
        if "%" not in value:
            raise ValueError(f"expected a strftime format such as '%d/%m/%Y %H:%M' or one of "
                             f"{', '.join(DATETIME_FORMATS)}, got {value!r}{suggest(value, DATETIME_FORMATS)}")
        try:  # a format that cannot read back what it writes has a directive strptime does not know
            sample = datetime(2001, 2, 3, 4, 5, 6, tzinfo=UTC)  # aware: %z and %Z write something
            datetime.strptime(sample.strftime(value), value)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a strftime format that can be read back ({exc})") from None
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                zoneinfo.ZoneInfo(value)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown timezone {value!r}{suggest(value, zoneinfo.available_timezones())}; "
                                 f"expected an IANA name such as Europe/Berlin or America/New_York") from None
        return value

    @model_validator(mode="after")
    def _datetime_only(self) -> "ColumnRule":
        given = [name for name in ("format", "timezone") if getattr(self, name) is not None]
        if given and self.type != "datetime":
            raise ValueError(f"{' and '.join(f'`{name}`' for name in given)} appl{'y' if len(given) > 1 else 'ies'} "
                             f"to `type: datetime` columns only; this column is "
                             f"{'type: ' + self.type if self.type else 'untyped'}")
        if self.timezone and self.format in ("unix_s", "unix_ms"):
            raise ValueError(f"a {self.format} value is an instant in UTC: a timezone does not apply to it")
        return self


class Validation(_Strict):
    """Row-level rules of a source and how many failing rows a run tolerates."""

    columns: dict[str, ColumnRule] = Field(default_factory=dict, description="Rules per column name.")
    max_bad_fraction: float = Field(
        0.05, ge=0, le=1, description="Fail the run when more than this fraction of rows breaks a rule."
    )


WindowStat = Literal["mean", "sum", "min", "max", "count"]


class Rolling(_Strict):
    """One rolling aggregate of a column over each row's past in its entity: the ``rows`` rows before the row, or the
    rows of the time ``window`` before its time. Columns ``<column>_<stat>_<N>r`` or ``<column>_<stat>_<window>``."""

    column: str = Field(description="The numeric column aggregated.")
    stats: list[WindowStat] = Field(
        min_length=1, description="What is computed over the window: mean, sum, min, max (of the values present; "
                                  "missing when there are none) and count (of the values present).")
    rows: PositiveInt | None = Field(None, description="The N rows of the entity before the row (never the row).")
    window: str | None = Field(None, description="A time window before the row's time, such as 7d or 12h.")
    closed: Literal["left", "both"] | None = Field(
        None, description="With `window`. left (the default): [time - window, time), rows strictly earlier than the "
                          "row; both: [time - window, time], rows at the row's own time too, the row itself included.")

    @field_validator("window")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value, "a rolling window")
        return value

    @model_validator(mode="after")
    def _rows_or_window(self) -> "Rolling":
        if (self.rows is None) == (self.window is None):
            raise ValueError("a rolling aggregate covers either `rows: N` (the N rows before each row) or a time "
                             "`window` (such as 7d), one of the two")
        if self.closed is not None and self.window is None:
            raise ValueError("`closed` applies to a time `window`; `rows: N` always covers the N rows before the row")
        if len(set(self.stats)) != len(self.stats):
            raise ValueError(f"stats {self.stats} name a statistic twice")
        return self

    @property
    def window_seconds(self) -> float | None:
        """The time window in seconds (None for a rows window)."""
        return parse_duration(self.window, "a rolling window") if self.window else None

    def output_columns(self) -> list[str]:
        """The columns this aggregate adds, one per statistic."""
        span = f"{self.rows}r" if self.rows else self.window
        return [f"{self.column}_{stat}_{span}" for stat in self.stats]


class Window(_Strict):
    """Lags and rolling aggregates of each entity's past, rows ordered by time: a row's features read only rows
    before it (earlier in time, or at its time but arrived before it), never a later one."""

    by: list[str] = Field(default_factory=list, description="Entity key column(s); none: all rows are one series.")
    order: str = Field(description="The time column rows are ordered by; rows at the same time keep their order.")
    lag: dict[str, list[PositiveInt]] = Field(
        default_factory=dict, description="Per column, how many rows back: {dep_delay: [1, 2]} adds dep_delay_lag1 "
                                          "and dep_delay_lag2.")
    rolling: list[Rolling] = Field(default_factory=list, description="Rolling aggregates over each row's past.")

    @field_validator("by", mode="before")
    @classmethod
    def _one_key(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("lag", mode="before")
    @classmethod
    def _one_lag(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {column: [lags] if isinstance(lags, int) else lags for column, lags in value.items()}
        return value

    @model_validator(mode="after")
    def _adds_columns(self) -> "Window":
        if not self.lag and not self.rolling:
            raise ValueError("a window step adds `lag` columns, `rolling` aggregates or both; this one adds none")
        names = self.output_columns()
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"the window step names the column(s) {twice} twice")
        return self

    def output_columns(self) -> list[str]:
        """The columns the step adds, in order: ``<column>_lag<k>`` per lag, then each aggregate's columns."""
        lags = [f"{column}_lag{k}" for column, ks in self.lag.items() for k in ks]
        return lags + [name for rolling in self.rolling for name in rolling.output_columns()]

    def input_columns(self) -> list[str]:
        """The columns the step reads: keys, time, lagged and aggregated columns, each once."""
        named = [*self.by, self.order, *self.lag, *(rolling.column for rolling in self.rolling)]
        return list(dict.fromkeys(named))


class Step(_Strict):
    """One preparation step; exactly one of its fields is set."""

    filter: str | None = Field(None, description="Keep rows where this pandas expression is true.")
    derive: dict[str, str] | None = Field(None, description="New or replaced columns from pandas expressions.")
    drop_nulls: list[str] | None = Field(None, description="Drop rows with a missing value in any of these columns.")
    fill_nulls: dict[str, Any] | None = Field(None, description="Replace missing values per column.")
    drop: list[str] | None = Field(None, description="Remove these columns.")
    rename: dict[str, str] | None = Field(None, description="Rename columns, old: new.")
    keep: list[str] | None = Field(None, description="Keep only these columns.")
    function: str | None = Field(
        None, description="A function `module:function` taking and returning a pandas DataFrame, applied per partition."
    )
    window: Window | None = Field(
        None, description="Lags and rolling aggregates of each entity's past, ordered by time (never its future).")

    @model_validator(mode="after")
    def _exactly_one(self) -> "Step":
        chosen = [name for name in type(self).model_fields if getattr(self, name) is not None]
        if len(chosen) != 1:
            raise ValueError(
                f"a step sets exactly one of {', '.join(type(self).model_fields)}; this one sets {chosen or 'none'}"
            )
        return self

    @field_validator("function")
    @classmethod
    def _function_ref(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[\w.]+:[\w]+", value):
            raise ValueError(f"expected 'package.module:function', got {value!r}")
        return value

    @property
    def kind(self) -> str:
        return next(name for name in type(self).model_fields if getattr(self, name) is not None)


class Source(_Strict):
    """One input: where it lives, how to read it, what its rows must satisfy and how to clean them."""

    # Editors reading the JSON Schema ask for exactly one of the two.
    model_config = ConfigDict(json_schema_extra={"oneOf": [{"required": ["location"]}, {"required": ["web_api"]}]})

    location: str | None = Field(
        None,
        description="Local path (relative to the pipeline file), http(s):// URL, file:// or swift:// artifact URL "
                    "(or `web_api`).",
    )
    web_api: WebApi | None = Field(
        None, description="JSON records fetched from a web API, page by page, snapshotted in the store (or "
                          "`location`).")
    format: Literal["csv", "parquet", "jsonl"] | None = Field(
        None, description="File format; inferred from the extension when omitted."
    )
    columns: list[str] | None = Field(None, description="Read only these columns.")
    read_options: dict[str, Any] = Field(default_factory=dict, description="Extra options for the reader.")
    validation: Validation | None = Field(None, description="Row rules; failing rows are quarantined.")
    steps: list[Step] = Field(default_factory=list, description="Cleaning steps, in order, after validation.")

    @model_validator(mode="wrap")
    @classmethod
    def _location_or_web_api(cls, data: Any, handler) -> "Source":
        # Without `web_api`, `location` is required: said as pydantic says it of any missing field, beside the
        # source's other mistakes (a misspelt `locaton` gets both lines).
        if not isinstance(data, dict) or data.get("location") is not None or data.get("web_api") is not None:
            return handler(data)
        errors = []
        try:
            handler(data)
        except ValidationError as exc:
            errors = [InitErrorDetails(type=e["type"], loc=e["loc"], input=e["input"],
                                       **({"ctx": e["ctx"]} if "ctx" in e else {})) for e in exc.errors()]
        missing = InitErrorDetails(type="missing", loc=("location",), input=data)
        raise ValidationError.from_exception_data(cls.__name__, [*errors, missing])

    @model_validator(mode="after")
    def _one_origin(self) -> "Source":
        if self.location is not None and self.web_api is not None:
            raise ValueError("a source reads files (`location`) or a web API (`web_api`), not both")
        if self.web_api is not None and self.format not in (None, "jsonl"):
            raise ValueError("a `web_api` source is read as JSON records: leave `format` out")
        return self

    @property
    def origin(self) -> str:
        """Where the source's data comes from, for messages: its location or its web API's URL."""
        return self.location if self.location is not None else self.web_api.url

    @property
    def resolved_format(self) -> str:
        if self.web_api is not None:
            return "jsonl"  # its snapshot's format
        if self.format:
            return self.format
        name = self.location.lower().split("?")[0]
        for suffix, fmt in ((".csv", "csv"), (".csv.zip", "csv"), (".csv.gz", "csv"), (".parquet", "parquet"),
                            (".jsonl", "jsonl"), (".json", "jsonl"), (".ndjson", "jsonl")):
            if name.endswith(suffix):
                return fmt
        if "." not in Path(name).name:  # a folder of Parquet files
            return "parquet"
        raise SpecError(f"cannot infer the format of {self.location!r}: set `format: csv|parquet|jsonl`")


class TimeAlignment(_Strict):
    """Match each left row with one right row near its time, within a tolerance: the latest at or before it
    (``backward``), the first at or after it (``forward``) or the closest either way (``nearest``)."""

    left: str = Field(description="Time column of the left (base) side.")
    right: str = Field(description="Time column of the joined source.")
    tolerance: str = Field("1h", description="Largest allowed gap, e.g. 30min, 1h, 2d.")
    direction: Literal["backward", "forward", "nearest"] = Field("backward", description="Which neighbour to take.")

    @field_validator("tolerance")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value, "the join tolerance", allow_zero=True)  # zero: only rows at the very same time
        return value

    @property
    def tolerance_seconds(self) -> float:
        """The tolerance in seconds."""
        return parse_duration(self.tolerance, "the join tolerance", allow_zero=True)


# A join matching fewer base rows than this fails the run: it catches a join that matches nothing (keys written
# differently on each side, times in two zones, a tolerance too small) or next to nothing, far below any join that
# works (the flights example's joins match 85 % to 100 %); a sparse lookup sets its own.
MIN_MATCH_FRACTION = 0.01


class Join(_Strict):
    """Join another source onto the blended frame."""

    source: str = Field(description="Name of the source to join.")
    # Not `on`: YAML 1.1 reads a bare `on` key as the boolean true.
    keys: list[str] = Field(default_factory=list, description="Key columns present on both sides.")
    left_on: list[str] | None = Field(None, description="Key columns on the left when names differ.")
    right_on: list[str] | None = Field(None, description="Key columns on the right when names differ.")
    how: Literal["left", "inner"] = Field("left", description="Join type.")
    columns: list[str] | None = Field(None, description="Columns to take from the joined source (keys are added).")
    suffix: str = Field("_right", description="Suffix for clashing column names from the joined source.")
    time: TimeAlignment | None = Field(
        None, description="Make this a time-aligned (as-of) join; without keys, rows are matched on time alone.")
    min_match_fraction: float = Field(
        MIN_MATCH_FRACTION, ge=0, le=1,
        description="Fail the run when a smaller share of the base rows finds a match (0: never fail).")

    @model_validator(mode="after")
    def _keys(self) -> "Join":
        if not self.keys and not (self.left_on and self.right_on) and self.time is None:
            raise ValueError("a join needs `keys`, both `left_on` and `right_on`, or a `time` alignment (an as-of "
                             "join on time alone)")
        if (self.left_on is None) != (self.right_on is None) or (
            self.left_on and len(self.left_on) != len(self.right_on or [])
        ):
            raise ValueError("`left_on` and `right_on` must be given together, with as many columns each")
        return self


class Blend(_Strict):
    """How the sources become one frame: a base source and joins onto it."""

    base: str = Field(description="The source every other one is joined onto.")
    joins: list[Join] = Field(default_factory=list, description="Joins, applied in order.")


class SplitWindow(_Strict):
    """by: time, with boundaries that follow the time the run is for (its ``as_of``: a schedule's slot, else the
    time it starts), so that every scheduled retrain learns from the latest data and is tested on the freshest
    labelled rows, which it never trained on. Walking back from ``as_of``: the rows of the last ``label_delay``
    (whose labels are not known yet) are served; before them ``test`` holds out the most recent labelled period,
    ``validation`` the one before, ``train`` the one before that; older rows are left out."""

    train: str = Field(description="How far back the training rows go, before the validation period (180d).")
    validation: str = Field(description="The validation period, before the test period (14d).")
    test: str = Field(description="The held-out test period: the most recent labelled rows (14d).")
    label_delay: str = Field("0s", description="How long after a row its label is known; newer rows are served.")

    @field_validator("train", "validation", "test", "label_delay")
    @classmethod
    def _is_duration(cls, value: str, info) -> str:
        parse_duration(value, f"split.window.{info.field_name}", allow_zero=info.field_name == "label_delay")
        return value

    def boundaries_at(self, as_of: pd.Timestamp) -> tuple[str, dict[str, str]]:
        """The window's start and the train / validation / test boundaries for a run at ``as_of`` (UTC)."""
        def back(stamp: pd.Timestamp, duration: str, what: str) -> pd.Timestamp:
            return stamp - pd.Timedelta(seconds=parse_duration(duration, f"split.window.{what}", allow_zero=True))

        serve_from = back(as_of, self.label_delay, "label_delay")
        test_from = back(serve_from, self.test, "test")
        validation_from = back(test_from, self.validation, "validation")
        start = back(validation_from, self.train, "train")
        text = lambda stamp: stamp.strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
        return text(start), {"train": text(validation_from), "validation": text(test_from), "test": text(serve_from)}


class Split(_Strict):
    """How rows are assigned to the train / validation / test / serve partitions."""

    by: Literal["time", "hash"] = Field(description="Split on a time column, or on a deterministic hash of a key.")
    column: str = Field(description="The time column (by: time) or the hashed key column (by: hash).")
    boundaries: dict[Literal["train", "validation", "test"], str] | None = Field(
        None,
        description="by: time. Each partition holds rows before its date; serve holds everything after test.",
    )
    window: SplitWindow | None = Field(
        None, description="by: time. Boundaries that follow the run's as_of (instead of fixed `boundaries`).")
    start: str | None = Field(None, description="by: time. Rows before this date are left out of every partition.")
    fractions: dict[Literal["train", "validation", "test", "serve"], float] | None = Field(
        None, description="by: hash. Share of keys per partition; the shares sum to 1."
    )
    key: list[str] = Field(
        default_factory=list,
        description="Columns identifying an entity that must never appear in two partitions (defaults to `column`).",
    )

    @model_validator(mode="after")
    def _mode(self) -> "Split":
        if self.by == "time":
            if self.window is not None:
                if self.boundaries or self.start:
                    raise ValueError("give either `window` (boundaries that follow the run's as_of) or fixed "
                                     "`boundaries`, not both")
                return self
            if not self.boundaries or set(self.boundaries) != {"train", "validation", "test"}:
                raise ValueError("by: time needs `boundaries` with train, validation and test dates, or a `window`")
            dates = [pd.Timestamp(self.boundaries[p]) for p in ("train", "validation", "test")]
            if dates != sorted(dates):
                raise ValueError(f"boundaries must increase: train < validation < test, got "
                                 f"{[self.boundaries[p] for p in ('train', 'validation', 'test')]}")
            if self.start is not None and pd.Timestamp(self.start) > dates[0]:
                raise ValueError(f"start {self.start} is after the train boundary {self.boundaries['train']}")
        else:
            if not self.fractions:
                raise ValueError("by: hash needs `fractions`, e.g. {train: 0.7, validation: 0.1, test: 0.1, serve: 0.1}")
            if abs(sum(self.fractions.values()) - 1) > 1e-9:
                raise ValueError(f"fractions must sum to 1, got {sum(self.fractions.values())}")
        return self

    @property
    def key_columns(self) -> list[str]:
        return self.key or [self.column]

    def at(self, as_of: str) -> Split:
        """This split for a run at ``as_of`` (ISO 8601, UTC if no zone): a window becomes fixed dates."""
        if self.window is None:
            return self
        stamp = pd.Timestamp(as_of)
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
        start, boundaries = self.window.boundaries_at(stamp)
        return self.model_copy(update={"window": None, "start": start, "boundaries": boundaries})


class PipelineSpec(_Strict):
    """A whole pipeline file."""

    name: str = Field(description="Pipeline name, used in run records.")
    sources: dict[str, Source] = Field(description="Inputs by name.")
    blend: Blend | None = Field(None, description="Joins of the sources; without it the only source is used.")
    features: list[Step] = Field(default_factory=list, description="Feature engineering steps on the blended frame.")
    split: Split = Field(description="The train / validation / test / serve split.")
    model: ModelSpec | None = Field(None, description="What to train on the train partition.")
    score_serve: bool = Field(True, description="Score the serve partition with the exported model.")
    monitoring: DriftPolicy = Field(
        default_factory=DriftPolicy,
        description="When the served model has drifted from its reference profile (thresholds, per-column overrides).",
    )

    @field_validator("sources")
    @classmethod
    def _some_source(cls, value: dict) -> dict:
        if not value:
            raise ValueError("declare at least one source")
        return value


class LoadedPipeline:
    """A validated pipeline with where it came from (and its YAML node tree, for messages naming a line)."""

    def __init__(self, spec: PipelineSpec, path: Path, text: str, node: yaml.Node | None = None):
        self.spec = spec
        self.path = path
        self.base_dir = path.parent
        self.text = text
        self.node = node
        self.sha256 = hashlib.sha256(text.encode()).hexdigest()

    def at(self, as_of: str) -> LoadedPipeline:
        """The pipeline as it runs at ``as_of``: a split window becomes the fixed dates of that time."""
        if self.spec.split.window is None:
            return self
        spec = self.spec.model_copy(update={"split": self.spec.split.at(as_of)})
        return LoadedPipeline(spec, self.path, self.text, self.node)


# ---------------------------------------------------------------- loading, with file:line and "did you mean"


def load_pipeline(path: Path | str) -> LoadedPipeline:
    """Read, parse and validate a pipeline file.

    Raises:
        SpecError: the file is missing, not YAML, or breaks the schema; the message names file:line, the field,
            what was expected and, for misspelt names, the closest valid one.
    """
    path = Path(path)
    text, node, data = read_mapping(path, "pipeline")
    try:
        spec = PipelineSpec.model_validate(data)
    except ValidationError as exc:
        raise spec_error(path, node, exc, PipelineSpec) from None
    _check_references(spec, path, node)
    return LoadedPipeline(spec, path, text, node)


def _check_references(spec: PipelineSpec, path: Path, node: yaml.Node) -> None:
    """Names that point at other parts of the file must exist."""
    problems = []

    def unknown_source(name: str, loc: tuple) -> None:
        if name not in spec.sources:
            problems.append(
                f"{path}:{line_of(node, loc)}: field {'.'.join(map(str, loc))!r}: unknown source {name!r}"
                f"{suggest(name, spec.sources)}; declared sources: {', '.join(spec.sources)}"
            )

    if spec.blend:
        unknown_source(spec.blend.base, ("blend", "base"))
        for index, join in enumerate(spec.blend.joins):
            unknown_source(join.source, ("blend", "joins", index, "source"))
    elif len(spec.sources) > 1:
        problems.append(f"{path}:1: several sources but no `blend` section saying how to join them")
    if problems:
        raise SpecError("\n".join(problems))
