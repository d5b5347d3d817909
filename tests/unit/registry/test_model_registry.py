import json

import pytest

from orchestrator.artifacts.local import LocalStore
from orchestrator.errors import ArtifactError, ArtifactNotFound
from orchestrator.registry.models import InvalidModelRef, ModelRef, ModelRegistry, compare_cards, resolve_model_ref
from registry_data import fake_model_folder


@pytest.fixture
def registry(tmp_path):
    return ModelRegistry(LocalStore(tmp_path / "store"))


def test_the_first_registration_is_version_one_and_holds_the_files(registry, tmp_path):
    folder = fake_model_folder(tmp_path / "m", b"onnx-a")
    assert registry.register(folder, "flights-delay") == (1, True)
    published = resolve_model_ref(registry.store, "flights-delay:1")
    assert (published / "model.onnx").read_bytes() == b"onnx-a"
    card = json.loads((published / "model_card.json").read_text())
    assert card["name"] == "flights-delay" and card["version"] == 1 and "registered_at" in card
    assert (published / "model_card.md").read_text().startswith("# flights-delay v1")


def test_an_unchanged_model_registers_nothing_new(registry, tmp_path):
    registry.register(fake_model_folder(tmp_path / "a", b"onnx-a"), "m")
    assert registry.register(fake_model_folder(tmp_path / "b", b"onnx-a"), "m") == (1, False)
    assert registry.versions("m") == [1]


def test_a_changed_model_or_changed_training_data_is_a_new_version(registry, tmp_path):
    registry.register(fake_model_folder(tmp_path / "a", b"onnx-a"), "m")
    assert registry.register(fake_model_folder(tmp_path / "b", b"onnx-b"), "m") == (2, True)
    assert registry.register(fake_model_folder(tmp_path / "c", b"onnx-b", train_fingerprint="other"), "m") == (3, True)


def test_published_versions_are_never_overwritten(registry, tmp_path):
    registry.register(fake_model_folder(tmp_path / "a", b"onnx-a"), "m")
    # Someone else's files sit where version 2 would go: registration moves on to version 3.
    registry.store.put_dataset("models/m/2", fake_model_folder(tmp_path / "other", b"other"))
    assert registry.register(fake_model_folder(tmp_path / "b", b"onnx-b"), "m") == (3, True)
    assert (resolve_model_ref(registry.store, "m:2") / "model.onnx").read_bytes() == b"other"


def test_a_card_that_does_not_describe_its_model_is_refused(registry, tmp_path):
    folder = fake_model_folder(tmp_path / "a", b"onnx-a")
    (folder / "model.onnx").write_bytes(b"tampered")
    with pytest.raises(ArtifactError, match="does not describe"):
        registry.register(folder, "m")


def test_references_resolve_to_versions_stages_production_or_newest(registry, tmp_path):
    for i, payload in enumerate([b"a", b"b", b"c"]):
        registry.register(fake_model_folder(tmp_path / str(i), payload), "m")
    assert registry.resolve("m") == ("m", 3)  # nothing promoted: the newest
    registry.promote("m:2", "production")
    registry.promote("m:3", "staging")
    assert registry.resolve("m") == ("m", 2)
    assert registry.resolve("m@staging") == ("m", 3)
    assert registry.resolve("m:1") == ("m", 1)
    assert registry.card("m:2")["stages"] == ["production"]


def test_unknown_models_versions_and_stages_are_clear_errors(registry, tmp_path):
    registry.register(fake_model_folder(tmp_path / "a", b"a"), "m")
    with pytest.raises(ArtifactNotFound, match="no model 'x'.*registered: m"):
        registry.resolve("x")
    with pytest.raises(ArtifactNotFound, match="no version 7"):
        registry.resolve("m:7")
    with pytest.raises(ArtifactNotFound, match="no version promoted to production"):
        registry.resolve("m@production")
    with pytest.raises(InvalidModelRef, match="unknown stage 'prod'"):
        ModelRef.parse("m@prod")
    with pytest.raises(InvalidModelRef, match="expected NAME, NAME:VERSION or NAME@STAGE"):
        ModelRef.parse("m:v2")


def test_rollback_returns_production_to_the_previous_promotion_each_time(registry, tmp_path):
    for i, payload in enumerate([b"a", b"b", b"c"]):
        registry.register(fake_model_folder(tmp_path / str(i), payload), "m")
    for version in (1, 2, 3):
        registry.promote(f"m:{version}", "production")
    assert registry.rollback("m")["production"] == 2
    assert registry.rollback("m")["production"] == 1
    with pytest.raises(ArtifactNotFound, match="no earlier production version"):
        registry.rollback("m")
    history = registry.stages("m")["history"]
    assert [h["action"] for h in history] == ["promote"] * 3 + ["rollback"] * 2


def test_list_shows_every_version_with_stages_and_metrics(registry, tmp_path):
    registry.register(fake_model_folder(tmp_path / "a", b"a", roc_auc=0.7), "m")
    registry.register(fake_model_folder(tmp_path / "b", b"b", roc_auc=0.8), "m")
    registry.promote("m:2", "production")
    rows = registry.list()
    assert [(r["version"], r["stages"], r["metrics"]["roc_auc"]) for r in rows] == [(1, [], 0.7), (2, ["production"], 0.8)]


def test_compare_shows_metric_deltas_and_changed_parameters(registry, tmp_path):
    registry.register(fake_model_folder(tmp_path / "a", b"a", roc_auc=0.7, params={"C": 1.0, "tol": 1e-4}), "m")
    registry.register(fake_model_folder(tmp_path / "b", b"b", roc_auc=0.75, params={"C": 0.1, "tol": 1e-4}), "m")
    diff = compare_cards(registry.card("m:1"), registry.card("m:2"))
    assert diff["metrics"]["roc_auc"]["delta"] == pytest.approx(0.05)
    assert diff["params"] == {"C": {"left": 1.0, "right": 0.1}}
    assert diff["same_training_data"] is True
