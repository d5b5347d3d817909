"""What a runner VM installs: every distribution the project needs, pinned to the versions installed here, and the
project's own wheel, built from a copy of the checkout and rebuilt only when its sources change."""

from __future__ import annotations

import shutil
import zipfile
from importlib.metadata import version

import pytest

from orchestrator.errors import DataopsError
from orchestrator.runners.package import PROJECT_ROOT, build_project_wheel, runner_requirements, source_digest


def test_the_requirements_are_the_project_s_whole_closure_pinned_to_this_machine():
    pins = dict(r.split("==") for r in runner_requirements())
    for name in ("dask", "distributed", "pandas", "pyarrow", "openstacksdk", "typer", "cronsim", "keystoneauth1"):
        assert pins[name] == version(name), name
    assert "dataops" not in pins, "the project comes as its own wheel"
    assert "pytest" not in pins and "hypothesis" not in pins, "test extras are not installed on a runner"


def test_a_requirement_that_is_not_installed_is_an_error_naming_it(monkeypatch):
    from importlib.metadata import PackageNotFoundError

    import orchestrator.runners.package as package

    real = package.distribution

    def missing_cronsim(name):
        if name.lower() == "cronsim":
            raise PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(package, "distribution", missing_cronsim)
    with pytest.raises(DataopsError, match="cronsim is required by dataops but not installed here"):
        runner_requirements()


@pytest.fixture(scope="module")
def checkout(tmp_path_factory):
    """A copy of the project's build files, to change without touching the real checkout."""
    root = tmp_path_factory.mktemp("checkout")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(PROJECT_ROOT / name, root / name)
    shutil.copytree(PROJECT_ROOT / "orchestrator", root / "orchestrator", ignore=shutil.ignore_patterns("__pycache__"))
    return root


def test_the_wheel_holds_the_package_and_is_reused_until_a_source_changes(checkout, tmp_path):
    cache = tmp_path / "cache"
    wheel = build_project_wheel(cache, checkout)
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert {"orchestrator/runners/provision.py", "orchestrator/cli/main.py", "orchestrator/serving/app.py"} <= names
    assert not (checkout / "build").exists(), "the checkout itself is not built in"
    built_at = wheel.stat().st_mtime_ns
    assert build_project_wheel(cache, checkout) == wheel and wheel.stat().st_mtime_ns == built_at
    before = source_digest(checkout)
    (checkout / "orchestrator" / "runners" / "__init__.py").write_text('"""Changed."""\n')
    assert source_digest(checkout) != before
    rebuilt = build_project_wheel(cache, checkout)
    assert rebuilt != wheel and rebuilt.parent.name == source_digest(checkout)


def test_a_folder_without_a_project_is_refused(tmp_path):
    with pytest.raises(DataopsError, match="no project checkout"):
        build_project_wheel(tmp_path / "cache", tmp_path)
