"""The pipeline's preparation of source rows: the ingest stage's validation and cleaning steps, the blend's joins
and the feature steps, lazily, on Dask.

The ingest stage prepares a source this way in a run; ``dataops predict --raw`` prepares new rows of the base
source the same way before scoring them, joining them to the pipeline's other sources as they are now.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import dask
import dask.dataframe as dd

from orchestrator.artifacts.store import ArtifactStore
from orchestrator.errors import SourceError
from orchestrator.pipeline import sources as source_io
from orchestrator.pipeline.blend import Blended, blend_frames
from orchestrator.pipeline.spec import LoadedPipeline, Source
from orchestrator.pipeline.transforms import apply_steps
from orchestrator.pipeline.validate import REASON, check_partition


@dataclass
class CleanSource:
    """A source after its rules and cleaning steps, lazily.

    Attributes:
        frame: the rows that keep every rule, after the source's steps.
        quarantine: the rows that break a rule, as read, with the reason in ``REASON`` (None: the source has no
            rules).
    """

    frame: dd.DataFrame
    quarantine: dd.DataFrame | None


def clean_source(frame: dd.DataFrame, source: Source, name: str, base_dir: Path) -> CleanSource:
    """Quarantine the rows of ``frame`` that break ``source``'s rules (with the reason), clean the others.

    Raises:
        SourceError: a rule names a column the data does not have.
    """
    rules = source.validation.columns if source.validation else {}
    missing = [column for column in rules if column not in frame.columns]
    if missing:
        raise SourceError(
            f"source {name!r} ({source.origin}): validation names columns {missing} that the data does not have; "
            f"its columns are {list(frame.columns)}"
        )
    where = f"sources.{name}.steps"
    if not rules:
        return CleanSource(apply_steps(frame, source.steps, base_dir, where), None)
    checked = frame.map_partitions(check_partition, rules, meta=check_partition(frame._meta, rules))
    good = checked[checked[REASON].isnull()].drop(columns=[REASON])
    return CleanSource(apply_steps(good, source.steps, base_dir, where), checked[checked[REASON].notnull()])


def base_source(pipeline: LoadedPipeline) -> str:
    """The source every other one is joined onto (the only one without a blend)."""
    spec = pipeline.spec
    return spec.blend.base if spec.blend is not None else next(iter(spec.sources))


@dataclass
class PreparedRows:
    """New rows of the base source, prepared as a run prepares its own, lazily.

    Attributes:
        features: the rows as the model's features stage leaves them.
        quarantine: the rows that broke the base source's rules, as read, with the reason (None: no rules).
        blended: the blend, whose ``counts`` say what each join matched (None: the pipeline has no blend).
    """

    features: dd.DataFrame
    quarantine: dd.DataFrame | None
    blended: Blended | None


def prepare_rows(pipeline: LoadedPipeline, rows: dd.DataFrame, store: ArtifactStore) -> PreparedRows:
    """Put ``rows`` (read as the base source is read) through the base source's rules and steps, the blend's joins
    with the pipeline's other sources (read and cleaned now) and the feature steps.

    Raises:
        SourceError: a joined source cannot be read, or a rule names a column that is not there.
        SpecError: a step or a join does not fit the columns.
    """
    spec, base_dir = pipeline.spec, pipeline.base_dir
    base = base_source(pipeline)
    cleaned = clean_source(rows, spec.sources[base], base, base_dir)
    frame, blended = cleaned.frame, None
    if spec.blend is not None:
        joined = []
        for join in spec.blend.joins:
            source = spec.sources[join.source]
            files = source_io.resolve_files(source, base_dir, store, join.source)
            joined.append(clean_source(source_io.read_source(source, files), source, join.source, base_dir).frame)
        # How many rows each joined source has decides between a broadcast and a shuffling join, as in a run.
        sizes = dask.compute(*[right.shape[0] for right in joined])
        blended = blend_frames(frame, [(join, right, int(size))
                                       for join, right, size in zip(spec.blend.joins, joined, sizes)])
        frame = blended.frame
    features = apply_steps(frame, spec.features, base_dir, "features")
    return PreparedRows(features, cleaned.quarantine, blended)


def read_like_source(source: Source, files: list[Path], locations: list[str] | None, fmt: str) -> dd.DataFrame:
    """Files of new rows read as ``source`` is read: its declared columns as text, for its rules to judge, and its
    reader's options when the files are in the source's own format.

    Raises:
        SourceError: the files cannot be read in ``fmt``.
    """
    same_format = fmt == source.resolved_format
    as_source = source.model_copy(update={
        "location": str(files[0]) if files else (locations or [""])[0], "web_api": None, "format": fmt,
        "read_options": source.read_options if same_format else {},
    })
    return source_io.read_source(as_source, files, locations)
