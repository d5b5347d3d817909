"""Entry point: one Typer app per command group, and the single handler that turns a DataopsError
into ``Error: ...`` on stderr and the error's exit code (any other exception into its traceback and exit code 1),
with the credentials a message may quote taken out."""

from __future__ import annotations

import traceback

import typer
from typer.core import TyperGroup
from typer.exceptions import TyperException

from orchestrator import __version__
from orchestrator.cli.console import err
from orchestrator.cli.redact import redacted
from orchestrator.errors import DataopsError


class _DataopsGroup(TyperGroup):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except DataopsError as exc:
            err.print(f"Error: {redacted(str(exc))}", markup=False)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            err.print("Interrupted: completed stages are cached; run the same command again to resume.")
            ctx.exit(130)
        except (typer.Exit, typer.Abort, TyperException):  # --help, usage errors, typer.Exit(code): typer's own
            raise
        except Exception as exc:  # a bug or a library's own error: its traceback, minus any credential it quotes
            trace = "".join(traceback.format_exception(exc))
            err.print(redacted(trace).rstrip(), markup=False, highlight=False)
            err.print(f"Error: unexpected {type(exc).__name__}: {redacted(str(exc))}", markup=False)
            ctx.exit(1)


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
