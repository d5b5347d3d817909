"""What the operator's machine keeps per runner: its file, its SSH key, the stack's outputs and which credential it
holds (its id, name and expiry; never its secret, which only the runner VM has). The runner itself keeps no state:
schedules, history and leases are in the store."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from orchestrator.errors import DataopsError
from orchestrator.local_state import LocalRecord, records_under, state_root
from orchestrator.runners.spec import RunnerSpec


class RunnerNotFound(DataopsError):
    """No schedule runner under the given name on this machine."""

    exit_code = 14


def runners_dir() -> Path:
    """Root of the per-runner state: ``DATAOPS_RUNNERS_DIR`` or ``~/.dataops/runners``."""
    return state_root("DATAOPS_RUNNERS_DIR", "runners")


@dataclass
class RunnerState(LocalRecord):
    """The local record of one runner."""

    record_file = "runner.json"
    kind = "runner"
    not_found = RunnerNotFound

    @property
    def ssh_key(self) -> Path:
        return self.directory / "id_ed25519"

    def load(self) -> dict:
        """The record; raises RunnerNotFound when there is none."""
        return self.read()

    def spec(self) -> RunnerSpec:
        return RunnerSpec.model_validate(self.load()["spec"])

    def save(self, **fields) -> dict:
        """Merge ``fields`` into the record (``spec`` as a RunnerSpec) and write it atomically."""
        if isinstance(fields.get("spec"), RunnerSpec):
            fields["spec"] = fields["spec"].model_dump(mode="json")
        record = self.merge(**fields)
        if "created_at" not in record:
            record = self.merge(created_at=now())
        return record


def runner_state(name: str) -> RunnerState:
    """The state of runner ``name`` (which may not exist yet)."""
    return RunnerState(runners_dir() / name)


def known_runners() -> list[RunnerState]:
    """Every runner recorded on this machine."""
    return records_under(runners_dir(), RunnerState)


def now() -> str:
    return datetime.now(UTC).isoformat()
