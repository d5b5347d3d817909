"""``dataops deploy | undeploy | rollback | endpoints``: registered models on inference endpoints on OpenStack."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from orchestrator.cli.console import emit_json, err, out
from orchestrator.cli.options import StoreOption
from orchestrator.cli.progress import console_progress
from orchestrator.cli.timeouts import stack_timeout_s, timeout_option
from orchestrator.config import setting

endpoints_app = typer.Typer(help="List and inspect inference endpoints.", no_args_is_help=True)


def deploy(
    ref: str = typer.Argument(..., help="Model: NAME, NAME:VERSION or NAME@STAGE."),
    endpoint: str = typer.Option(..., "--endpoint", "-e", help="Endpoint name."),
    file: Optional[Path] = typer.Option(None, "-f", "--file", help="Endpoint file (required the first time)."),
    store: Optional[str] = StoreOption,
    timeout: Optional[str] = timeout_option("stack_timeout"),
) -> None:
    """Deploy a registered model to an endpoint, node by node; create the endpoint the first time."""
    from orchestrator.usecases.deploy import EndpointFileNeeded, deploy_model

    try:
        record = deploy_model(ref, endpoint, file, setting("store", store), console_progress(),
                              stack_timeout_s("stack_timeout", timeout))
    except EndpointFileNeeded as exc:
        raise typer.BadParameter(str(exc), param_hint="-f") from exc
    err.print(f"{record['model']}:{record['version']} serves on {endpoint} "
              f"({len(record['nodes'])} nodes, {record['seconds']} s).", markup=False)


def undeploy(endpoint: str = typer.Argument(..., help="Endpoint name."),
             timeout: Optional[str] = timeout_option("stack_delete_timeout")) -> None:
    """Delete an endpoint and everything tagged with it; undeploying an absent endpoint succeeds."""
    from orchestrator.usecases.deploy import undeploy_endpoint

    for leftover in undeploy_endpoint(endpoint, stack_timeout_s("stack_delete_timeout", timeout)):
        err.print(f"  swept {leftover.kind} {leftover.id}", markup=False)
    err.print(f"Endpoint {endpoint} deleted.", markup=False)


def rollback(endpoint: str = typer.Argument(..., help="Endpoint name."), store: Optional[str] = StoreOption,
             timeout: Optional[str] = timeout_option("stack_timeout")) -> None:
    """Serve again the model version the endpoint served before its current one."""
    from orchestrator.usecases.deploy import rollback_endpoint

    record = rollback_endpoint(endpoint, setting("store", store), console_progress(),
                               stack_timeout_s("stack_timeout", timeout))
    err.print(f"{endpoint} serves {record['model']}:{record['version']} again.", markup=False)


@endpoints_app.command("list")
def list_endpoints(as_json: bool = typer.Option(False, "--json", help="Print JSON on stdout.")) -> None:
    """List the endpoints known on this machine with the model version each serves."""
    from orchestrator.usecases.deploy import list_endpoints as endpoint_rows

    rows = endpoint_rows()
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
    """Show an endpoint: each node's versions, health and requests (over TLS, verified against the endpoint's CA),
    the deploy history, the latest drift verdict and the CA certificate's path."""
    from orchestrator.usecases.deploy import describe_endpoint

    status = describe_endpoint(endpoint)
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
    if status["serving"]:
        out.print(_drift_line(endpoint, status["serving"], status.get("drift")), markup=False)
    if line := _captures_line(status["history"]):
        out.print(line, markup=False)
    if status.get("ca_file"):
        out.print(f"CA certificate: {status['ca_file']} (curl --cacert {status['ca_file']} ...; "
                  f"dataops endpoints ca {endpoint} -o FILE copies it)", markup=False)
    else:
        out.print("Plain HTTP (insecure_http in the endpoint file): tokens and rows travel in the clear",
                  markup=False)


def _captures_line(history: list[dict]) -> str | None:
    """What the serving deploy captures, and until when its signed URL lets the nodes write."""
    done = [entry for entry in history if entry.get("status") == "succeeded"]
    captures = done[-1].get("captures") if done else None
    if not captures:
        return None
    lapse = datetime.fromisoformat(captures["url_expires"])
    line = f"Captures: {captures['rate']:.0%} of requests into {captures['store']}"
    if lapse <= datetime.now(timezone.utc):
        return f"{line}; its signed URL lapsed at {captures['url_expires']}: nothing is captured until a deploy"
    return f"{line}, through a signed URL valid until {captures['url_expires']} (each deploy signs a new one)"


@endpoints_app.command("ca")
def ca(endpoint: str = typer.Argument(..., help="Endpoint name."),
       output: Optional[Path] = typer.Option(None, "-o", "--output",
                                             help="Write the certificate to this file (default: print it).")) -> None:
    """Print (or write) the CA certificate clients verify the endpoint's servers against."""
    from orchestrator.usecases.deploy import endpoint_ca

    pem, path = endpoint_ca(endpoint, output)
    if output is None:
        out.print(pem, end="", markup=False)
    else:
        err.print(f"CA certificate of {endpoint} written to {path}", markup=False)


def _drift_line(endpoint: str, serving: dict, drift: dict | None) -> str:
    """The latest drift verdict of the served version, in one line."""
    served = f"{serving['model']}:{serving['version']}"
    if drift is None:
        return f"Drift of {served}: never checked (dataops drift check --endpoint {endpoint})"
    if drift.get("error"):
        return f"Drift of {served}: unknown ({drift['error']})"
    drifted = f", drifted: {', '.join(drift['drifted'])}" if drift.get("drifted") else ""
    return (f"Drift of {served}: {drift['verdict'].replace('_', ' ')}{drifted} "
            f"(checked {drift.get('checked_at') or '?'}, check {drift['check_id']})")


def register(app: typer.Typer) -> None:
    """Add ``deploy``, ``undeploy``, ``rollback`` and the ``endpoints`` group to the root app."""
    app.command("deploy")(deploy)
    app.command("undeploy")(undeploy)
    app.command("rollback")(rollback)
    app.add_typer(endpoints_app, name="endpoints")
