"""Drift benchmark: this project's drift check against Evidently's DataDriftPreset on the same data, same run.

    .venv/bin/python -m bench drift [--rounds 3] [--install-evidently] [--skip-evidently] [--big]

The data (a fixed seed, written once as Parquet under ``bench/.data/drift/`` and reused): a 1M-row reference and a
1M-row current window with 15 features, 10 normal numeric columns (``num_3`` and ``num_7`` shifted by 0.5 sigma in
the current window) and 5 four-level categoricals (``cat_2``'s first category loses 15 points of share to its last).

Every measurement runs in a child process of its own, which reports its own peak memory (``VmHWM`` of
``/proc/self/status``; for a Dask run, the sum of the client's, the scheduler's and every worker's), so no side's
memory counts against another:
  * ``profile``  this project, once at training time: read the reference, ``build_profile``, save it as JSON;
  * ``pandas``   this project's check: load the profile, read the current window, ``count_window`` + ``check_drift``;
  * ``dask``     the same check with ``count_dask`` on a LocalCluster from ``orchestrator.dask_client``;
  * ``evidently`` Evidently 0.7.23 in a virtualenv of its own (``bench/.data/evidently-venv``, made by
                 ``--install-evidently``): read reference and current, ``Report([DataDriftPreset()]).run(...)``.
The timed check of each side excludes reading the Parquet (both sides pay it) and importing libraries: it is the
counting plus the statistics for this project, ``Report.run`` for Evidently (which needs the raw reference, where
this project needs only its profile). Rounds interleave the sides; the figures printed are medians and the ratios
are ratios of medians (Evidently, at a minute or two a run, runs in the first round only by default). ``--big`` adds
this project alone on a 10M-row x 100-feature window (80 numeric, 20 categorical, 20 Parquet partitions) counted
through Dask, reading included: the goal is under 2 minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

# Only the standard library at the top: the Evidently side runs this file with Evidently's own interpreter.
ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / ".data" / "drift"
BIG = DATA / "big"
EVIDENTLY_VENV = ROOT / "bench" / ".data" / "evidently-venv"
EVIDENTLY_PYTHON = EVIDENTLY_VENV / "bin" / "python"
EVIDENTLY_REQUIREMENTS = ["evidently==0.7.23", "pandas<3", "pyarrow"]

SEED = 15
ROWS = 1_000_000
ROW_GROUP = 125_000
NUMERIC = [f"num_{i}" for i in range(10)]
CATEGORICAL = [f"cat_{i}" for i in range(5)]
SHIFTED = {"num_3", "num_7", "cat_2"}
LEVELS = ["north", "south", "east", "west"]
SHARES = [0.40, 0.30, 0.20, 0.10]
SHIFTED_SHARES = [0.25, 0.30, 0.20, 0.25]  # a 15-point change in the first category's share
BIG_ROWS, BIG_PARTS, BIG_NUMERIC, BIG_CATEGORICAL = 10_000_000, 20, 80, 20
BIG_SHIFTED = {"num_3", "cat_2"}

GOAL_SPEEDUP = 50.0
GOAL_VALUES_PER_CORE = 50e6
GOAL_BIG_S = 120.0


# ---------------------------------------------------------------- the data (the project's interpreter)

def _numeric_values(rng, name: str, rows: int, shifted: bool):
    """Column ``num_i``: normal with mean 10 i and deviation 1 + i, moved by half a deviation when shifted."""
    index = int(name.split("_")[1])
    mean, std = 10.0 * index, 1.0 + index
    return rng.normal(mean + (0.5 * std if shifted else 0.0), std, rows)


def _categorical_values(rng, rows: int, shifted: bool):
    import numpy as np
    import pyarrow as pa

    codes = rng.choice(len(LEVELS), rows, p=SHIFTED_SHARES if shifted else SHARES).astype(np.int32)
    # Plain strings in the file (what captures and scored batches hold), built from codes for speed.
    return pa.DictionaryArray.from_arrays(codes, pa.array(LEVELS)).cast(pa.string())


def _table(rng, rows: int, numeric: list[str], categorical: list[str], shifted: set[str]):
    import pyarrow as pa

    columns = {name: pa.array(_numeric_values(rng, name, rows, name in shifted)) for name in numeric}
    columns.update({name: _categorical_values(rng, rows, name in shifted) for name in categorical})
    return pa.table(columns)


def make_data() -> None:
    """The 1M-row reference and current window, once."""
    import numpy as np
    import pyarrow.parquet as pq

    if (DATA / "done").exists():
        return
    DATA.mkdir(parents=True, exist_ok=True)
    print(f"writing {ROWS:,}-row reference and current windows under {DATA.relative_to(ROOT)} (once)", flush=True)
    rng = np.random.default_rng(SEED)
    pq.write_table(_table(rng, ROWS, NUMERIC, CATEGORICAL, set()), DATA / "reference.parquet", row_group_size=ROW_GROUP)
    pq.write_table(_table(rng, ROWS, NUMERIC, CATEGORICAL, SHIFTED), DATA / "current.parquet", row_group_size=ROW_GROUP)
    (DATA / "done").write_text(f"seed {SEED}, {ROWS} rows\n")


def big_names() -> tuple[list[str], list[str]]:
    return [f"num_{i}" for i in range(BIG_NUMERIC)], [f"cat_{i}" for i in range(BIG_CATEGORICAL)]


def make_big_data() -> None:
    """The 10M-row x 100-feature window in 20 partitions, and a 1M-row reference of the same columns, once."""
    import numpy as np
    import pyarrow.parquet as pq

    if (BIG / "done").exists():
        return
    numeric, categorical = big_names()
    parts = BIG / "current"
    parts.mkdir(parents=True, exist_ok=True)
    print(f"writing a {BIG_ROWS:,}-row x {BIG_NUMERIC + BIG_CATEGORICAL}-feature window under "
          f"{parts.relative_to(ROOT)} (once)", flush=True)
    rng = np.random.default_rng([SEED, 0])
    pq.write_table(_table(rng, ROWS, numeric, categorical, set()), BIG / "reference.parquet")
    for part in range(BIG_PARTS):
        rng = np.random.default_rng([SEED, part + 1])
        pq.write_table(_table(rng, BIG_ROWS // BIG_PARTS, numeric, categorical, BIG_SHIFTED),
                       parts / f"part-{part:03d}.parquet", row_group_size=BIG_ROWS // BIG_PARTS)
    (BIG / "done").write_text(f"seed {SEED}, {BIG_ROWS} rows in {BIG_PARTS} parts\n")


# ---------------------------------------------------------------- one side, in a child process

def peak_memory_bytes() -> int:
    """This process's resident-memory high-water mark."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def side_profile(folder: Path, numeric: list[str], categorical: list[str]) -> dict:
    """At training time: the reference profile, saved next to the data."""
    import pandas as pd

    from orchestrator.monitoring.profile import build_profile

    started = time.perf_counter()
    reference = pd.read_parquet(folder / "reference.parquet")
    read_s = time.perf_counter() - started
    started = time.perf_counter()
    profile = build_profile(reference, numeric, categorical)
    profile_s = time.perf_counter() - started
    text = json.dumps(profile.to_dict())
    (folder / "profile.json").write_text(text)
    return {"read_s": read_s, "profile_s": profile_s, "profile_bytes": len(text), "peak_bytes": peak_memory_bytes()}


def _load_profile(folder: Path):
    from orchestrator.monitoring.profile import ReferenceProfile

    return ReferenceProfile.from_dict(json.loads((folder / "profile.json").read_text()))


def _verdicts(result) -> dict:
    """Per column: the verdict and the statistic that compares with Evidently's (normed W1, or JS distance)."""
    columns = {}
    for column in result.columns:
        name = "wasserstein_std" if column.kind == "numeric" else "js_distance"
        columns[column.name] = {"verdict": column.verdict, "statistic": name,
                                "value": column.statistic(name).value}
    return {"dataset": result.verdict, "drifted": result.drifted, "columns": columns}


def side_pandas(folder: Path) -> dict:
    """This project's check on pandas, then a per-column breakdown of the counting (outside the timed check)."""
    import numpy as np
    import pandas as pd

    from orchestrator.monitoring.check import check_drift
    from orchestrator.monitoring.counts import count_column, count_numeric, count_window

    profile = _load_profile(folder)
    started = time.perf_counter()
    current = pd.read_parquet(folder / "current.parquet")
    read_s = time.perf_counter() - started

    started = time.perf_counter()
    counts = count_window(profile, current)
    counted = time.perf_counter()
    result = check_drift(profile, counts)
    finished = time.perf_counter()
    peak = peak_memory_bytes()  # before the breakdown below, which holds nothing more anyway

    kinds = {"numeric": 0.0, "categorical": 0.0}
    for column in profile.columns:
        begun = time.perf_counter()
        count_column(column, current[column.name])
        kinds[column.kind] += time.perf_counter() - begun
    # Frozen-edge counting alone: float64 arrays already in memory, one thread, best of three per column.
    frozen_s, values = 0.0, 0
    for column in profile.columns:
        if column.kind != "numeric":
            continue
        array = current[column.name].to_numpy(dtype=np.float64)
        best = float("inf")
        for _ in range(3):
            begun = time.perf_counter()
            count_numeric(column, array)
            best = min(best, time.perf_counter() - begun)
        frozen_s += best
        values += array.size
    return {"read_s": read_s, "count_s": counted - started, "stats_s": finished - counted,
            "check_s": finished - started, "peak_bytes": peak, "numeric_count_s": kinds["numeric"],
            "categorical_count_s": kinds["categorical"], "frozen_values": values, "frozen_s": frozen_s,
            **_verdicts(result)}


def _cluster_peak(client) -> int:
    """Sum of the high-water marks of this process, the scheduler and every worker (an upper bound of the tree's)."""
    workers = client.run(peak_memory_bytes)
    return peak_memory_bytes() + client.run_on_scheduler(peak_memory_bytes) + sum(workers.values())


def side_dask(folder: Path, workers: int | None) -> dict:
    """This project's check through Dask: the window read and persisted on the workers first (not timed)."""
    import dask.dataframe as dd
    from distributed import wait

    from orchestrator.dask_client import dask_client
    from orchestrator.monitoring.check import check_drift
    from orchestrator.monitoring.counts import count_dask

    profile = _load_profile(folder)
    with dask_client(workers=workers) as client:
        layout = _layout(client)
        started = time.perf_counter()
        frame = client.persist(dd.read_parquet(folder / "current.parquet", split_row_groups=True))
        wait(frame)
        read_s = time.perf_counter() - started
        started = time.perf_counter()
        counts = count_dask(profile, frame, client)
        counted = time.perf_counter()
        result = check_drift(profile, counts)
        finished = time.perf_counter()
        peak = _cluster_peak(client)
        partitions = frame.npartitions
    return {"read_s": read_s, "count_s": counted - started, "stats_s": finished - counted,
            "check_s": finished - started, "peak_bytes": peak, "partitions": partitions, "layout": layout,
            **_verdicts(result)}


def _task_seconds(tasks: list[dict]) -> dict[str, float]:
    """Seconds the workers' threads spent computing, per kind of task (``read_parquet``, ``count_window``)."""
    seconds: dict[str, float] = {}
    for task in tasks:
        key = task["key"][0] if isinstance(task["key"], tuple) else task["key"]
        kind = str(key).split("-")[0]
        spent = sum(s["stop"] - s["start"] for s in task["startstops"] if s["action"] == "compute")
        seconds[kind] = seconds.get(kind, 0.0) + spent
    return seconds


def _layout(client) -> str:
    threads = client.nthreads()
    return f"{len(threads)} worker(s) x {next(iter(threads.values()))} thread(s)"


def side_big(workers: int | None) -> dict:
    """The 10M x 100 window counted through Dask, reading the Parquet partitions included."""
    import dask.dataframe as dd
    from distributed import get_task_stream

    from orchestrator.dask_client import dask_client
    from orchestrator.monitoring.check import check_drift
    from orchestrator.monitoring.counts import count_dask

    profile = _load_profile(BIG)
    with dask_client(workers=workers) as client:
        layout = _layout(client)
        started = time.perf_counter()
        frame = dd.read_parquet(BIG / "current")
        with get_task_stream(client) as stream:
            counts = count_dask(profile, frame, client)
        counted = time.perf_counter()
        result = check_drift(profile, counts)
        finished = time.perf_counter()
        peak = _cluster_peak(client)
        partitions, threads = frame.npartitions, sum(client.nthreads().values())
    return {"count_s": counted - started, "stats_s": finished - counted, "check_s": finished - started,
            "rows": counts.rows, "task_s": _task_seconds(stream.data), "threads": threads, "peak_bytes": peak,
            "partitions": partitions, "layout": layout,
            "dataset": result.verdict, "drifted": result.drifted}


def side_evidently(folder: Path) -> dict:
    """Evidently's DataDriftPreset with its defaults (run with Evidently's own interpreter)."""
    import pandas as pd
    from evidently import Report
    from evidently.presets import DataDriftPreset

    started = time.perf_counter()
    reference = pd.read_parquet(folder / "reference.parquet")
    current = pd.read_parquet(folder / "current.parquet")
    read_s = time.perf_counter() - started
    started = time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(current_data=current, reference_data=reference)
    check_s = time.perf_counter() - started
    peak = peak_memory_bytes()
    return {"read_s": read_s, "check_s": check_s, "peak_bytes": peak, **evidently_verdicts(snapshot.dict())}


def evidently_verdicts(snapshot: dict) -> dict:
    """Per-column drift flags from a snapshot's ``ValueDrift`` metrics.

    For the methods DataDriftPreset picks on large samples (normed Wasserstein, Jensen–Shannon), Evidently flags a
    column when its score reaches the threshold; the flags are checked against its own ``DriftedColumnsCount``.
    """
    columns, counted = {}, None
    for metric in snapshot["metrics"]:
        config = metric["config"]
        if config["type"].endswith(":ValueDrift"):
            value, threshold = float(metric["value"]), float(config["threshold"])
            columns[config["column"]] = {"drifted": value >= threshold, "method": config["method"],
                                         "value": value, "threshold": threshold}
        elif config["type"].endswith(":DriftedColumnsCount"):
            counted = metric["value"]
    flagged = sum(c["drifted"] for c in columns.values())
    if counted is not None and int(counted["count"]) != flagged:
        raise SystemExit(f"evidently: {flagged} columns flagged by score, but its DriftedColumnsCount says "
                         f"{counted['count']}")
    share = counted["share"] if counted else flagged / max(1, len(columns))
    return {"columns": columns, "dataset_drift": share >= 0.5, "drifted_share": share}


def once(side: str, workers: int | None) -> dict:
    numeric, categorical = big_names()
    if side == "profile":
        return side_profile(DATA, NUMERIC, CATEGORICAL)
    if side == "big-profile":
        return side_profile(BIG, numeric, categorical)
    if side == "pandas":
        return side_pandas(DATA)
    if side == "dask":
        return side_dask(DATA, workers)
    if side == "big":
        return side_big(workers)
    return side_evidently(DATA)


# ---------------------------------------------------------------- the harness

def measure(side: str, workers: int | None = None) -> dict:
    """Run one side in a child process of its own and return what it printed (its last line, JSON)."""
    if side == "evidently":
        # -P: nothing of this checkout (bench/ holds modules named like packages) shadows Evidently's imports.
        command, env = [str(EVIDENTLY_PYTHON), "-P"], dict(os.environ)
    else:
        command, env = [sys.executable], {**os.environ, "PYTHONPATH": str(ROOT)}
    command += [str(Path(__file__).resolve()), "--once", side]
    if workers:
        command += ["--workers", str(workers)]
    child = subprocess.run(command, check=False, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    if child.returncode:
        raise SystemExit(f"the {side} side failed with exit code {child.returncode}")
    return json.loads(child.stdout.strip().splitlines()[-1])


def install_evidently() -> None:
    """Evidently in a virtualenv of its own, so that it never changes the project's versions (it needs pandas<3)."""
    installed = EVIDENTLY_VENV / "installed"
    if installed.exists():
        return
    print(f"installing Evidently into {EVIDENTLY_VENV.relative_to(ROOT)} (once)", flush=True)
    if not EVIDENTLY_PYTHON.exists():
        subprocess.run([sys.executable, "-m", "venv", str(EVIDENTLY_VENV)], check=True)
    subprocess.run([str(EVIDENTLY_VENV / "bin" / "pip"), "install", "--quiet", *EVIDENTLY_REQUIREMENTS], check=True)
    installed.write_text("\n".join(EVIDENTLY_REQUIREMENTS) + "\n")  # a failed install is retried next time


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")


def _spread(values, unit: str = "s", digits: int = 3) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.{digits}f} {unit} ({min(values):.{digits}f}..{max(values):.{digits}f})"


def _gb(value: float) -> str:
    return f"{value / 1e9:.2f} GB"


def run_comparison(args) -> None:
    make_data()
    with_evidently = not args.skip_evidently and EVIDENTLY_PYTHON.exists()
    if not args.skip_evidently and not with_evidently:
        print("evidently: no virtualenv at bench/.data/evidently-venv (run with --install-evidently); skipped")
    print(f"data: {DATA.relative_to(ROOT)} ({ROWS:,} + {ROWS:,} rows, {len(NUMERIC)} numeric + {len(CATEGORICAL)} "
          f"categorical features); {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}", flush=True)
    runs: dict[str, list[dict]] = {"profile": [], "pandas": [], "dask": [], "evidently": []}
    for round_index in range(args.rounds):
        sides = ["profile", "pandas", "dask"]
        if with_evidently and round_index < args.evidently_rounds:
            sides.append("evidently")
        if round_index % 2:
            sides = sides[:1] + sides[1:][::-1]  # the profile first (the checks read it), the rest alternate
        for side in sides:
            figures = measure(side, args.workers)
            runs[side].append(figures)
            timed = figures.get("profile_s", figures.get("check_s"))
            print(f"round {round_index + 1} {side:9s} {timed:8.3f} s  peak {_gb(figures['peak_bytes'])}"
                  + (f"  ({figures['layout']}, {figures['partitions']} partitions)" if side == "dask" else ""),
                  flush=True)
    report(runs, with_evidently)


def _med(runs: list[dict], key: str) -> float:
    return _median([r[key] for r in runs])


def report(runs: dict[str, list[dict]], with_evidently: bool) -> None:
    profile, pandas_runs, dask_runs, evidently = (runs[k] for k in ("profile", "pandas", "dask", "evidently"))
    print("\n| side | timed part | wall (median, min..max) | peak memory (median) | not timed: reading Parquet |")
    print("|---|---|---|---|---|")
    rows = [("dataops profile (once, at training)", "build_profile on the reference", profile, "profile_s", 3, "", ""),
            ("dataops pandas", "count_window + check_drift", pandas_runs, "check_s", 3, "", ""),
            (f"dataops dask ({dask_runs[0]['layout']})", "count_dask + check_drift", dask_runs, "check_s", 3,
             " (client + scheduler + workers)", " (read + persist)")]
    if evidently:
        rows.append(("evidently 0.7.23", "Report([DataDriftPreset()]).run", evidently, "check_s", 1, "", ""))
    for side, timed, side_runs, key, digits, memory_note, read_note in rows:
        print(f"| {side} | {timed} | {_spread([r[key] for r in side_runs], digits=digits)} | "
              f"{_gb(_med(side_runs, 'peak_bytes'))}{memory_note} | {_med(side_runs, 'read_s'):.2f} s{read_note} |")

    print(f"\ndataops pandas check, median breakdown: counting {_med(pandas_runs, 'count_s'):.3f} s (numeric "
          f"columns {_med(pandas_runs, 'numeric_count_s'):.3f} s, categorical "
          f"{_med(pandas_runs, 'categorical_count_s'):.3f} s), statistics {_med(pandas_runs, 'stats_s'):.3f} s")
    throughput = _median([r["frozen_values"] / r["frozen_s"] for r in pandas_runs])
    print(f"counting on frozen edges (count_numeric on float64 arrays, one thread): {throughput / 1e6:.1f}M values/s "
          f"per core (goal >= {GOAL_VALUES_PER_CORE / 1e6:.0f}M: "
          f"{'met' if throughput >= GOAL_VALUES_PER_CORE else 'NOT met'})")

    print("\n| feature | shifted | dataops verdict (statistic) | evidently (method: score) | agree |")
    print("|---|---|---|---|---|")
    first, agree = pandas_runs[0], 0
    for name in NUMERIC + CATEGORICAL:
        ours = first["columns"][name]
        theirs, same = "-", None
        if evidently:
            column = evidently[0]["columns"][name]
            theirs = f"{'drift' if column['drifted'] else 'no drift'} ({column['method']}: {column['value']:.3f})"
            same = (ours["verdict"] == "drift") == column["drifted"]
            agree += same
        print(f"| {name} | {'yes' if name in SHIFTED else ''} | {ours['verdict']} ({ours['statistic']} "
              f"{ours['value']:.3f}) | {theirs} | {'-' if same is None else ('yes' if same else 'NO')} |")
    same_everywhere = all(r["columns"] == first["columns"] for r in dask_runs + pandas_runs)
    print(f"dataops pandas and dask give the same figures in every round: {same_everywhere}")
    total = len(NUMERIC) + len(CATEGORICAL)
    print(f"dataops dataset verdict: {first['dataset']} (drifted: {', '.join(first['drifted']) or 'none'}, "
          f"{len(first['drifted'])} of {total} features; the default drift share is 50%)")
    if not evidently:
        return
    print(f"evidently dataset drift: {evidently[0]['dataset_drift']} "
          f"(share drifted {evidently[0]['drifted_share']:.2f})")
    print(f"per-feature verdicts agree: {agree} of {total}")

    # Evidently usually runs in fewer rounds than this project: a ratio of medians, not of per-round pairs.
    def ratio(ours: list[dict], key: str) -> float:
        return _med(evidently, key) / _med(ours, key)

    speedup, memory = ratio(pandas_runs, "check_s"), ratio(pandas_runs, "peak_bytes")
    print(f"\nratio evidently / dataops (of the medians): wall {speedup:.0f}x (pandas), "
          f"{ratio(dask_runs, 'check_s'):.0f}x (dask); peak memory {memory:.1f}x (pandas), "
          f"{ratio(dask_runs, 'peak_bytes'):.1f}x (dask)")
    met = speedup >= GOAL_SPEEDUP and agree == total and memory > 1.0
    print(f"goal (>= {GOAL_SPEEDUP:.0f}x faster, same verdicts, less memory): {'met' if met else 'NOT met'}")


def run_big(args) -> None:
    make_big_data()
    if not (BIG / "profile.json").exists():
        figures = measure("big-profile")
        print(f"big reference profile: {figures['profile_s']:.1f} s (1M rows)", flush=True)
    numeric, categorical = big_names()
    runs = []
    for round_index in range(args.big_rounds):
        figures = measure("big", args.workers)
        runs.append(figures)
        print(f"big round {round_index + 1}: {figures['check_s']:.1f} s ({figures['layout']}, "
              f"{figures['partitions']} partitions), peak {_gb(figures['peak_bytes'])}", flush=True)
    wall, rows = _med(runs, "check_s"), runs[0]["rows"]
    print(f"\n10M x 100 through Dask (read_parquet + count_dask + check_drift): "
          f"{_spread([r['check_s'] for r in runs], digits=1)}; {rows / wall / 1e6:.2f}M rows/s, "
          f"{rows * (len(numeric) + len(categorical)) / wall / 1e6:.0f}M values/s; statistics "
          f"{_med(runs, 'stats_s'):.2f} s; peak {_gb(_med(runs, 'peak_bytes'))} (client + scheduler + workers)")
    tasks = {kind: _median([r["task_s"].get(kind) for r in runs]) for kind in runs[0]["task_s"]}
    print("worker thread-seconds computing: " + ", ".join(f"{kind} {s:.1f} s" for kind, s in sorted(tasks.items()))
          + f" (of {_med(runs, 'count_s') * runs[0]['threads']:.1f} thread-seconds of wall)")
    print(f"verdict {runs[0]['dataset']}, drifted: {', '.join(runs[0]['drifted']) or 'none'} "
          f"(shifted: {', '.join(sorted(BIG_SHIFTED))})")
    print(f"goal (under {GOAL_BIG_S:.0f} s on this {os.cpu_count()}-core machine): "
          f"{'met' if wall < GOAL_BIG_S else 'NOT met'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench drift", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of this project's sides (default 3)")
    parser.add_argument("--evidently-rounds", type=int, default=1,
                        help="rounds that also run Evidently (about 2 minutes each; default 1)")
    parser.add_argument("--install-evidently", action="store_true",
                        help=f"create {EVIDENTLY_VENV.relative_to(ROOT)} with Evidently first")
    parser.add_argument("--skip-evidently", action="store_true", help="measure this project alone")
    parser.add_argument("--big", action="store_true", help="also the 10M-row x 100-feature window through Dask")
    parser.add_argument("--big-only", action="store_true", help="only the 10M-row x 100-feature window")
    parser.add_argument("--big-rounds", type=int, default=1, help="rounds of the big window (default 1)")
    parser.add_argument("--workers", type=int, help="LocalCluster worker processes (default: dask_client's)")
    parser.add_argument("--once", choices=["profile", "pandas", "dask", "evidently", "big-profile", "big"],
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.once:
        # numpy scalars (a library's figures) print as the plain numbers they hold
        print(json.dumps(once(args.once, args.workers), default=lambda value: value.item()))
        return 0
    if args.install_evidently and not args.skip_evidently:
        install_evidently()
    if not args.big_only:
        run_comparison(args)
    if args.big or args.big_only:
        print()
        run_big(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
