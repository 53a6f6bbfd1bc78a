"""``nightlog frames``: list catalogued frames."""

from __future__ import annotations

from typing import Annotated

import typer

from nightlog.catalogue.engine import make_sessionmaker
from nightlog.catalogue.listing import frame_rows
from nightlog.catalogue.queries import FrameFilter
from nightlog.cli.options import parse_date, parse_time
from nightlog.cli.output import OutputFormat, emit
from nightlog.cli.state import state_of
from nightlog.header.model import FRAME_KINDS

app = typer.Typer()

#: The table at 80 columns: the night gives the date, ``ut`` the time of the start
#: (UTC), the path is relative to the archive root; JSON and CSV carry every field whole.
TABLE_COLUMNS = ("id", "night", "ut", "kind", "filter", "exptime", "object", "path")


@app.command("frames")
def frames_cmd(
    ctx: typer.Context,
    night: Annotated[str | None, typer.Option(help="Observing night (YYYY-MM-DD, the date "
                                              "on which the night starts).")] = None,
    kind: Annotated[str | None, typer.Option(
        help="Frame kind: " + ", ".join(FRAME_KINDS) + ".")] = None,
    filter_: Annotated[str | None, typer.Option("--filter", help="Filter name.")] = None,
    instrument: Annotated[str | None, typer.Option(help="Instrument name.")] = None,
    exptime_min: Annotated[float | None, typer.Option(help="Shortest exposure (s).")] = None,
    exptime_max: Annotated[float | None, typer.Option(help="Longest exposure (s).")] = None,
    since: Annotated[str | None, typer.Option(help="Observed at or after (ISO, UTC).")] = None,
    until: Annotated[str | None, typer.Option(help="Observed before (ISO, UTC).")] = None,
    all_versions: Annotated[bool, typer.Option("--all-versions",
                                               help="Include superseded versions.")] = False,
    limit: Annotated[int | None, typer.Option(help="At most this many rows.")] = None,
    fmt: Annotated[OutputFormat, typer.Option("--format", help="Output format.")] =
        OutputFormat.table,
) -> None:
    """List catalogued frames, filtered by night, kind, filter, instrument, exposure, time."""
    if kind is not None and kind not in FRAME_KINDS:
        raise typer.BadParameter(f"kind must be one of {', '.join(FRAME_KINDS)}",
                                 param_hint="--kind")
    crit = FrameFilter(night=parse_date(night), kind=kind, filter=filter_,
                       instrument=instrument, exptime_min=exptime_min, exptime_max=exptime_max,
                       since=parse_time(since), until=parse_time(until),
                       include_old_versions=all_versions, limit=limit)
    engine = state_of(ctx).engine(must_exist=True)
    with make_sessionmaker(engine)() as session:
        rows = frame_rows(session, crit)
    if fmt is OutputFormat.table:
        shown = [{**r, "ut": str(r["obs_time"])[11:19]} for r in rows]
        emit(shown, TABLE_COLUMNS, fmt, title=f"{len(rows)} frame(s)",
             root=state_of(ctx).settings.archive_root)
        return
    emit(rows, TABLE_COLUMNS, fmt, title=f"{len(rows)} frame(s)")
