"""``nightlog nights``: what each night holds, newest first, or summed per month or year."""

from __future__ import annotations

import enum
from typing import Annotated

import typer

from nightlog.cli.options import parse_date
from nightlog.cli.output import OutputFormat, emit
from nightlog.cli.state import state_of

app = typer.Typer()

#: Nights (or months, years) listed when ``--limit`` is not given.
DEFAULT_LIMIT = 30


class Period(enum.StrEnum):
    """What one row counts."""

    night = "night"
    month = "month"
    year = "year"


@app.command("nights")
def nights_cmd(
    ctx: typer.Context,
    since: Annotated[str | None, typer.Option(help="First night (YYYY-MM-DD).")] = None,
    until: Annotated[str | None, typer.Option(help="Last night (YYYY-MM-DD).")] = None,
    by: Annotated[Period, typer.Option(
        help="One row per night, or the nights summed per month or year.")] = Period.night,
    limit: Annotated[int, typer.Option(
        min=0, help="The newest this many nights (months, years) are listed; 0 lists "
        "every one. Whatever is left out is said on stderr.")] = DEFAULT_LIMIT,
    oldest_first: Annotated[bool, typer.Option(
        "--oldest-first", help="List the oldest first (the newest come first).")] = False,
    fmt: Annotated[OutputFormat, typer.Option("--format", help="Output format.")] =
        OutputFormat.table,
) -> None:
    """Count frames per night, kind, filter and exposure time."""
    # The catalogue (and SQLAlchemy) is imported when the command runs, not for --help.
    from nightlog.catalogue.engine import make_sessionmaker
    from nightlog.catalogue.night_tally import newest_tallied_nights
    from nightlog.catalogue.queries import night_counts, period_counts

    # Exposure times within 1 % of each other are one group (a shutter's jitter);
    # JSON and CSV give each group's shortest and longest.
    first, last = parse_date(since), parse_date(until)
    newest: list[object] = []
    engine = state_of(ctx).engine(must_exist=True)
    with make_sessionmaker(engine)() as session:
        if by is Period.night and limit and first is None and last is None:
            # Only the newest nights are read (the tally knows which they are).
            newest = newest_tallied_nights(session, limit + 1)
            first = newest[:limit][-1] if newest else None
        counts = night_counts(session, since=first, until=last)
    if by is Period.night:
        rows = [{"night": c.night.isoformat(), "kind": c.kind, "filter": c.filter,
                 "exptime": c.exptime, "count": c.count, "exptime_min": c.exptime_min,
                 "exptime_max": c.exptime_max} for c in counts]
        columns: tuple[str, ...] = ("night", "kind", "filter", "exptime", "count")
    else:
        rows = [{by.value: p.period, "kind": p.kind, "filter": p.filter, "exptime": p.exptime,
                 "count": p.count, "nights": p.nights, "exptime_min": p.exptime_min,
                 "exptime_max": p.exptime_max} for p in period_counts(counts, by.value)]
        columns = (by.value, "kind", "filter", "exptime", "count", "nights")
    periods = sorted({r[by.value] for r in rows}, reverse=True)
    kept = set(periods[:limit] if limit else periods)
    if len(kept) < len(periods) or len(newest) > limit:
        typer.echo(f"the newest {len(kept)} {by.value}(s) listed; older ones left out "
                   "(--limit 0 lists every one, --since and --until choose)", err=True)
    rows = [r for r in rows if r[by.value] in kept]
    # Newest first; within a night (month, year) by kind, filter and exposure time.
    rows.sort(key=lambda r: r[by.value], reverse=not oldest_first)
    emit(rows, columns, fmt, title=f"{len(kept)} {by.value}(s)")
