"""``dataops deploy | undeploy | rollback | endpoints``: registered models on inference endpoints on OpenStack."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from orchestrator.cli.cluster import _progress, open_cloud
from orchestrator.cli.console import emit_json, err, out
from orchestrator.cli.options import StoreOption
from orchestrator.config import setting

endpoints_app = typer.Typer(help="List and inspect inference endpoints.", no_args_is_help=True)


def deploy(
    ref: str = typer.Argument(..., help="Model: NAME, NAME:VERSION or NAME@STAGE."),
    endpoint: str = typer.Option(..., "--endpoint", "-e", help="Endpoint name."),
    file: Optional[Path] = typer.Option(None, "-f", "--file", help="Endpoint file (required the first time)."),
    store: Optional[str] = StoreOption,
) -> None:
    """Deploy a registered model to an endpoint, node by node; create the endpoint the first time."""
    from orchestrator.artifacts.open import open_store
    from orchestrator.deploy.rollout import deploy as deploy_model
    from orchestrator.deploy.spec import load_endpoint_spec
    from orchestrator.deploy.state import endpoint_state

    state = endpoint_state(endpoint)
    if file is not None:
        spec = load_endpoint_spec(file, {"name": endpoint})
    elif state.exists():
        spec = state.spec()
    else:
        raise typer.BadParameter(f"endpoint {endpoint} does not exist yet: give its file with -f", param_hint="-f")
    record = deploy_model(ref, spec, open_store(setting("store", store)), open_cloud(spec.cloud), _progress())
    err.print(f"{record['model']}:{record['version']} serves on {endpoint} "
              f"({len(record['nodes'])} nodes, {record['seconds']} s).", markup=False)


def undeploy(endpoint: str = typer.Argument(..., help="Endpoint name.")) -> None:
    """Delete an endpoint and everything tagged with it; undeploying an absent endpoint succeeds."""
    from orchestrator.deploy.rollout import undeploy as undeploy_endpoint
    from orchestrator.deploy.state import endpoint_state

    state = endpoint_state(endpoint)
    cloud_name = state.spec().cloud if state.exists() else None
    for leftover in undeploy_endpoint(endpoint, open_cloud(cloud_name)):
        err.print(f"  swept {leftover.kind} {leftover.id}", markup=False)
    err.print(f"Endpoint {endpoint} deleted.", markup=False)


def rollback(endpoint: str = typer.Argument(..., help="Endpoint name."), store: Optional[str] = StoreOption) -> None:
    """Serve again the model version the endpoint served before its current one."""
    from orchestrator.artifacts.open import open_store
    from orchestrator.deploy.rollout import rollback as rollback_endpoint
    from orchestrator.deploy.state import endpoint_state

    spec = endpoint_state(endpoint).spec()
    record = rollback_endpoint(endpoint, open_store(setting("store", store)), open_cloud(spec.cloud), progress=_progress())
    err.print(f"{endpoint} serves {record['model']}:{record['version']} again.", markup=False)


@endpoints_app.command("list")
def list_endpoints(as_json: bool = typer.Option(False, "--json", help="Print JSON on stdout.")) -> None:
    """List the endpoints known on this machine with the model version each serves."""
    from orchestrator.deploy.state import known_endpoints

    rows = []
    for state in known_endpoints():
        record, serving = state.load(), state.serving()
        rows.append({"name": state.name, "serving": f"{serving['model']}:{serving['version']}" if serving else None,
                     "nodes": len(record.get("outputs", {}).get("nodes") or []),
                     "urls": record.get("outputs", {}).get("endpoint_urls") or []})
    if as_json:
        emit_json(rows)
        return
    table = Table("endpoint", "serving", "nodes", "urls")
    for row in rows:
        table.add_row(row["name"], row["serving"] or "-", str(row["nodes"]), " ".join(row["urls"]))
    out.print(table)


@endpoints_app.command("show")
def show(endpoint: str = typer.Argument(..., help="Endpoint name."),
         as_json: bool = typer.Option(False, "--json", help="Print JSON on stdout.")) -> None:
    """Show an endpoint: the version each node serves, its health and request count, and the deploy history."""
    from orchestrator.deploy.rollout import endpoint_status

    status = endpoint_status(endpoint)
    if as_json:
        emit_json(status)
        return
    table = Table("node", "ready", "versions", "requests", "requests/s")
    for node in status["nodes"]:
        table.add_row(node["url"], str(node.get("ready", "?")), ",".join(node.get("versions", [])),
                      str(node.get("requests", "?")), str(node.get("requests_per_s", "?")))
    out.print(table)
    history = Table("deployed at", "by", "model", "run", "status")
    for entry in status["history"]:
        history.add_row(entry["deployed_at"], entry["deployed_by"], f"{entry['model']}:{entry['version']}",
                        str(entry.get("run_id") or "-"), entry["status"])
    out.print(history)


def register(app: typer.Typer) -> None:
    app.command("deploy")(deploy)
    app.command("undeploy")(undeploy)
    app.command("rollback")(rollback)
    app.add_typer(endpoints_app, name="endpoints")
