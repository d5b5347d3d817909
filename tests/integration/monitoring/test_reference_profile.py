"""The reference profile saved with every model: the export stage builds it (features on the train partition,
outputs on validation, scored by the exported ONNX model), the registry keeps it, drift checks load it; an older
model without one gets a clear message and ``dataops drift profile`` builds the same profile for it; ``model show``
gives the latest drift verdict."""

from __future__ import annotations

import json
import shutil

import dask.dataframe as dd
import pytest
import typer
from typer.testing import CliRunner

from orchestrator.cli.drift_profile import register as register_drift_profile
from orchestrator.cli.main import app as dataops
from orchestrator.errors import ArtifactNotFound
from orchestrator.pipeline.runner import run_pipeline
from orchestrator.pipeline.spec import load_pipeline
from orchestrator.registry.models import ModelRegistry
from orchestrator.usecases.drift_profile import load_drift_policy, load_reference_profile, profile_key
from tests.conftest import write
from tests.integration.pipeline.conftest import PIPELINE, make_shop

pytestmark = pytest.mark.integration

MODEL = """
model:
  name: shop-channel
  task: classification
  target: channel
  features: {numeric: [amount, customer], categorical: [segment]}
  estimator: sklearn.linear_model.LogisticRegression
monitoring:
  min_rows: 200
  columns:
    customer: {ignore: true}
"""
FEATURES = ["amount", "customer", "segment"]
OUTPUTS = ["prediction", "proba_shop", "proba_web"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, dask_client):
    """A shop pipeline with a model, run once into a local store: (store, run record)."""
    from orchestrator.artifacts.local import LocalStore

    folder = tmp_path_factory.mktemp("shop")
    make_shop(folder, bad_rows=3)
    path = write(folder / "pipeline.yaml", PIPELINE.format(max_bad=0.05, key="event_id") + MODEL)
    store = LocalStore(folder / "store")
    record = run_pipeline(load_pipeline(path), store, dask_client).record
    return store, record


def _drift_app() -> typer.Typer:
    """The ``drift`` group as the CLI builds it: a Typer group given to ``register``."""
    drift = typer.Typer(no_args_is_help=True)

    @drift.callback()
    def _group() -> None:
        """Drift of served models."""

    register_drift_profile(drift)
    return drift


def test_a_registered_model_holds_its_reference_profile_of_features_and_outputs(trained):
    store, record = trained
    registry = ModelRegistry(store)
    folder = registry.folder("shop-channel")
    card = registry.card("shop-channel")
    saved = json.loads((folder / card["monitoring"]["profile"]).read_text())
    profile = load_reference_profile(store, "shop-channel")

    assert profile.to_dict() == saved
    assert [c.name for c in profile.columns] == FEATURES + OUTPUTS
    assert {c.name: (c.kind, c.role) for c in profile.columns} == {
        "amount": ("numeric", "feature"), "customer": ("numeric", "feature"), "segment": ("categorical", "feature"),
        "prediction": ("categorical", "prediction"), "proba_shop": ("numeric", "prediction"),
        "proba_web": ("numeric", "prediction"),
    }
    partitions = record["stages"]["split"]["partitions"]
    for name in FEATURES:
        assert profile.column(name).counts.rows == partitions["train"]["rows"], name
    for name in OUTPUTS:
        assert profile.column(name).counts.rows == partitions["validation"]["rows"], name
    amount = profile.column("amount")
    assert sum(amount.counts.psi) + amount.counts.missing == partitions["train"]["rows"]
    assert sum(amount.counts.grid) + sum(amount.counts.under) + sum(amount.counts.over) == amount.counts.present
    segment = profile.column("segment")
    assert set(segment.categories) == {"gold", "std"} and sum(segment.counts.buckets) == partitions["train"]["rows"]
    # The importance the verdict ranks features by is the evaluation's permutation importance.
    assert profile.importance == card["metrics"]["feature_importance"]["mean"]
    # The card names the profile (and its checksum) and keeps the pipeline file's monitoring policy.
    assert card["files"]["reference_profile.json"]["size"] == (folder / "reference_profile.json").stat().st_size
    policy = load_drift_policy(store, "shop-channel")
    assert policy.min_rows == 200 and policy.ignored("customer")
    assert "reference_stats" in card


def test_export_reads_validation_for_the_outputs_and_never_serve(trained):
    _, record = trained
    partitions = record["stages"]["split"]["partitions"]
    assert record["stages"]["export"]["reads"] == {p: partitions[p] for p in ("train", "validation", "test")}


def test_the_outputs_reference_is_what_scoring_the_validation_partition_gives(trained):
    from orchestrator.ml.score import score_dataframe

    store, record = trained
    registry = ModelRegistry(store)
    split = store.dataset_path(record["stages"]["split"]["outputs"][0]["key"])
    scored = score_dataframe(registry.folder("shop-channel"), dd.read_parquet(split / "validation")).compute()
    profile = load_reference_profile(store, "shop-channel")
    prediction = profile.column("prediction")
    shares = scored["prediction"].astype(str).value_counts()
    assert prediction.counts.buckets[:len(prediction.categories)] == [int(shares[c]) for c in prediction.categories]
    assert profile.column("proba_web").mean == pytest.approx(float(scored["proba_web"].astype("float64").mean()))


def test_a_model_without_a_profile_is_told_the_command_and_drift_profile_builds_the_same_one(trained, tmp_path):
    store, _ = trained
    registry = ModelRegistry(store)
    exported = registry.folder("shop-channel")
    # A model registered before profiles existed: no profile file, no monitoring entry in its card.
    old = tmp_path / "old-model"
    shutil.copytree(exported, old)
    (old / "reference_profile.json").unlink()
    (old / "_manifest.json").unlink()
    card = json.loads((old / "model_card.json").read_text())
    card.pop("monitoring")
    card["files"].pop("reference_profile.json")
    (old / "model_card.json").write_text(json.dumps(card))
    version, created = registry.register(old, "shop-legacy")
    assert created

    with pytest.raises(ArtifactNotFound) as caught:
        load_reference_profile(store, "shop-legacy")
    assert str(caught.value) == (f"model shop-legacy:{version} has no reference profile: build one with "
                                 f"`dataops drift profile shop-legacy:{version}`")

    result = CliRunner().invoke(_drift_app(), ["profile", f"shop-legacy:{version}", "--store", str(store.root)])
    assert result.exit_code == 0, result.output
    assert profile_key("shop-legacy", version) in result.stdout
    assert "Built the reference profile of shop-legacy:1 (6 columns)" in result.output
    rebuilt = load_reference_profile(store, f"shop-legacy:{version}")
    assert rebuilt.to_dict() == load_reference_profile(store, "shop-channel").to_dict()
    # The registered model folder stays as it was published: the profile lives in the monitoring area.
    assert not (registry.folder(f"shop-legacy:{version}") / "reference_profile.json").exists()


def test_drift_profile_builds_nothing_for_a_model_exported_with_its_profile(trained):
    store, _ = trained
    result = CliRunner().invoke(_drift_app(), ["profile", "shop-channel", "--store", str(store.root)])
    assert result.exit_code == 0, result.output
    assert "shop-channel already holds its reference profile in its model folder; nothing to build." in result.output
    assert not store.exists(profile_key("shop-channel", 1))


def test_model_show_gives_the_latest_drift_verdict_with_its_drifted_columns(trained):
    store, _ = trained
    runner = CliRunner()
    never = runner.invoke(dataops, ["model", "show", "shop-channel", "--store", str(store.root)])
    assert never.exit_code == 0, never.output
    assert "## Latest drift check\n\nNever checked" in never.stdout

    for check_id, verdict, drifted in (("20261101-080000-aaaa", "no_drift", []),
                                       ("20261102-080000-bbbb", "drift", ["amount", "prediction"])):
        checked_at = f"{check_id[:4]}-{check_id[4:6]}-{check_id[6:8]}T08:00:00Z"
        key = f"monitoring/shop-channel/1/checks/{check_id}/result.json"
        result = {
            "format": "dataops.drift-check/1", "check_id": check_id, "checked_at": checked_at, "verdict": verdict,
            "window": {"kind": "data", "rows": 5000, "location": "batch.parquet"},
            "lineage": {"model": {"name": "shop-channel", "version": 1, "sha256": "0" * 64},
                        "data": {"location": "batch.parquet"}},
            "result": {
                "format": "dataops.drift/1", "verdict": verdict, "rows": 5000,
                "reasons": ["the model's predictions drifted: prediction"] if drifted else [],
                "columns": [{"name": name, "kind": "numeric", "role": "feature", "rows": 5000,
                             "verdict": "drift" if name in drifted else "no_drift", "statistics": []}
                            for name in FEATURES + OUTPUTS],
                "policy": {},
            },
        }
        store.put_bytes(key, json.dumps(result).encode())
        store.put_bytes("monitoring/shop-channel/1/latest.json", json.dumps(
            {"check_id": check_id, "checked_at": checked_at, "verdict": verdict, "result": key}).encode())

    shown = runner.invoke(dataops, ["model", "show", "shop-channel:1", "--store", str(store.root)])
    assert shown.exit_code == 0, shown.output
    assert ("## Latest drift check\n\n"
            "- verdict: drift on 5,000 rows, checked 2026-11-02T08:00:00Z (check 20261102-080000-bbbb)\n"
            "- drifted columns: amount, prediction\n"
            "- why: the model's predictions drifted: prediction\n") in shown.stdout
    as_json = runner.invoke(dataops, ["model", "show", "shop-channel:1", "--json", "--store", str(store.root)])
    latest = json.loads(as_json.stdout)["latest_drift"]
    assert (latest["verdict"], latest["drifted"], latest["check_id"]) == ("drift", ["amount", "prediction"],
                                                                        "20261102-080000-bbbb")


def test_a_partition_larger_than_the_edge_sample_is_still_counted_whole(trained, monkeypatch):
    import numpy as np

    from orchestrator.pipeline import reference_profile

    store, record = trained
    registry = ModelRegistry(store)
    split = store.dataset_path(record["stages"]["split"]["outputs"][0]["key"])
    train = dd.read_parquet(split / "train").compute()
    validation = dd.read_parquet(split / "validation").compute()
    # Edges from a sample of 300 rows (a million, at full scale); counts and moments from every row.
    monkeypatch.setattr(reference_profile, "EDGE_SAMPLE_ROWS", 300)
    card = registry.card("shop-channel")
    sampled = reference_profile.model_reference_profile(card, registry.folder("shop-channel"), train, validation)
    whole = load_reference_profile(store, "shop-channel")
    amount = sampled.column("amount")
    assert amount.counts.rows == len(train) and sum(amount.counts.psi) == amount.counts.present
    assert amount.psi_edges != whole.column("amount").psi_edges
    assert amount.mean == pytest.approx(float(np.nanmean(train["amount"].astype("float64"))), rel=1e-12)
    assert sampled.column("segment").counts == whole.column("segment").counts
    assert sampled.column("prediction").counts == whole.column("prediction").counts
