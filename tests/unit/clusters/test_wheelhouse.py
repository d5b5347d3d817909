"""The wheelhouse travels to the nodes as one archive named by its content, with a marker that tells a node it has it."""

import tarfile

from orchestrator.clusters.wheelhouse import PIPELINE_PACKAGES, pack_wheelhouse, pinned_requirements


def _wheelhouse(folder, *names):
    folder.mkdir()
    for name in names:
        (folder / name).write_bytes(name.encode())
    return folder


def test_the_archive_holds_every_wheel_and_a_marker_named_like_it(tmp_path):
    wheels = _wheelhouse(tmp_path / "w", "dask-1.0-py3-none-any.whl", "pandas-3.0-cp311-cp311-linux.whl")
    archive = pack_wheelhouse(wheels, tmp_path / "archives")
    with tarfile.open(archive) as tar:
        names = sorted(tar.getnames())
    assert names == [f".{archive.stem}", "dask-1.0-py3-none-any.whl", "pandas-3.0-cp311-cp311-linux.whl"]


def test_the_same_wheels_reuse_the_archive_and_new_ones_make_another(tmp_path):
    wheels = _wheelhouse(tmp_path / "w", "dask-1.0-py3-none-any.whl")
    first = pack_wheelhouse(wheels, tmp_path / "archives")
    assert pack_wheelhouse(wheels, tmp_path / "archives") == first
    (wheels / "numpy-2.0-cp311-cp311-linux.whl").write_bytes(b"x")
    assert pack_wheelhouse(wheels, tmp_path / "archives") != first


def test_nodes_get_what_pipeline_tasks_import_pinned_to_this_machines_versions():
    pins = dict(r.split("==") for r in pinned_requirements())
    assert {"dask", "distributed", "pandas", "pyarrow", "scikit-learn", "onnxruntime"} <= set(pins)
    assert set(PIPELINE_PACKAGES) <= set(pins)
