"""``nightlog frames``: list catalogued frames."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer

from nightlog.cli.options import parse_date, parse_time
from nightlog.cli.output import OutputFormat, emit
from nightlog.cli.pages import DEFAULT_LIMIT, Page
from nightlog.cli.state import state_of
from nightlog.header.model import FRAME_KINDS
from nightlog.states import QualityVerdict

app = typer.Typer()


#: The table at 80 columns: the night gives the date, ``ut`` the time of the start
#: (UTC), the path is relative to the archive root; JSON and CSV carry every field whole.
TABLE_COLUMNS = ("id", "night", "ut", "kind", "filter", "exptime", "object", "path")

#: The quality table: FWHM in pixels and arcsec, ellipticity, sky (e-), sources,
#: cosmic-ray pixels, airmass and the rules' verdict.
QUALITY_TABLE = ("id", "ut", "filter", "fwhm", "fwhm_as", "ellip", "sky_e", "src", "cr",
                 "airmass", "verdict")
_SHORT = {"fwhm": "fwhm_px", "fwhm_as": "fwhm_arcsec", "ellip": "ellipticity",
          "src": "n_sources", "cr": "cosmic_ray_pixels"}


def _short_quality(row: dict[str, object]) -> dict[str, object]:
    out: dict[str, object] = {}
    for short, key in (*_SHORT.items(), ("sky_e", "sky_e"), ("airmass", "airmass")):
        value = row.get(key)
        if isinstance(value, float):
            value = f"{value:.0f}" if short == "sky_e" else f"{value:.3g}"
        out[short] = value
    return out


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
    limit: Annotated[int, typer.Option(
        min=0, help="At most this many frames, the newest first; 0 lists every one. When "
        "frames are left out, stderr says so and how to list the next ones.")] =
        DEFAULT_LIMIT,
    after: Annotated[int | None, typer.Option(
        help="List the frames after this one (an id: the last of the previous page).")]
        = None,
    oldest_first: Annotated[bool, typer.Option(
        "--oldest-first", help="In observation order (the newest come first).")] = False,
    quality: Annotated[QualityVerdict | None, typer.Option(
        help="Only frames whose current product's quality verdict is this (the quality "
        "rules of \\[quality.rules]); shows the quality columns.")] = None,
    poor: Annotated[bool, typer.Option(
        "--poor", help="Only frames the quality rules mark poor (--quality poor).")] = False,
    show_quality: Annotated[bool, typer.Option(
        "--show-quality", help="Add the quality columns: FWHM, ellipticity, sky, sources, "
        "saturation, cosmic rays, airmass, verdict and reasons.")] = False,
    problems: Annotated[bool, typer.Option(
        "--problems", help="Only the science frames of the night (--night, default the "
        "latest) with a reduction problem: reduced without a step, held or stopped for "
        "want of a master, failed; with the state, the steps and the reason.")] = False,
    fmt: Annotated[OutputFormat, typer.Option("--format", help="Output format.")] =
        OutputFormat.table,
) -> None:
    """List catalogued frames, filtered by night, kind, filter, instrument, exposure, time,
    quality; or a night's reduction problems."""
    # The catalogue (and SQLAlchemy) is imported when the command runs, not for --help.
    from nightlog.catalogue.engine import make_sessionmaker
    from nightlog.catalogue.listing import QUALITY_COLUMNS, iter_frame_records
    from nightlog.catalogue.queries import FrameFilter

    if problems:
        _problems(ctx, parse_date(night), fmt)
        return
    if poor:
        if quality not in (None, QualityVerdict.POOR):
            raise typer.BadParameter("--poor is --quality poor", param_hint="--poor")
        quality = QualityVerdict.POOR
    if kind is not None and kind not in FRAME_KINDS:
        raise typer.BadParameter(f"kind must be one of {', '.join(FRAME_KINDS)}",
                                 param_hint="--kind")
    crit = FrameFilter(night=parse_date(night), kind=kind, filter=filter_,
                       instrument=instrument, exptime_min=exptime_min, exptime_max=exptime_max,
                       since=parse_time(since), until=parse_time(until),
                       include_old_versions=all_versions, limit=limit + 1 if limit else None,
                       quality=None if quality is None else str(quality),
                       newest_first=not oldest_first, after_id=after)
    with_quality = show_quality or quality is not None
    engine = state_of(ctx).engine(must_exist=True)
    page = Page(limit, "frame(s)")
    with make_sessionmaker(engine)() as session:
        rows = page.cut(iter_frame_records(session, crit, with_quality=with_quality))
        if fmt is OutputFormat.table:
            # At 80 columns the quality figures, to three digits under short headings,
            # take the place of the object and path (JSON and CSV carry every figure
            # whole).
            listed = list(rows)
            columns = QUALITY_TABLE if with_quality else TABLE_COLUMNS
            if any(r.get("ccd") for r in listed):  # a mosaic's frames: one per CCD of a file
                columns = (*columns[:-1], "ccd", columns[-1])
            shown = [{**r, "ut": str(r["obs_time"])[11:19], **_short_quality(r)}
                     for r in listed]
            emit(shown, columns, fmt, title=f"{len(listed)} frame(s)",
                 root=state_of(ctx).settings.archive_root)
        else:  # written as the rows are read
            emit(rows, TABLE_COLUMNS + QUALITY_COLUMNS if with_quality else TABLE_COLUMNS,
                 fmt)
    page.note(oldest_first)


def _problems(ctx: typer.Context, night: dt.date | None, fmt: OutputFormat) -> None:
    from nightlog.catalogue.engine import make_sessionmaker
    from nightlog.catalogue.problems import PROBLEM_COLUMNS, problem_rows
    from nightlog.catalogue.queries import latest_night

    engine = state_of(ctx).engine(must_exist=True)
    with make_sessionmaker(engine)() as session:
        night = night or latest_night(session)
        rows = [] if night is None else problem_rows(session, night)
    emit(rows, PROBLEM_COLUMNS, fmt,
         title=f"{len(rows)} frame(s) with a reduction problem"
         + ("" if night is None else f", night of {night}"))
