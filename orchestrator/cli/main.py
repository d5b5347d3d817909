"""Entry point: one Typer app per command group, and the single handler that turns a DataopsError
into ``Error: ...`` on stderr and the error's exit code."""

from __future__ import annotations

import typer
from typer.core import TyperGroup

from orchestrator import __version__
from orchestrator.cli.console import err
from orchestrator.errors import DataopsError


class _DataopsGroup(TyperGroup):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except DataopsError as exc:
            err.print(f"Error: {exc}", markup=False)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            err.print("Interrupted: completed stages are cached; run the same command again to resume.")
            ctx.exit(130)


app = typer.Typer(
    name="dataops",
    cls=_DataopsGroup,
    help="Run Dask data pipelines, train and serve ONNX models, and manage their clusters on OpenStack.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """Run Dask data pipelines, train and serve ONNX models, and manage their clusters on OpenStack."""


@app.command()
def version() -> None:
    """Print the dataops version."""
    typer.echo(__version__)


def _register_groups() -> None:
    from orchestrator.cli import schedule as schedule_commands
    from orchestrator.cli import artifacts, cluster, deploy, drift, experiment, model, predict, run, serve
    from orchestrator.cli import schema, watch

    run.register(app)
    model.register(app)
    predict.register(app)
    serve.register(app)
    artifacts.register(app)
    cluster.register(app)
    deploy.register(app)
    schedule_commands.register(app)
    drift.register(app)
    experiment.register(app)
    watch.register(app)
    schema.register(app)


_register_groups()


def main() -> None:
    app()
