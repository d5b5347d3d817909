"""The architecture is checked, not described: import-linter's contracts (in pyproject.toml) hold for the package,
and a back edge (a lower layer importing a higher one) breaks them."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(package_parent: Path) -> subprocess.CompletedProcess:
    """Check the contracts against the ``orchestrator`` package found in ``package_parent``."""
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(ROOT / "pyproject.toml")],
        cwd=package_parent, env={"PYTHONPATH": str(package_parent), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=300,
    )


def test_the_package_keeps_every_import_contract():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_an_adapter_importing_a_use_case_breaks_the_layers_contract(tmp_path):
    shutil.copytree(ROOT / "orchestrator", tmp_path / "orchestrator", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "orchestrator" / "artifacts" / "back_edge.py").write_text("from orchestrator.usecases import run\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "orchestrator.artifacts is not allowed to import orchestrator.usecases" in result.stdout
    assert "orchestrator.artifacts.back_edge -> orchestrator.usecases.run" in result.stdout


def test_the_inference_server_importing_the_package_breaks_its_independence(tmp_path):
    shutil.copytree(ROOT / "orchestrator", tmp_path / "orchestrator", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "orchestrator" / "serving" / "back_edge.py").write_text("import orchestrator.errors\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "orchestrator.serving is not allowed to import orchestrator.errors" in result.stdout
