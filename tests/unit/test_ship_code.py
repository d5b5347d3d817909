"""The package shipped to a cluster is one archive named by its content, byte for byte the same when the code is:
a worker that imported modules from it still finds the others after the same code is shipped again."""

from __future__ import annotations

import shutil
from pathlib import Path

from orchestrator.dask_client import ship_code

PACKAGE = Path(__file__).resolve().parents[2] / "orchestrator"


class UploadRecorder:
    def __init__(self):
        self.archives: list[tuple[str, bytes]] = []

    def upload_file(self, path: str, load: bool) -> None:
        assert load
        self.archives.append((Path(path).name, Path(path).read_bytes()))


def test_shipping_the_same_code_twice_uploads_the_same_archive_byte_for_byte():
    client = UploadRecorder()
    ship_code(client)
    ship_code(client)
    (first_name, first), (second_name, second) = client.archives
    assert first_name == second_name and first == second


def test_changed_code_ships_under_another_name(tmp_path, monkeypatch):
    import orchestrator

    client = UploadRecorder()
    ship_code(client)
    copy = tmp_path / "orchestrator"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "monitoring" / "counts.py").write_text((copy / "monitoring" / "counts.py").read_text() + "\n# edited\n")
    monkeypatch.setattr(orchestrator, "__file__", str(copy / "__init__.py"))
    ship_code(client)
    assert client.archives[0][0] != client.archives[1][0]


def test_a_package_imported_from_a_shipped_archive_ships_that_archives_code(tmp_path, monkeypatch):
    import orchestrator

    client = UploadRecorder()
    ship_code(client)
    name, first = client.archives[0]
    # A scheduler in this process received the archive and put it first on the path: the package is imported
    # from inside it.
    archive = tmp_path / name
    archive.write_bytes(first)
    monkeypatch.setattr(orchestrator, "__file__", str(archive / "orchestrator" / "__init__.py"))
    ship_code(client)
    assert client.archives[1] == (name, first), "the same code again, not an empty archive"
