"""A scheduled pipeline travels with its schedule: the pipeline file and the modules beside it are kept in the
store, so a runner holding nothing but the store runs exactly what was scheduled; editing the files changes what
runs only once the schedule is created again."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.artifacts.local import LocalStore
from orchestrator.errors import ArtifactError, SpecError
from orchestrator.scheduling.bundle import MAX_BUNDLE_BYTES, bundle_manifest, collect_bundle
from orchestrator.scheduling.state import ScheduleState
from orchestrator.usecases.schedules import create_schedule, scheduled_pipeline

PIPELINE = """\
name: tiny
sources:
  rows: {location: data/rows.csv}
features:
  - function: features:add_one
split: {by: time, column: ts, boundaries: {train: "2024-09-01", validation: "2024-10-01", test: "2024-11-01"}}
"""


@pytest.fixture
def project(tmp_path) -> Path:
    folder = tmp_path / "project"
    (folder / "helpers").mkdir(parents=True)
    (folder / "pipeline.yaml").write_text(PIPELINE)
    (folder / "features.py").write_text("def add_one(df):\n    return df.assign(x=df.x + 1)\n")
    (folder / "helpers" / "__init__.py").write_text("")
    (folder / "helpers" / "maths.py").write_text("TWO = 2\n")
    (folder / "helpers" / "__pycache__").mkdir()
    (folder / "helpers" / "__pycache__" / "maths.cpython-311.pyc").write_bytes(b"\0")
    (folder / "data").mkdir()
    (folder / "data" / "rows.csv").write_text("ts,x\n2024-08-01,1\n")
    (folder / "schedule.yaml").write_text("name: nightly\npipeline: pipeline.yaml\ncron: '0 2 * * *'\n")
    return folder


@pytest.fixture
def store_uri(tmp_path) -> str:
    return str(tmp_path / "store")


@pytest.fixture
def runner_home(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "runner-schedules"
    monkeypatch.setenv("DATAOPS_SCHEDULES_DIR", str(folder))
    return folder


def test_the_bundle_holds_the_pipeline_file_and_the_modules_and_packages_beside_it_but_no_data(project):
    bundle = collect_bundle(project / "pipeline.yaml")
    assert bundle.pipeline == "pipeline.yaml"
    assert sorted(bundle.files) == ["features.py", "helpers/__init__.py", "helpers/maths.py", "pipeline.yaml"]


def test_a_runner_without_the_operators_files_runs_the_kept_pipeline(project, store_uri, runner_home):
    create_schedule(project / "schedule.yaml", store_uri)
    schedule = ScheduleState(LocalStore(Path(store_uri)), "nightly").load()
    (project / "features.py").unlink()  # the runner's machine has none of the operator's files
    (project / "pipeline.yaml").unlink()
    path = scheduled_pipeline(LocalStore(Path(store_uri)), schedule)
    assert path.parent.parent == runner_home
    assert path.read_text() == PIPELINE
    assert (path.parent / "features.py").read_text().startswith("def add_one")
    assert (path.parent / "helpers" / "maths.py").read_text() == "TWO = 2\n"
    assert scheduled_pipeline(LocalStore(Path(store_uri)), schedule) == path, "written once per digest"


def test_where_the_operators_files_are_unchanged_the_slot_runs_them_in_place(project, store_uri, runner_home):
    create_schedule(project / "schedule.yaml", store_uri)
    schedule = ScheduleState(LocalStore(Path(store_uri)), "nightly").load()
    assert scheduled_pipeline(LocalStore(Path(store_uri)), schedule) == (project / "pipeline.yaml").resolve()
    assert not runner_home.exists()


def test_an_edited_module_runs_only_once_the_schedule_is_created_again(project, store_uri, runner_home):
    assert create_schedule(project / "schedule.yaml", store_uri)[1] == "created"
    (project / "features.py").write_text("def add_one(df):\n    return df.assign(x=df.x + 100)\n")
    store = LocalStore(Path(store_uri))
    kept = scheduled_pipeline(store, ScheduleState(store, "nightly").load())
    assert "df.x + 1)" in (kept.parent / "features.py").read_text(), "the kept version still runs"
    assert create_schedule(project / "schedule.yaml", store_uri)[1] == "updated"
    assert scheduled_pipeline(store, ScheduleState(store, "nightly").load()) == (project / "pipeline.yaml").resolve()
    assert create_schedule(project / "schedule.yaml", store_uri)[1] == "unchanged"


def test_a_module_removed_from_the_folder_leaves_the_kept_bundle_too(project, store_uri):
    create_schedule(project / "schedule.yaml", store_uri)
    (project / "helpers" / "maths.py").unlink()
    create_schedule(project / "schedule.yaml", store_uri)
    store = LocalStore(Path(store_uri))
    assert "helpers/maths.py" not in bundle_manifest(store, "nightly")["files"]
    assert not any(key.endswith("helpers/maths.py") for key in store.list("schedules/nightly"))


def test_a_kept_file_that_was_corrupted_is_refused(project, store_uri, runner_home):
    create_schedule(project / "schedule.yaml", store_uri)
    store = LocalStore(Path(store_uri))
    store.put_bytes("schedules/nightly/pipeline/files/features.py", b"import os; os.system('boom')\n")
    (project / "features.py").unlink()
    with pytest.raises(ArtifactError, match="corrupted"):
        scheduled_pipeline(store, ScheduleState(store, "nightly").load())
    assert list(runner_home.iterdir()) == [], "no half-written folder is left"


def test_a_folder_holding_too_much_code_is_refused_naming_the_largest_file(project):
    (project / "generated.py").write_bytes(b"#" * (MAX_BUNDLE_BYTES + 1))
    with pytest.raises(SpecError, match="the largest is generated.py"):
        collect_bundle(project / "pipeline.yaml")
