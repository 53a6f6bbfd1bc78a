"""``nightlog report``: the night report, one self-contained HTML page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nightlog.cli.options import parse_date
from nightlog.cli.state import state_of
from nightlog.coordinator.context import JobContext
from nightlog.coordinator.night_report import run_report

app = typer.Typer()


@app.command("report")
def report_cmd(
    ctx: typer.Context,
    night: Annotated[str | None, typer.Option(help="Night (YYYY-MM-DD); default the "
                                              "latest night in the catalogue.")] = None,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", dir_okay=False, show_default=False,
        help="Where to write the page (default: <archive>/reports/<night>.html).")] = None,
) -> None:
    """Write the night report: counts, masters against their history, every science frame
    before and after reduction, failures and quarantine, as one HTML page that opens offline."""
    state = state_of(ctx)
    engine = state.engine(must_exist=True)
    path = run_report(engine, JobContext.from_settings(state.settings), parse_date(night),
                      output=output)
    typer.echo(str(path))
