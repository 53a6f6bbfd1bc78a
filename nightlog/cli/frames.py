"""``nightlog frames``: list catalogued frames."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from nightlog.catalogue.engine import make_sessionmaker
from nightlog.catalogue.models import Frame
from nightlog.catalogue.queries import FrameFilter, find_frames
from nightlog.cli.options import parse_date, parse_time
from nightlog.cli.output import OutputFormat, emit
from nightlog.cli.state import state_of
from nightlog.header.model import FRAME_KINDS

app = typer.Typer()

TABLE_COLUMNS = ("id", "night", "obs_time", "kind", "filter", "exptime", "object", "path")


def frame_row(frame: Frame) -> dict[str, Any]:
    """The JSON/CSV record of a frame."""
    return {
        "id": frame.id,
        "path": frame.path,
        "sha256": frame.sha256,
        "kind": frame.kind,
        "night": frame.night.isoformat(),
        "obs_time": frame.obs_time.isoformat(),
        "exptime": frame.exptime,
        "filter": frame.filter,
        "object": frame.object_name,
        "instrument": frame.instrument,
        "detector": frame.detector,
        "binning": frame.binning,
        "readout_mode": frame.readout_mode,
        "profile": frame.profile,
        "setup_key": frame.setup_key,
        "naxis1": frame.naxis1,
        "naxis2": frame.naxis2,
        "size": frame.size,
        "path_version": frame.path_version,
        "is_latest": frame.is_latest,
        "status": frame.status,
    }


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
        rows = [frame_row(f) for f in find_frames(session, crit)]
    emit(rows, TABLE_COLUMNS, fmt, title=f"{len(rows)} frame(s)")
