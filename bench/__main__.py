"""List or run the benchmarks by name: `python -m bench` lists them, `python -m bench NAME [ARGS...]` runs one.

A benchmark is a module `bench/<name>.py` with a `main(argv)` function; modules are imported only when run, so one
benchmark's dependencies never slow down or break another.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path


def available() -> list[str]:
    """Names of the benchmark modules next to this file."""
    here = Path(__file__).parent
    return sorted(p.stem for p in here.glob("*.py") if not p.stem.startswith("_"))


def main(argv: list[str]) -> int:
    names = available()
    if not argv or argv[0] in ("-h", "--help", "list"):
        print("benchmarks: " + ", ".join(names))
        print("run one:    python -m bench NAME [--help]")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in names:
        print(f"unknown benchmark {name!r}; available: {', '.join(names)}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"bench.{name}")
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
