"""``nightlog watch``: the live-ingestion daemon."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from nightlog.cli.logs import LogFormat, configure_logging
from nightlog.cli.state import state_of
from nightlog.coordinator.context import JobContext
from nightlog.coordinator.ingest import IngestContext
from nightlog.coordinator.retry import Stopped
from nightlog.daemon.startup import wait_for_catalogue
from nightlog.daemon.watch import Watcher, WatchOptions

log = logging.getLogger("nightlog.watch")

app = typer.Typer()


@app.command("watch")
def watch_cmd(
    ctx: typer.Context,
    directories: Annotated[list[Path] | None, typer.Argument(
        help="Folders to follow recursively (default: \\[watch] directories of the "
             "configuration).", show_default=False)] = None,
    settle: Annotated[float | None, typer.Option(
        help="Seconds a file's size and time must stay unchanged before it is taken "
             "(default: \\[watch] settle_seconds, 2).", min=0.0, show_default=False)] = None,
    quicklook: Annotated[bool | None, typer.Option(
        "--quicklook/--no-quicklook", help="Quick-look reduction of each science frame "
        "(default: \\[watch] quicklook).", show_default=False)] = None,
    polling: Annotated[bool | None, typer.Option(
        "--polling/--events", help="Poll the folders (network shares without change "
        "events) instead of kernel events (default: \\[watch] polling).",
        show_default=False)] = None,
    log_format: Annotated[LogFormat, typer.Option(
        "--log-format", help="Log lines as plain text or JSON objects.")] = LogFormat.text,
) -> None:
    """Ingest files as they arrive, build the masters that become due, and quick-look
    science frames.

    At start, files that arrived while no daemon ran are caught up; a catalogue
    that is unreachable is waited for (retried with a backoff, each try logged).
    SIGINT and SIGTERM finish the chunk at hand, commit and exit 0; an abrupt end
    loses nothing, as the next start catches up.
    """
    configure_logging(log_format)
    state = state_of(ctx)
    settings = state.settings
    options = WatchOptions.from_settings(settings, directories or (), settle=settle,
                                         quicklook=quicklook, polling=polling)
    engine = state.engine(check_schema=False)
    stop = threading.Event()

    def _stop(_signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        wait_for_catalogue(engine, options, stop)
    except Stopped:
        log.warning("stopped before the catalogue was reachable",
                    extra={"event": "stopped-unreachable"})
        return
    watcher = Watcher(engine, IngestContext.from_settings(settings, incomplete_is_error=False),
                      JobContext.from_settings(settings), options, stop=stop)
    watcher.run()
