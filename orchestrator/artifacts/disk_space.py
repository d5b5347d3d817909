"""A full disk as one clear error: the place that has no space left and what was being written there, never a bare
``OSError: [Errno 28]`` (whose message names no path: neither Python's writes nor pyarrow's say which file)."""

from __future__ import annotations

import errno
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from orchestrator.errors import StoreFull

# A quota exhausted is a full disk to whoever writes.
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` says a write found no space left (on this machine or, re-raised by Dask, on a worker's)."""
    if isinstance(exc, shutil.Error):
        # copytree gathers its failures as (source, destination, message) with no errno of its own.
        failures = exc.args[0] if exc.args and isinstance(exc.args[0], list) else []
        return any(f"[Errno {code}]" in str(failure) for failure in failures for code in NO_SPACE)
    return isinstance(exc, OSError) and exc.errno in NO_SPACE


def disk_full_error(where: Path | str, writing: str) -> StoreFull:
    """The error for a full disk under ``where`` while ``writing`` (what, in words)."""
    return StoreFull(f"no space left on device under {where} while writing {writing}; free space there and run "
                     f"again (what was published is complete and kept)")


@contextmanager
def disk_space_checked(where: Path | str, writing: str) -> Iterator[None]:
    """Turn a full disk met inside the block into :func:`disk_full_error`; other errors pass unchanged.

    Raises:
        StoreFull: a write inside the block found no space left.
    """
    try:
        yield
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        raise disk_full_error(where, writing) from exc
