"""``dataops model list|show|promote|rollback|compare``: the model registry from the command line."""

from __future__ import annotations

from typing import Optional

import typer
from rich.table import Table

from orchestrator.artifacts.open import open_store
from orchestrator.cli.console import emit_json, err, out
from orchestrator.cli.options import StoreOption
from orchestrator.config import setting
from orchestrator.registry.models import STAGES, ModelRegistry, compare_cards

model_app = typer.Typer(help="List, inspect, promote, roll back and compare registered models.", no_args_is_help=True)

JsonOption = typer.Option(False, "--json", help="Print JSON on stdout instead of a table.")


def _registry(store: str | None) -> ModelRegistry:
    return ModelRegistry(open_store(setting("store", store)))


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "" if value is None else str(value)


@model_app.command("list")
def list_models(store: Optional[str] = StoreOption, as_json: bool = JsonOption) -> None:
    """List every registered model version with its stages and headline metrics."""
    rows = _registry(store).list()
    if as_json:
        emit_json(rows)
        return
    if not rows:
        err.print("No models registered.")
        return
    table = Table("name", "version", "stages", "estimator", "metrics", "parity", "created")
    for row in rows:
        metrics = ", ".join(f"{k} {_fmt(v)}" for k, v in row["metrics"].items())
        table.add_row(row["name"], str(row["version"]), ",".join(row["stages"]), row["estimator"] or "",
                      metrics, "ok" if row["parity_passed"] else "FAILED", row["created_at"] or "")
    out.print(table)


@model_app.command("show")
def show(
    ref: str = typer.Argument(..., help="NAME, NAME:VERSION or NAME@STAGE."),
    store: Optional[str] = StoreOption,
    as_json: bool = JsonOption,
) -> None:
    """Print a model's card: metrics, parity result, lineage, inputs and outputs, and its latest drift verdict."""
    from orchestrator.usecases.drift_verdict import latest_drift_verdict

    registry = _registry(store)
    card = registry.card(ref)
    verdict = latest_drift_verdict(registry.store, card["name"], card["version"])
    if as_json:
        emit_json({**card, "latest_drift": verdict.as_dict() if verdict else None})
        return
    from orchestrator.ml.card import render_markdown

    stages = f" [{', '.join(card['stages'])}]" if card.get("stages") else ""
    err.print(f"{card['name']}:{card['version']}{stages}")
    out.print(render_markdown(card), markup=False)
    out.print(_drift_section(verdict, f"{card['name']}:{card['version']}"), markup=False)
    from orchestrator.usecases.watch_history import model_loop_mention

    if mention := model_loop_mention(registry.store, card):
        out.print(f"## Made by the closed loop\n\n{mention}\n", markup=False)


def _drift_section(verdict, ref: str) -> str:
    """The latest drift verdict, in the card's Markdown."""
    lines = ["## Latest drift check", ""]
    if verdict is None:
        lines.append(f"Never checked (`dataops drift check {ref}`).")
        return "\n".join(lines) + "\n"
    rows = f" on {verdict.rows:,} rows" if verdict.rows is not None else ""
    when = verdict.checked_at or "at an unknown time"
    lines.append(f"- verdict: {verdict.verdict.replace('_', ' ')}{rows}, checked {when} (check {verdict.check_id})")
    lines.append(f"- drifted columns: {', '.join(verdict.drifted) if verdict.drifted else 'none'}")
    lines += [f"- why: {reason}" for reason in verdict.reasons]
    return "\n".join(lines) + "\n"


@model_app.command("promote")
def promote(
    ref: str = typer.Argument(..., help="NAME:VERSION (or NAME@STAGE) to promote."),
    to: str = typer.Option(..., "--to", help=f"Stage: {' | '.join(STAGES)}."),
    store: Optional[str] = StoreOption,
) -> None:
    """Point a stage (production or staging) at a version."""
    registry = _registry(store)
    name, version = registry.resolve(ref)
    registry.promote(f"{name}:{version}", to)
    err.print(f"{name}:{version} is now {to}.")


@model_app.command("rollback")
def rollback(
    name: str = typer.Argument(..., help="Model name."),
    stage: str = typer.Option("production", "--stage", help=f"Stage: {' | '.join(STAGES)}."),
    store: Optional[str] = StoreOption,
) -> None:
    """Put a stage back on the version it had before its last promotion."""
    stages = _registry(store).rollback(name, stage)
    err.print(f"{name}: {stage} rolled back to version {stages[stage]}.")


@model_app.command("compare")
def compare(
    left: str = typer.Argument(..., help="First model, NAME:VERSION."),
    right: str = typer.Argument(..., help="Second model, NAME:VERSION."),
    store: Optional[str] = StoreOption,
    as_json: bool = JsonOption,
) -> None:
    """Show how two model versions differ: metrics (with deltas), parameters, training data, parity."""
    registry = _registry(store)
    diff = compare_cards(registry.card(left), registry.card(right))
    if as_json:
        emit_json(diff)
        return
    table = Table("metric", diff["left"], diff["right"], "delta", title="Metrics (test partition)")
    for key, values in diff["metrics"].items():
        table.add_row(key, _fmt(values["left"]), _fmt(values["right"]), _fmt(values["delta"]))
    out.print(table)
    if diff["params"]:
        params = Table("parameter", diff["left"], diff["right"], title="Parameters that differ")
        for key, values in diff["params"].items():
            params.add_row(key, _fmt(values["left"]), _fmt(values["right"]))
        out.print(params)
    else:
        out.print("Same estimator parameters.")
    out.print("Same training data." if diff["same_training_data"] else "Different training data.")


def register(app: typer.Typer) -> None:
    """Add the ``model`` command group to the root app."""
    app.add_typer(model_app, name="model")
