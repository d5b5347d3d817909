"""A schedule may run a watch of the closed loop instead of a pipeline or a job: the watch names what it follows
(an endpoint or a local server) and the pipeline file that retrains, which travels with the schedule like a
scheduled pipeline does. Validated like every schedule file: mistakes named by file, line and field."""

from __future__ import annotations

import textwrap

import pytest

from orchestrator.artifacts.local import LocalStore
from orchestrator.errors import SpecError
from orchestrator.scheduling.bundle import bundle_manifest
from orchestrator.scheduling.spec import load_schedule_spec
from orchestrator.scheduling.state import ScheduleState
from orchestrator.usecases.schedules import create_schedule, scheduled_pipeline
from tests.support.drifting_visits import pipeline_text


def write(tmp_path, text: str, name: str = "watch.yaml"):
    path = tmp_path / "ops" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def test_a_watch_of_a_local_server_loads_with_its_files_relative_to_the_schedule_file(tmp_path):
    spec = load_schedule_spec(write(tmp_path, """
        name: watch-visits
        cron: "*/10 * * * *"
        watch:
          server: http://127.0.0.1:8080
          pipeline: ../loop/pipeline.yaml
          token_file: token
          repository_dir: ../serving/repository
    """))

    assert spec.pipeline is None and spec.job is None
    assert spec.watch.pipeline == spec.pipeline_file == str((tmp_path / "loop" / "pipeline.yaml").resolve())
    assert spec.watch.token_file == str((tmp_path / "ops" / "token").resolve())
    assert spec.watch.repository_dir == str((tmp_path / "serving" / "repository").resolve())
    assert spec.what == "watch http://127.0.0.1:8080"


def test_a_watch_of_an_endpoint_needs_no_server_files(tmp_path):
    spec = load_schedule_spec(write(tmp_path, """
        name: watch-delays
        cron: "0 * * * *"
        watch: {endpoint: delays, pipeline: loop.yaml}
    """))

    assert (spec.watch.endpoint, spec.watch.server, spec.watch.token_file) == ("delays", None, None)
    assert spec.what == "watch delays"


@pytest.mark.parametrize("body, message", [
    ("pipeline: p.yaml\nwatch: {endpoint: e, pipeline: p.yaml}\n",
     "expected exactly one of 'pipeline' (a pipeline file), 'job' (one of: cluster-sweep) or 'watch'"),
    ("watch: {endpoint: e, server: 'http://127.0.0.1:8080', pipeline: p.yaml}\n",
     ":3: watch: expected exactly one of 'endpoint' (an endpoint's name) or 'server' (a URL)"),
    ("watch: {server: '127.0.0.1:8080', pipeline: p.yaml}\n",
     ":3: watch.server: expected the server's base URL, such as http://127.0.0.1:8080"),
    ("watch: {endpoint: e}\n", ":3: field 'watch.pipeline' is required"),
    ("watch:\n  endpoint: e\n  pipline: p.yaml\n", ":5: unknown field 'watch.pipline' (did you mean 'pipeline'?)"),
])
def test_every_mistake_in_a_watch_is_named_by_line_and_field(tmp_path, body, message):
    path = write(tmp_path, "name: watch-it\ncron: '0 * * * *'\n" + body)

    with pytest.raises(SpecError) as caught:
        load_schedule_spec(path)

    assert message in str(caught.value)
    assert str(path) in str(caught.value)


def test_the_watch_pipeline_travels_with_the_schedule_to_a_runner_holding_only_the_store(tmp_path, monkeypatch):
    monkeypatch.setenv("DATAOPS_SCHEDULES_DIR", str(tmp_path / "runner"))
    (tmp_path / "loop").mkdir()
    (tmp_path / "loop" / "pipeline.yaml").write_text(pipeline_text().lstrip())
    (tmp_path / "loop" / "helpers.py").write_text("TWO = 2\n")
    path = write(tmp_path, "name: watch-visits\ncron: '0 * * * *'\nwatch:\n  endpoint: visits\n"
                           "  pipeline: ../loop/pipeline.yaml\n")
    store = str(tmp_path / "store")

    _, outcome = create_schedule(path, store)

    assert outcome == "created"
    manifest = bundle_manifest(LocalStore(tmp_path / "store"), "watch-visits")
    assert manifest["pipeline"] == "pipeline.yaml" and sorted(manifest["files"]) == ["helpers.py", "pipeline.yaml"]
    (tmp_path / "loop" / "pipeline.yaml").unlink()  # the runner is another machine: the operator's file is not there
    kept = scheduled_pipeline(LocalStore(tmp_path / "store"), ScheduleState(LocalStore(tmp_path / "store"),
                                                                            "watch-visits").load())
    assert kept.is_relative_to(tmp_path / "runner") and kept.read_text() == pipeline_text().lstrip()


def test_a_watch_whose_pipeline_file_is_missing_is_refused_when_the_schedule_is_created(tmp_path):
    path = write(tmp_path, "name: watch-visits\ncron: '0 * * * *'\nwatch: {endpoint: e, pipeline: none.yaml}\n")

    with pytest.raises(SpecError, match="field 'watch.pipeline': no pipeline file .*none.yaml"):
        create_schedule(path, str(tmp_path / "store"))
