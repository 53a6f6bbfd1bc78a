"""``nightlog nights``: what each night holds, newest first, or summed per month or year."""

from __future__ import annotations

import enum
from collections.abc import Iterator
from typing import Annotated, Any

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


def _night_rows(counts: Iterator[Any]) -> Iterator[dict[str, Any]]:
    for c in counts:
        yield {"night": c.night.isoformat(), "kind": c.kind, "filter": c.filter,
               "exptime": c.exptime, "count": c.count, "exptime_min": c.exptime_min,
               "exptime_max": c.exptime_max}


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

    first, last = parse_date(since), parse_date(until)
    engine = state_of(ctx).engine(must_exist=True)
    with make_sessionmaker(engine)() as session:
        if by is Period.night:
            _nights(session, first, last, limit, oldest_first, fmt)
        else:
            _periods(session, by.value, first, last, limit, oldest_first, fmt)


def _cut_note(kept: int, what: str) -> None:
    typer.echo(f"the newest {kept} {what}(s) listed; older ones left out "
               "(--limit 0 lists every one, --since and --until choose)", err=True)


def _nights(session: Any, first: Any, last: Any, limit: int, oldest_first: bool,
            fmt: OutputFormat) -> None:
    from nightlog.catalogue.night_tally import newest_tallied_nights
    from nightlog.catalogue.queries import iter_night_counts, night_counts

    # Exposure times within 1 % of each other are one group (a shutter's jitter);
    # JSON and CSV give each group's shortest and longest.
    if limit:
        cut = False
        if first is None and last is None:
            # Only the newest nights are read (the tally knows which they are).
            newest = newest_tallied_nights(session, limit + 1)
            first, cut = (newest[:limit][-1] if newest else None), len(newest) > limit
        counts = night_counts(session, since=first, until=last, newest_first=not oldest_first)
        nights = sorted({c.night for c in counts}, reverse=True)
        if len(nights) > limit:  # --since or --until chose more nights than the limit
            counts = [c for c in counts if c.night >= nights[limit - 1]]
            cut = True
        kept = min(len(nights), limit)
        if cut:
            _cut_note(kept, "night")
        rows: Any = list(_night_rows(iter(counts)))
        title = f"{kept} night(s)"
    else:
        # Every night, streamed newest (oldest) first as the tally's rows arrive.
        rows = _night_rows(iter_night_counts(session, since=first, until=last,
                                             newest_first=not oldest_first))
        title = "every night"
        if fmt is OutputFormat.table:
            rows = list(rows)
            title = f"{len({r['night'] for r in rows})} night(s)"
    emit(rows, ("night", "kind", "filter", "exptime", "count"), fmt, title=title)


def _periods(session: Any, by: str, first: Any, last: Any, limit: int, oldest_first: bool,
             fmt: OutputFormat) -> None:
    from nightlog.catalogue.night_periods import period_counts

    rows = [{by: p.period, "kind": p.kind, "filter": p.filter, "exptime": p.exptime,
             "count": p.count, "nights": p.nights, "exptime_min": p.exptime_min,
             "exptime_max": p.exptime_max}
            for p in period_counts(session, by, since=first, until=last)]
    periods = sorted({r[by] for r in rows}, reverse=True)
    kept = set(periods[:limit] if limit else periods)
    if len(kept) < len(periods):
        _cut_note(len(kept), by)
    rows = [r for r in rows if r[by] in kept]
    # Newest first; within a month (year) by kind, filter and exposure time.
    rows.sort(key=lambda r: r[by], reverse=not oldest_first)
    emit(rows, (by, "kind", "filter", "exptime", "count", "nights"), fmt,
         title=f"{len(kept)} {by}(s)")
