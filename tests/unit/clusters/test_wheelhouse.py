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


# The modules whose functions Dask tasks call: a cluster's scheduler and workers import each one to unpickle them.
TASK_MODULES = ("orchestrator.ml.score", "orchestrator.ml.train", "orchestrator.ml.tune",
                "orchestrator.monitoring.counts", "orchestrator.pipeline.blend", "orchestrator.pipeline.kinds.split",
                "orchestrator.pipeline.prepare", "orchestrator.pipeline.stage_data", "orchestrator.pipeline.transforms",
                "orchestrator.pipeline.windows")

# Run in a fresh interpreter: the top-level packages the project's own modules import while the task modules load.
IMPORTED_BY_TASK_MODULES = """
import builtins, json, sys
plain_import, imported = builtins.__import__, set()
def recording(name, globals=None, locals=None, fromlist=(), level=0):
    if level == 0 and (globals or {}).get("__name__", "").startswith("orchestrator"):
        imported.add(name.split(".")[0])
    return plain_import(name, globals, locals, fromlist, level)
builtins.__import__ = recording
for name in sys.argv[1:]:
    __import__(name)
print(json.dumps(sorted(imported)))
"""


def _installed_with(distributions) -> set[str]:
    """The distributions ``distributions`` install, their requirements' included (extras and markers aside)."""
    from importlib.metadata import PackageNotFoundError, requires

    from packaging.requirements import Requirement

    seen, todo = set(), [d.lower().replace("_", "-") for d in distributions]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            needs = requires(name) or []
        except PackageNotFoundError:
            continue
        for text in needs:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name.lower().replace("_", "-"))
    return seen


def test_every_package_the_task_modules_import_is_installed_on_the_nodes():
    import json
    import subprocess
    import sys
    from importlib.metadata import packages_distributions

    from orchestrator.clusters.wheelhouse import NODE_PACKAGES

    loaded = json.loads(subprocess.run([sys.executable, "-c", IMPORTED_BY_TASK_MODULES, *TASK_MODULES], check=True,
                                       capture_output=True, text=True).stdout)
    on_nodes = _installed_with(NODE_PACKAGES + PIPELINE_PACKAGES)
    providers = packages_distributions()
    missing = sorted(
        name for name in loaded
        if name not in sys.stdlib_module_names and name not in ("orchestrator", "__future__")
        and not {d.lower().replace("_", "-") for d in providers.get(name, [])} & on_nodes)
    assert missing == [], f"imported by task code but not installed on cluster nodes: {missing}"
