"""The one atomic write: a temporary file beside the target, flushed to disk, then renamed over it, so that a
reader sees the old content or the new one and never half of it, even if the writer dies midway."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


@contextmanager
def atomic_file(path: Path | str, mode: int | None = None, *, temp_dir: Path | str | None = None) -> Iterator[BinaryIO]:
    """Open a binary file whose content replaces ``path`` only when the ``with`` block ends without an error.

    Args:
        path: The file to write; its folder must exist.
        mode: Permission bits of the file (``0o600`` for a key); the file has them from its creation on, never
            looser ones. None gives what ``open()`` gives: ``0o666`` less the umask.
        temp_dir: Where the temporary file lives until the rename, when not beside ``path`` (a staging folder
            that listings skip); it must be on the same file system as ``path``.

    Yields:
        The open temporary file.

    Raises:
        OSError: The temporary file cannot be created, written or renamed; it is removed.
    """
    path = Path(path)
    folder = Path(temp_dir) if temp_dir is not None else path.parent
    temporary = folder / f".{path.name}.{secrets.token_hex(8)}.tmp"
    # A key must never exist, even briefly, with looser permissions than its final ones: start private.
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if mode is not None else 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            if mode is not None:
                os.fchmod(handle.fileno(), mode)  # exactly ``mode``, whatever the umask
            yield handle
            handle.flush()
            os.fsync(handle.fileno())  # the content is on disk before the name points at it
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_atomically(path: Path | str, data: bytes | str, mode: int | None = None, *,
                     temp_dir: Path | str | None = None) -> None:
    """Replace ``path`` with ``data`` atomically (see :func:`atomic_file`).

    Args:
        path: The file to write; its folder must exist.
        data: The new content; text is written as UTF-8.
        mode: Permission bits of the file, e.g. ``0o600`` for a key; None gives ``0o666`` less the umask.
        temp_dir: Where the temporary file lives until the rename, when not beside ``path``.

    Raises:
        OSError: The file cannot be written; the previous content, if any, is left as it was.
    """
    with atomic_file(path, mode, temp_dir=temp_dir) as handle:
        handle.write(data.encode() if isinstance(data, str) else data)
