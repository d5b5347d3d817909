"""PNG plots of comparisons (matplotlib, Agg: no display needed): an experiment's metric against each of its
parameters, one panel per parameter, the best point marked; a schedule's metric over its slots."""

from __future__ import annotations

import io
import math
from datetime import datetime
from typing import Any

from orchestrator.experiments.compare import Comparison, ScheduleSeries


def _figure(panels: int):
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and in tests
    import matplotlib.pyplot as plt

    columns = min(panels, 3)
    rows = math.ceil(panels / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.4 * rows), squeeze=False)
    for extra in axes.flat[panels:]:
        extra.set_visible(False)
    return plt, figure, list(axes.flat[:panels])


def _png(plt, figure) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return buffer.getvalue()


def _numeric(values: list[Any]) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def comparison_png(comparison: Comparison) -> bytes:
    """The metric against each parameter (numbers on a numeric axis, logarithmic when they span two decades or
    more; anything else as categories), one panel per parameter, the best point in red.

    Returns:
        The PNG's bytes.
    """
    rows = [row for row in comparison.rows if row.value is not None]
    plt, figure, axes = _figure(max(1, len(comparison.parameters)))
    best = comparison.best
    for axis, name in zip(axes, comparison.parameters or ["point"]):
        xs = [row.parameters.get(name, row.point) if comparison.parameters else row.point for row in rows]
        ys = [row.value for row in rows]
        if not _numeric(xs):
            categories = list(dict.fromkeys(str(x) for x in xs))
            positions = [categories.index(str(x)) for x in xs]
            axis.set_xticks(range(len(categories)), categories, rotation=30, ha="right")
            xs = positions
        elif xs and min(xs) > 0 and max(xs) / min(xs) >= 100:
            axis.set_xscale("log")
        axis.scatter(xs, ys, color="tab:blue", zorder=2)
        if best is not None and rows:
            index = next(i for i, row in enumerate(rows) if row.point == best.point)
            axis.scatter([xs[index]], [ys[index]], color="tab:red", s=80, zorder=3, label=f"best: point {best.point}")
            axis.legend(fontsize=8)
        axis.set_xlabel(name)
        axis.set_ylabel(f"{comparison.metric.name} ({comparison.metric.direction})")
        axis.grid(alpha=0.3)
    figure.suptitle(f"{comparison.name}: {len(rows)} of {len(comparison.rows)} points", fontsize=10)
    return _png(plt, figure)


def schedule_png(series: ScheduleSeries) -> bytes:
    """The metric of a schedule's runs against the time each ran for (``as_of``).

    Returns:
        The PNG's bytes.
    """
    plt, figure, (axis,) = _figure(1)
    runs = [run for run in series.runs if run.value is not None]
    times = [datetime.fromisoformat(run.as_of) for run in runs]
    axis.plot(times, [run.value for run in runs], marker="o")
    axis.set_xlabel("as_of (UTC)")
    axis.set_ylabel(f"{series.metric.name} ({series.metric.direction})")
    axis.set_title(f"schedule {series.schedule}: {len(runs)} runs", fontsize=10)
    axis.grid(alpha=0.3)
    figure.autofmt_xdate()
    return _png(plt, figure)
