import json
import shutil

import pytest

from orchestrator.serving.card import parse_card, read_card
from orchestrator.serving.errors import ModelLoadError
from orchestrator.serving.model import choose_providers, load_model_folder


def test_card_reader_keeps_ranges_categories_and_tolerates_unknown_keys(model_folder):
    card = read_card(model_folder)
    assert card.name == "flights-delay" and card.version == 1
    assert card.input("dep_hour").min == 5.0 and card.input("dep_hour").max == 23.0
    assert card.input("carrier").allowed == frozenset({"AA", "UA", "DL"})
    assert card.input("prev_delay").nullable is True
    assert card.raw["an_unknown_key"] == {"readers": "must tolerate it"}


@pytest.mark.parametrize("broken, message", [
    ({"version": 1, "inputs": [{"name": "a", "datatype": "FP32"}]}, "missing required field 'name'"),
    ({"name": "m", "version": 0, "inputs": [{"name": "a", "datatype": "FP32"}]}, "'version' must be an integer >= 1"),
    ({"name": "m", "version": 1, "inputs": [{"name": "a", "datatype": "INT8"}]}, "inputs[0] (a): datatype must be"),
    ({"name": "m", "version": 1, "inputs": [{"name": "a", "datatype": "FP32", "min": "low"}]}, "(a).min: expected a finite"),
    ({"name": "m", "version": 1, "inputs": []}, "'inputs' must be a non-empty list"),
])
def test_malformed_card_is_refused_naming_the_field(broken, message):
    with pytest.raises(ModelLoadError, match=None) as caught:
        parse_card(broken, "card.json")
    assert message in str(caught.value)


def test_card_that_is_not_json_is_refused_with_its_line(tmp_path):
    (tmp_path / "model_card.json").write_text('{\n "name": "m",\n oops}')
    with pytest.raises(ModelLoadError, match="line 3: not valid JSON"):
        read_card(tmp_path)


def test_model_whose_bytes_differ_from_the_card_checksum_is_not_loaded(model_folder, tmp_path):
    copy = shutil.copytree(model_folder, tmp_path / "copy")
    with open(copy / "model.onnx", "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ModelLoadError, match="sha256 differs"):
        load_model_folder(copy)


def test_card_inputs_that_disagree_with_the_onnx_graph_are_refused(model_folder, tmp_path):
    copy = shutil.copytree(model_folder, tmp_path / "copy")
    card = json.loads((copy / "model_card.json").read_text())
    card["inputs"][0]["name"] = "departure_hour"
    (copy / "model_card.json").write_text(json.dumps(card))
    with pytest.raises(ModelLoadError, match="differ from ONNX inputs"):
        load_model_folder(copy)


def test_loaded_model_publishes_v2_metadata_with_onnx_platform(model):
    meta = model.metadata()
    assert meta["platform"] == "onnx_onnxv1" and meta["versions"] == ["1"]
    assert {"name": "carrier", "datatype": "BYTES", "shape": [-1, 1]} in meta["inputs"]
    assert [o["name"] for o in meta["outputs"]] == ["label", "probabilities"]


def test_cpu_provider_is_explicit_and_cuda_is_refused_when_absent():
    assert choose_providers("cpu") == ["CPUExecutionProvider"]
    assert choose_providers("auto")[-1] == "CPUExecutionProvider"
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        with pytest.raises(ModelLoadError, match="device 'cuda' asked for"):
            choose_providers("cuda")


def test_a_model_reproducing_its_card_examples_passes_the_self_check(model):
    from orchestrator.serving.selfcheck import verify_card_examples

    assert verify_card_examples(model) == 1


@pytest.mark.parametrize("tamper, message", [
    (lambda ex: ex["outputs"].update(probabilities=[[0.5, 0.5]]), "example output 'probabilities' differs from the model card"),
    (lambda ex: ex["outputs"].update(label=[7]), "example output 'label' is"),
    (lambda ex: ex["inputs"][0].pop("carrier"), "examples cannot be scored: record 0: missing field 'carrier'"),
])
def test_a_model_that_does_not_reproduce_its_card_is_not_served(model_folder, tmp_path, tamper, message):
    from orchestrator.serving.repository import ModelRepository

    copy = shutil.copytree(model_folder, tmp_path / "copy")
    card = json.loads((copy / "model_card.json").read_text())
    tamper(card["examples"])
    (copy / "model_card.json").write_text(json.dumps(card))
    repository = ModelRepository([copy])
    with pytest.raises(ModelLoadError) as caught:
        repository.load("flights-delay")
    assert message in str(caught.value)
    assert not repository.is_ready("flights-delay")


def test_an_exported_folder_not_yet_registered_is_served_as_version_1():
    card = parse_card({"name": "m", "version": None, "inputs": [{"name": "a", "datatype": "FP32"}]})
    assert card.version == 1


def test_a_version_removed_from_the_repository_folder_stops_being_served_on_the_next_load(model_folder, tmp_path):
    from orchestrator.serving.repository import ModelRepository

    for version in (1, 2):
        folder = shutil.copytree(model_folder, tmp_path / "repo" / "flights-delay" / str(version))
        card = json.loads((folder / "model_card.json").read_text())
        (folder / "model_card.json").write_text(json.dumps({**card, "version": version}))
    repository = ModelRepository([], repository_dir=tmp_path / "repo")
    repository.load("flights-delay")
    assert repository.get("flights-delay").card.version == 2
    shutil.rmtree(tmp_path / "repo" / "flights-delay" / "2")
    repository.load("flights-delay")
    assert repository.get("flights-delay").card.version == 1
    assert [row["version"] for row in repository.index()] == ["1"]
