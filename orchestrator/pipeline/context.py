"""What a running stage is given: its scratch folder, its inputs, the Dask client, and nothing more."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import dask.dataframe as dd
from distributed import Client

from orchestrator.artifacts.store import ArtifactStore
from orchestrator.pipeline.isolation import PartitionView
from orchestrator.pipeline.spec import PipelineSpec
from orchestrator.pipeline.stage_data import StageData


@dataclass
class StageContext:
    """One stage's view of the run. Post-split stages reach partitions only through ``partitions``.

    Data goes through ``data`` (upstream outputs named by ``locations``); ``inputs`` opens an upstream output as a
    local folder, for the files a stage reads itself (a fitted model).
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
    source_frames: dict[str, dd.DataFrame] = field(default_factory=dict)
    partitions: PartitionView | None = None
    on_progress: object = None
