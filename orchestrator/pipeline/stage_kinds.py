"""Stage kinds as data: what each kind of stage reads and writes, whether it is cached, and when a pipeline has it.

A kind is declared once, in its own module, and registered there with ``register_stage_kind``;
``orchestrator.pipeline.kinds`` registers the built-in ones (ingest, blend, features, split, train, evaluate, export,
register, score) when it is imported. The graph builder asks every registered kind, in registration order, for the
stages a pipeline file gives it, then checks the whole graph; the runner hands each stage exactly what its kind
declares (source frames, upstream outputs, a ``PartitionView`` on the declared partitions) and copies the declared
metadata keys into the run record. Adding a stage kind is one new module and its registration.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.errors import DataopsError
from orchestrator.pipeline.spec import LoadedPipeline, PipelineSpec, Source

if TYPE_CHECKING:
    from orchestrator.pipeline.context import StageContext

StageRun = Callable[["StageContext"], dict]


@dataclass(frozen=True)
class Reads:
    """What a stage reads; the runner hands it these and nothing else.

    Attributes:
        outputs: upstream stages whose whole output it reads (data parts, files, metadata), by stage name.
        partitions: partitions of the split it reads, each only through its ``PartitionView``.
        partitions_of: the stage whose partitions those are (one whose kind writes partitions).
        source: the pipeline source whose files it reads, handed over as a Dask DataFrame.
    """

    outputs: tuple[str, ...] = ()
    partitions: tuple[str, ...] = ()
    partitions_of: str = "split"
    source: str | None = None

    @property
    def depends(self) -> tuple[str, ...]:
        """Every upstream stage this one waits for and whose cache key enters its own."""
        return self.outputs + ((self.partitions_of,) if self.partitions else ())


@dataclass(frozen=True)
class Writes:
    """What a stage leaves behind, besides its output folder (always published under the stage's name).

    Attributes:
        record: metadata keys copied into the stage's entry of the run record (``rows_in``, ``rows_out`` and
            ``reads`` always are).
        run_record: metadata keys that also set the run record's own field of that name (the run's ``metrics``).
        partitions: the partitions the stage writes, each a part of its output; its metadata's ``partitions``
            summarises them (rows and fingerprint each). Later stages read them only by name, through a view.
        quarantine: the part published for the user when the stage fails validation (its metadata's ``failed``).
    """

    record: tuple[str, ...] = ()
    run_record: tuple[str, ...] = ()
    partitions: tuple[str, ...] = ()
    quarantine: str | None = None


@dataclass(frozen=True)
class Stage:
    """One node of the graph: a function of its context, cached under its config, code and inputs."""

    name: str
    kind: str
    run: StageRun
    config: Any
    code: str = ""
    reads: Reads = field(default_factory=Reads)
    writes: Writes = field(default_factory=Writes)
    cached: bool = True

    @property
    def depends(self) -> list[str]:
        return list(self.reads.depends)


@dataclass(frozen=True)
class StageSite:
    """Where in a pipeline a stage is being made: the pipeline, and the source of a per-source kind's stage."""

    pipeline: LoadedPipeline
    source: str | None = None

    @property
    def spec(self) -> PipelineSpec:
        return self.pipeline.spec

    @property
    def base_dir(self) -> Path:
        return Path(self.pipeline.base_dir)

    @property
    def source_spec(self) -> Source:
        """The declared source of a per-source stage."""
        return self.spec.sources[self.source]


def _always(site: StageSite) -> bool:
    return True


def _no_config(site: StageSite) -> None:
    return None


def _no_code(site: StageSite) -> str:
    return ""


@dataclass(frozen=True)
class StageKind:
    """A kind of stage, declared as data.

    Attributes:
        name: the kind's name; its stage is named so too, or ``<name>.<source>`` for a per-source kind.
        run: the stage's function: it takes a ``StageContext`` and returns the stage's metadata.
        reads: what each of its stages reads, or a function of the site giving it (when it depends on the file).
            A per-source kind's stages also read their own source.
        writes: what its stages leave behind besides their output.
        cached: whether a completed stage is reused from the cache (registering a model is not: it always runs).
        config: the part of the pipeline file that enters the stage's cache key.
        code: a version of the code whose change must invalidate the cache (user functions, library versions).
        present: whether a pipeline file has this stage at all (the model stages only when it declares a model).
        per_source: one stage per declared source, instead of one stage.
    """

    name: str
    run: StageRun
    reads: Reads | Callable[[StageSite], Reads] = field(default_factory=Reads)
    writes: Writes = field(default_factory=Writes)
    cached: bool = True
    config: Callable[[StageSite], Any] = _no_config
    code: Callable[[StageSite], str] = _no_code
    present: Callable[[StageSite], bool] = _always
    per_source: bool = False

    def stages(self, pipeline: LoadedPipeline) -> list[Stage]:
        """The stages ``pipeline`` gives this kind: none, one, or one per source."""
        if not self.present(StageSite(pipeline)):
            return []
        if not self.per_source:
            return [self._stage(StageSite(pipeline), self.name)]
        return [self._stage(StageSite(pipeline, source), f"{self.name}.{source}") for source in pipeline.spec.sources]

    def _stage(self, site: StageSite, name: str) -> Stage:
        reads = self.reads(site) if callable(self.reads) else self.reads
        if site.source is not None:
            reads = Reads(reads.outputs, reads.partitions, reads.partitions_of, source=site.source)
        return Stage(name, self.name, self.run, self.config(site), self.code(site), reads, self.writes, self.cached)


class StageKindConflict(DataopsError):
    """A stage kind is registered under a name another kind already has."""


class StageKindRegistry:
    """The registered stage kinds, in registration order (the order the graph lists independent stages in)."""

    def __init__(self) -> None:
        self._kinds: dict[str, StageKind] = {}

    def register(self, kind: StageKind) -> StageKind:
        """Add ``kind``; return it, so a module can keep it as a constant.

        Raises:
            StageKindConflict: another kind has the same name.
        """
        if kind.name in self._kinds:
            raise StageKindConflict(f"a stage kind named {kind.name!r} is already registered; choose another name "
                                    f"(registered: {', '.join(self._kinds)})")
        self._kinds[kind.name] = kind
        return kind

    def unregister(self, name: str) -> None:
        """Remove the kind ``name``; a name that is not registered is ignored, so cleanup can run twice."""
        self._kinds.pop(name, None)

    def get(self, name: str) -> StageKind:
        return self._kinds[name]

    def __iter__(self) -> Iterator[StageKind]:
        return iter(list(self._kinds.values()))

    def __contains__(self, name: object) -> bool:
        return name in self._kinds

    @contextmanager
    def scoped(self) -> Iterator[StageKindRegistry]:
        """Kinds registered (or removed) inside the block are undone when it ends, whatever happens inside."""
        saved = dict(self._kinds)
        try:
            yield self
        finally:
            self._kinds = saved


STAGE_KINDS = StageKindRegistry()


def register_stage_kind(kind: StageKind) -> StageKind:
    """Register ``kind`` with the pipeline's stage kinds (call it in the kind's own module).

    Raises:
        StageKindConflict: another kind has the same name.
    """
    return STAGE_KINDS.register(kind)


def unregister_stage_kind(name: str) -> None:
    """Remove the stage kind ``name`` (tests prefer ``STAGE_KINDS.scoped()``, which restores everything)."""
    STAGE_KINDS.unregister(name)
