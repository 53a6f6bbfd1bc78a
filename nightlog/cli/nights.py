"""``nightlog nights``: what each night holds."""

from __future__ import annotations

from typing import Annotated

import typer

from nightlog.cli.options import parse_date
from nightlog.cli.output import OutputFormat, emit
from nightlog.cli.state import state_of

app = typer.Typer()


@app.command("nights")
def nights_cmd(
    ctx: typer.Context,
    since: Annotated[str | None, typer.Option(help="First night (YYYY-MM-DD).")] = None,
    until: Annotated[str | None, typer.Option(help="Last night (YYYY-MM-DD).")] = None,
    fmt: Annotated[OutputFormat, typer.Option("--format", help="Output format.")] =
        OutputFormat.table,
) -> None:
    """Count frames per night, kind, filter and exposure time."""
    # The catalogue (and SQLAlchemy) is imported when the command runs, not for --help.
    from nightlog.catalogue.engine import make_sessionmaker
    from nightlog.catalogue.queries import night_counts

    # Exposure times within 1 % of each other are one group (a shutter's jitter);
    # JSON and CSV give each group's shortest and longest.
    engine = state_of(ctx).engine(must_exist=True)
    with make_sessionmaker(engine)() as session:
        counts = night_counts(session, since=parse_date(since), until=parse_date(until))
    rows = [{"night": c.night.isoformat(), "kind": c.kind, "filter": c.filter,
             "exptime": c.exptime, "count": c.count, "exptime_min": c.exptime_min,
             "exptime_max": c.exptime_max} for c in counts]
    emit(rows, ("night", "kind", "filter", "exptime", "count"), fmt,
         title=f"{len({r['night'] for r in rows})} night(s)")
