"""The inference server's own wheel, which inference VMs install: all of the server, and nothing else."""

import zipfile

from orchestrator.deploy.server_package import SERVING, build_server_wheel


def test_the_server_wheel_holds_every_module_of_the_server_and_nothing_else_of_the_project(tmp_path):
    wheel = build_server_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {n for n in names if n.endswith(".py")}
    expected = {f"orchestrator/serving/{p.relative_to(SERVING).as_posix()}" for p in SERVING.rglob("*.py")
                if "__pycache__" not in p.parts}
    assert expected <= modules, f"missing from the wheel: {sorted(expected - modules)}"
    assert modules - expected == {"orchestrator/__init__.py"}
