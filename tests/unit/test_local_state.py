"""The one local state record: clusters and endpoints keep a private JSON record per name in the operator's folder,
read it back, merge into it, list the recorded names and report a missing one with their own error."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from orchestrator.clusters.spec import ClusterSpec
from orchestrator.clusters.state import cluster_state, known_clusters
from orchestrator.deploy.state import endpoint_state, known_endpoints
from orchestrator.errors import ClusterNotFound, DataopsError, EndpointNotFound
from orchestrator.local_state import LocalRecord, records_under, state_root


class NotebookMissing(DataopsError):
    exit_code = 99


@dataclass
class NotebookState(LocalRecord):
    record_file = "notebook.json"
    kind = "notebook"
    not_found = NotebookMissing


def test_a_record_is_written_privately_merged_and_read_back(tmp_path):
    state = NotebookState(tmp_path / "notebooks" / "n1")
    assert not state.exists()
    state.merge(status="creating", owner="ops")
    assert state.merge(status="ready") == {"status": "ready", "owner": "ops"}
    assert state.read() == json.loads(state.record.read_text()) == {"status": "ready", "owner": "ops"}
    assert state.record.stat().st_mode & 0o777 == 0o600
    assert state.directory.stat().st_mode & 0o777 == 0o700


def test_a_missing_record_raises_the_kinds_own_error_naming_it_and_the_folder(tmp_path):
    with pytest.raises(NotebookMissing, match=rf"no notebook named 'n2' \(looked in {tmp_path}/n2\)"):
        NotebookState(tmp_path / "n2").read()


def test_listing_finds_only_folders_holding_a_record_sorted_by_name(tmp_path):
    for name in ("b", "a"):
        NotebookState(tmp_path / name).write({})
    (tmp_path / "half-made").mkdir()
    assert [s.name for s in records_under(tmp_path, NotebookState)] == ["a", "b"]
    assert records_under(tmp_path / "nothing-here", NotebookState) == []


def test_removing_twice_is_not_an_error(tmp_path):
    state = NotebookState(tmp_path / "n")
    state.write({"x": 1})
    state.remove()
    state.remove()
    assert not state.directory.exists()


def test_the_root_folder_follows_its_environment_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("DATAOPS_NOTEBOOKS_DIR", str(tmp_path))
    assert state_root("DATAOPS_NOTEBOOKS_DIR", "notebooks") == tmp_path
    monkeypatch.delenv("DATAOPS_NOTEBOOKS_DIR")
    assert state_root("DATAOPS_NOTEBOOKS_DIR", "notebooks").parts[-2:] == (".dataops", "notebooks")


def test_clusters_and_endpoints_keep_their_files_shapes_and_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("DATAOPS_CLUSTERS_DIR", str(tmp_path / "clusters"))
    monkeypatch.setenv("DATAOPS_ENDPOINTS_DIR", str(tmp_path / "endpoints"))
    spec = ClusterSpec.model_validate({
        "name": "demo", "image": "debian-12", "scheduler": {"flavor": "m1.small"},
        "workers": {"flavor": "m1.small", "count": 1}, "network": {"public": "public"},
        "operator_cidr": "192.0.2.2/32",
    })
    cluster_state("demo").save(spec, status="ready")
    record = json.loads((tmp_path / "clusters" / "demo" / "cluster.json").read_text())
    assert record["status"] == "ready" and record["spec"]["name"] == "demo" and "created_at" in record
    assert [s.name for s in known_clusters()] == ["demo"]
    assert cluster_state("demo").load_spec() == spec

    assert endpoint_state("api").save(status="serving") == {"status": "serving"}
    assert json.loads((tmp_path / "endpoints" / "api" / "endpoint.json").read_text()) == {"status": "serving"}
    assert [s.name for s in known_endpoints()] == ["api"]
    assert endpoint_state("api").ensure_token() == endpoint_state("api").ensure_token()
    assert (tmp_path / "endpoints" / "api" / "token").stat().st_mode & 0o777 == 0o600

    with pytest.raises(ClusterNotFound, match="no cluster named 'gone'"):
        cluster_state("gone").load_record()
    with pytest.raises(EndpointNotFound, match="no endpoint named 'gone'"):
        endpoint_state("gone").load()
