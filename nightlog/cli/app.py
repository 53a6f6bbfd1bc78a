"""The root ``nightlog`` command: global options, sub-apps, one-line errors.

Sub-commands are registered in :data:`COMMANDS` by name and module and imported
only when run (see :mod:`nightlog.cli.lazy`): a new sub-app is one line there.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from nightlog import __version__
from nightlog.cli.lazy import LazyCommand, LazyGroup
from nightlog.cli.state import state_of
from nightlog.errors import CatalogueError, NightlogError
from nightlog.redaction import redact_text

__all__ = ["app", "main"]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return redact_text(text.splitlines()[0]) if text else type(exc).__name__


def _is_driver_error(exc: BaseException) -> bool:
    # SQLAlchemy is imported by the commands that use a catalogue; before that no
    # exception can be one of its errors.
    sa_exc = sys.modules.get("sqlalchemy.exc")
    return sa_exc is not None and isinstance(exc, sa_exc.SQLAlchemyError)


#: Every sub-command, in the order ``--help`` lists them.
COMMANDS: tuple[LazyCommand, ...] = (
    LazyCommand("db", "nightlog.cli.db",
                "Create, upgrade and inspect the catalogue database schema; refresh its "
                "planner statistics."),
    LazyCommand("calib", "nightlog.cli.calib",
                "Build, list, inspect, mark and certify master calibrations."),
    LazyCommand("config", "nightlog.cli.config",
                "Show the effective configuration and check it."),
    LazyCommand("profile", "nightlog.cli.profile",
                "List the instrument profiles and check which one a file gets, and what it "
                "makes of it."),
    LazyCommand("match", "nightlog.cli.match",
                "Show the masters chosen for a frame and every candidate's rules, pass or fail."),
    LazyCommand("reduce", "nightlog.cli.reduce",
                "Reduce science frames: overscan, trim, bias, dark, flat, cosmic rays, mask, "
                "noise."),
    LazyCommand("report", "nightlog.cli.report",
                "Write the night report: counts, masters against their history, every science "
                "frame before and after reduction, failures and quarantine, as one HTML page "
                "that opens offline."),
    LazyCommand("provenance", "nightlog.cli.provenance",
                "Show what a product was made from: raw frame, each master, each master's "
                "frames."),
    LazyCommand("ingest", "nightlog.cli.ingest",
                "Catalogue raw frames: normalise their headers, record bad files in "
                "quarantine."),
    LazyCommand("watch", "nightlog.cli.watch",
                "Ingest files as they arrive, build the masters that become due, and "
                "quick-look science frames."),
    LazyCommand("status", "nightlog.cli.status",
                "Show the watch daemons (running or not, since when, last action, backlog) "
                "and the counts of tonight: frames per kind, masters, products, quarantined "
                "files, the reduction problems (frames reduced without a step, held or "
                "stopped for want of a master, failed); and the open detector-health "
                "alarms."),
    LazyCommand("plan", "nightlog.cli.plan",
                "List tonight's set-ups against the masters that would serve them (exact, "
                "another night, scale-only, missing), and what to take at dawn."),
    LazyCommand("notify", "nightlog.cli.notify",
                "Send the pending notifications to the configured webhooks and mail relay "
                "now."),
    LazyCommand("serve", "nightlog.cli.serve",
                "Serve a live, read-only web view of tonight: frames as they arrive, "
                "masters, problems, quarantine, the daemon's state; older nights and each "
                "frame's provenance."),
    LazyCommand("frames", "nightlog.cli.frames",
                "List catalogued frames, filtered by night, kind, filter, instrument, "
                "exposure, time, quality; or a night's reduction problems."),
    LazyCommand("quality", "nightlog.cli.quality",
                "Judge the science frames' quality records with the quality rules: what a "
                "rule marks poor, before it is saved."),
    LazyCommand("nights", "nightlog.cli.nights",
                "Count frames per night, kind, filter and exposure time."),
    LazyCommand("quarantine", "nightlog.cli.quarantine",
                "List files that could not be ingested, with the reason and when they were "
                "seen."),
    LazyCommand("simulate", "nightlog.cli.simulate",
                "Write a seeded, realistic night of raw frames, with the truth used to make "
                "them."),
    LazyCommand("demo", "nightlog.cli.demo",
                "Simulate a night, catalogue it, build its masters, reduce it and write the "
                "night report, in a new SQLite archive."),
)


class NightlogGroup(LazyGroup):
    """Turns any :class:`NightlogError`, and a catalogue the driver cannot reach or
    use, into one clear line (any database password shown as ``***``) and an exit
    code."""

    lazy_commands = COMMANDS

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except NightlogError as exc:
            typer.echo(f"error: {_first_line(exc)}", err=True)
            raise typer.Exit(code=exc.exit_code) from None
        except Exception as exc:
            if not _is_driver_error(exc):
                raise
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
    add_completion=True,
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


def main() -> None:
    """Run the app on ``sys.argv`` (the console script is :func:`nightlog.cli.entry.main`,
    which answers ``--version`` without importing this module)."""
    app()
