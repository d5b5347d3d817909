"""What a running stage is given: its scratch folder, its inputs, the Dask client, and nothing more."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import dask.dataframe as dd
from distributed import Client

from orchestrator.artifacts.store import ArtifactStore
from orchestrator.errors import StageFailed
from orchestrator.pipeline.isolation import PartitionView
from orchestrator.pipeline.spec import PipelineSpec
from orchestrator.pipeline.stage_data import StageData

# The part of a stage's output that holds its rows, unless the stage names another.
DATA = "data"


@dataclass
class StageContext:
    """One stage's view of the run: exactly what its kind declares it reads.

    Data goes through ``data`` (upstream outputs named by ``locations``, opened with ``output``); ``inputs`` opens
    an upstream output as a local folder, for the files a stage reads itself (a fitted model). A stage reading a
    source finds it in ``source_frames`` under ``source``; post-split stages reach partitions only through
    ``partitions``.
    """

    name: str
    spec: PipelineSpec
    base_dir: Path
    out_dir: Path
    client: Client
    store: ArtifactStore
    run_id: str
    data: StageData | None = None
    locations: dict[str, str] = field(default_factory=dict)
    inputs: Mapping[str, Path] = field(default_factory=dict)
    upstream: dict[str, dict] = field(default_factory=dict)
    source: str | None = None
    source_frames: dict[str, dd.DataFrame] = field(default_factory=dict)
    partitions: PartitionView | None = None
    on_progress: object = None

    def output(self, stage: str, part: str = DATA) -> dd.DataFrame:
        """The folder ``part`` of upstream ``stage``'s output, as a lazy Dask DataFrame.

        Raises:
            StageFailed: this stage's kind does not declare that it reads ``stage``.
        """
        if stage not in self.locations:
            declared = ", ".join(self.locations) or "none"
            raise StageFailed(f"stage {self.name!r} reads the output of {stage!r}, which its kind does not declare "
                              f"in reads.outputs (declared: {declared})")
        return self.data.read(self.locations[stage], part)
