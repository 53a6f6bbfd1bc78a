"""The root ``nightlog`` command: global options, sub-apps, one-line errors."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy.exc import SQLAlchemyError
from typer.core import TyperGroup

from nightlog import __version__
from nightlog.cli import (
    calib,
    config,
    db,
    demo,
    frames,
    ingest,
    match,
    nights,
    provenance,
    quarantine,
    reduce,
    report,
    simulate,
    status,
    watch,
)
from nightlog.cli.state import state_of
from nightlog.errors import CatalogueError, NightlogError
from nightlog.redaction import redact_text

__all__ = ["app", "main"]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return redact_text(text.splitlines()[0]) if text else type(exc).__name__


class NightlogGroup(TyperGroup):
    """Turns any :class:`NightlogError`, and a catalogue the driver cannot reach or
    use, into one clear line (any database password shown as ``***``) and an exit
    code."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except NightlogError as exc:
            typer.echo(f"error: {_first_line(exc)}", err=True)
            raise typer.Exit(code=exc.exit_code) from None
        except SQLAlchemyError as exc:
            # A driver's message (the server down, a lock held too long) is shown
            # without its traceback; its first line says what happened.
            origin = getattr(exc, "orig", None) or exc
            typer.echo(f"error: catalogue: {_first_line(origin)}", err=True)
            raise typer.Exit(code=CatalogueError.exit_code) from None


app = typer.Typer(
    cls=NightlogGroup,
    name="nightlog",
    help="Calibration database and observing-night archive manager.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"nightlog {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="Configuration file (default: $NIGHTLOG_CONFIG, "
                     "then ./nightlog.toml, then built-in defaults).",
                     dir_okay=False, show_default=False),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True,
                           help="Print the version and exit.")
    ] = False,
) -> None:
    """Calibration database and observing-night archive manager."""
    state = state_of(ctx)
    state.config_path = config
    ctx.call_on_close(state.close)


app.add_typer(db.app, name="db")
app.add_typer(calib.app, name="calib")
app.add_typer(config.app, name="config")
app.add_typer(match.app)
app.add_typer(reduce.app)
app.add_typer(report.app)
app.add_typer(provenance.app)
app.add_typer(ingest.app)
app.add_typer(watch.app)
app.add_typer(status.app)
app.add_typer(frames.app)
app.add_typer(nights.app)
app.add_typer(quarantine.app)
app.add_typer(simulate.app)
app.add_typer(demo.app)


def main() -> None:
    """Console-script entry point."""
    app()
