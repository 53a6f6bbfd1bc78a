"""``nightlog calib``: build, list, inspect and judge master calibrations."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from nightlog.catalogue.engine import make_sessionmaker
from nightlog.catalogue.listing import iter_master_records
from nightlog.catalogue.masters import (
    MasterFilter,
    certify_master,
    get_master,
    inputs_of,
    products_using,
    set_quality,
)
from nightlog.catalogue.records import master_record
from nightlog.cli import calib_health, calib_history
from nightlog.cli.calib_history import MasterKind
from nightlog.cli.exit_status import ExitStatus
from nightlog.cli.options import parse_date, parse_time
from nightlog.cli.output import OutputFormat, emit, emit_outcomes, printable
from nightlog.cli.pages import DEFAULT_LIMIT, Page
from nightlog.cli.state import state_of
from nightlog.states import BuildStatus, MasterQuality

app = typer.Typer(help="Build, list, inspect, mark and certify master calibrations.",
                  no_args_is_help=True)


app.command("fence")(calib_health.fence_cmd)
app.command("fences")(calib_health.fences_cmd)
app.command("alarms")(calib_health.alarms_cmd)
app.command("ack")(calib_health.ack_cmd)


@app.command("build")
def build_cmd(
    ctx: typer.Context,
    night: Annotated[str | None, typer.Option(help="Only this night (YYYY-MM-DD); default "
                                              "every night with frames not yet used.")] = None,
    workers: Annotated[int, typer.Option(
        min=1, help="Local worker processes building independent groups at once "
        "(1: in this process).")] = 1,
    scheduler: Annotated[str | None, typer.Option(
        help="Dask scheduler address (tcp://host:8786) whose workers build the masters "
        "from the shared archive.", show_default=False)] = None,
    fmt: Annotated[OutputFormat, typer.Option(
        "--format", help="Output format: a table, or JSON or CSV (one row per group) for "
        "scripts.")] = OutputFormat.table,
) -> None:
    """Build every master that is due: new groups, and groups that received more frames.

    Biases are built first, then darks, then flats, each calibrated with the masters
    just built; the groups of one kind are built at once on the workers given.
    """
    # The coordinator (and astropy, scipy under it) is imported when a command runs.
    from nightlog.coordinator.context import JobContext
    from nightlog.coordinator.masters import run_build

    state = state_of(ctx)
    engine = state.engine(must_exist=True)
    outcomes = run_build(engine, JobContext.from_settings(state.settings),
                         night=parse_date(night), workers=workers, scheduler=scheduler)
    if fmt is not OutputFormat.table:
        emit_outcomes({"groups": len(outcomes)}, outcomes, fmt)
    else:
        _print_build(outcomes)
    if any(o.status == BuildStatus.FAILED for o in outcomes):
        raise typer.Exit(code=ExitStatus.FAILED)


def _print_build(outcomes: list[Any]) -> None:
    console = Console()
    if not outcomes:
        console.print("nothing to build: every group with enough frames has its master")
        return
    table = Table(title=f"{len(outcomes)} group(s)")
    for col in ("kind", "night", "status", "master", "frames", "rejected", "reason"):
        table.add_column(col)
    for o in outcomes:
        table.add_row(o.kind, o.night.isoformat(), o.status,
                      "" if o.master_id is None else f"{o.master_id} (v{o.version})",
                      str(o.n_used), str(len(o.rejected)),
                      Text(printable(", ".join((*o.flags, o.reason) if o.reason else o.flags))))
    console.print(table)
    for o in outcomes:
        for text in o.warnings:
            console.print(Text(f"warning: {o.kind} master {o.master_id}: {printable(text)}",
                               style="yellow"))
    short = [o for o in outcomes if o.status == BuildStatus.TOO_FEW]
    if short:
        console.print(Text(f"{len(short)} group(s) with too few frames for a master "
                           "(the profile's min_frames; see missing, fallback_nights and "
                           "provisional_min_frames in docs/profiles.md)"))


@app.command("list")
def list_cmd(
    ctx: typer.Context,
    kind: Annotated[str | None, typer.Option(help="bias, dark, flat or illumination.")] = None,
    night: Annotated[str | None, typer.Option(help="Night (YYYY-MM-DD).")] = None,
    since: Annotated[str | None, typer.Option(help="First night (YYYY-MM-DD).")] = None,
    until: Annotated[str | None, typer.Option(help="Last night (YYYY-MM-DD).")] = None,
    filter_: Annotated[str | None, typer.Option("--filter", help="Filter of flats.")] = None,
    bad: Annotated[bool, typer.Option("--bad", help="Only masters marked bad.")] = False,
    all_versions: Annotated[bool, typer.Option("--all-versions",
                                               help="Include superseded versions.")] = False,
    limit: Annotated[int, typer.Option(
        min=0, help="At most this many masters, the newest night first; 0 lists every "
        "one. When masters are left out, stderr says so and how to list the next ones.")]
        = DEFAULT_LIMIT,
    after: Annotated[int | None, typer.Option(
        help="List the masters after this one (an id: the last of the previous page).")]
        = None,
    oldest_first: Annotated[bool, typer.Option(
        "--oldest-first", help="The oldest night first (the newest come first).")] = False,
    fmt: Annotated[OutputFormat, typer.Option("--format", help="Output format.")] =
        OutputFormat.table,
) -> None:
    """List masters: the calibration history, with each master's statistics."""
    engine = state_of(ctx).engine(must_exist=True)
    page = Page(limit, "master(s)")
    crit = MasterFilter(kind=kind, night=parse_date(night), since=parse_date(since),
                        until=parse_date(until), filter=filter_,
                        quality=MasterQuality.BAD if bad else None, include_superseded=all_versions,
                        newest_first=not oldest_first, after_id=after, limit=page.asked)
    with make_sessionmaker(engine)() as session:
        rows = page.cut(iter_master_records(session, crit))
        if fmt is not OutputFormat.table:  # written as the rows are read
            emit(rows, _RECORD_COLUMNS, fmt)
        else:
            _list_table(list(rows))
    page.note(oldest_first)


def _list_table(rows: list[dict[str, Any]]) -> None:
    # ``by`` (the newer version) is only ever set with --all-versions.
    columns = [c for c in _LIST_COLUMNS if c != "by" or any(r["superseded_by"] for r in rows)]
    for extra in ("window", "ccd"):  # masters of subarray frames, of a mosaic's CCDs
        if any(r.get(extra) for r in rows):
            columns.insert(columns.index("n"), extra)
    if any(r.get("flags") for r in rows):  # multi-night or provisional masters
        columns.insert(columns.index("quality") + 1, "flags")
    emit([_list_row(r) for r in rows], columns, OutputFormat.table,
         title=f"{len(rows)} master(s)")


#: The fields of a master's record in JSON and CSV (the header of an empty CSV).
_RECORD_COLUMNS = ("id", "kind", "night", "version", "instrument", "filter", "window", "ccd",
                   "set_temp", "exptime", "n_frames", "level", "noise", "level_unit",
                   "noise_unit", "quality", "quality_reason", "multi_night", "provisional",
                   "flags", "superseded_by", "valid_from", "valid_until", "path", "sha256",
                   "group_key", "first_obs", "last_obs", "stats")


#: The table of ``calib list``: short headings so that it fits 80 columns.
#: ``measured`` is what the master's frames measured of the detector: read noise
#: (biases), dark current (darks), gain (flats); the master's own pixel scatter
#: (``noise``) is in ``calib show``, JSON and CSV.
_LIST_COLUMNS = ("id", "kind", "night", "v", "filter", "n", "level", "measured", "quality",
                 "by")

#: What each kind of master measures of the detector: (stats key, unit).
_DETECTOR_FIGURE = {"bias": ("read_noise_e", "e-"), "dark": ("dark_current_e_per_s", "e-/s"),
                    "flat": ("gain_from_flats", "e-/adu")}


def _figure(value: Any, unit: str = "") -> str:
    """A figure to four significant digits with its unit (a relative one in per cent)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return ""
    if unit == "1":
        return f"{100 * value:.3g} %"
    size = abs(float(value))
    if size == 0 or 1e-3 <= size < 1e6:
        decimals = max(0, 3 - math.floor(math.log10(size))) if size else 0
        text = f"{value:.{decimals}f}"
    else:
        mantissa, exponent = f"{value:.2e}".split("e")
        text = f"{mantissa}e{int(exponent)}"
    return f"{text} {unit}".strip()


def _list_row(row: dict[str, Any]) -> dict[str, Any]:
    """A master record as ``calib list`` shows it (JSON and CSV keep every field)."""
    return {"id": row["id"], "kind": row["kind"], "night": row["night"], "v": row["version"],
            "filter": row["filter"], "window": row.get("window"), "ccd": row.get("ccd"),
            "n": row["n_frames"],
            "level": _figure(row["level"], row["level_unit"]),
            "measured": _detector_figure(row), "quality": row["quality"],
            "flags": row.get("flags"), "by": row["superseded_by"]}


def _detector_figure(row: dict[str, Any]) -> str:
    key, unit = _DETECTOR_FIGURE.get(row["kind"], ("", ""))
    return _figure((row.get("stats") or {}).get(key), unit)


@app.command("show")
def show_cmd(
    ctx: typer.Context,
    master_id: Annotated[int, typer.Argument(help="Master id.")],
    fmt: Annotated[OutputFormat, typer.Option("--format", help="Output format.")] =
        OutputFormat.table,
) -> None:
    """Show a master: file, statistics, validity, and every input frame (used or rejected)."""
    engine = state_of(ctx).engine(must_exist=True)
    with make_sessionmaker(engine)() as session:
        master = get_master(session, master_id)
        row = master_record(master)
        inputs = [{"frame_id": f.id, "path": f.path, "obs_time": f.obs_time.isoformat(),
                   "used": mi.used, "reason": mi.reason, "sha256": mi.sha256}
                  for mi, f in inputs_of(session, master)]
        users = [p.id for p in products_using(session, master)]
    if fmt is not OutputFormat.table:
        emit([{**row, "inputs": inputs, "products": users}], list(row), fmt)
        return
    console = Console()
    table = Table(title=f"master {master_id}", show_header=False)
    for key, value in row.items():
        if key not in ("stats", "level", "noise", "level_unit", "noise_unit"):
            table.add_row(key, Text(printable(value)))
    for key, value in _statistics(row["stats"], row["level_unit"], row["noise_unit"]):
        table.add_row(key, Text(printable(value)))
    table.add_row("products using it", Text(printable(", ".join(map(str, users)) or "none")))
    console.print(table)
    emit(inputs, ("frame_id", "obs_time", "used", "reason", "path"), OutputFormat.table,
         title="inputs", console=console)


#: Units of the statistics a master records, beside its level's (``unit``).
_STAT_UNITS = {"read_noise_adu": "adu", "read_noise_e": "e-", "gain_from_flats": "e-/adu",
               "dark_current_e_per_s": "e-/s", "hot_pixels": "pixels", "low_pixels": "pixels",
               "rejected": "frames"}


_STAT_LABELS = {"read_noise_adu": "read noise", "read_noise_e": "read noise",
                "dark_current_e_per_s": "dark current"}


def _statistics(stats: dict[str, Any], level_unit: str, noise_unit: str
                ) -> list[tuple[str, str]]:
    """A master's statistics as ``(name, value with its unit)`` rows, nested ones flat."""
    units = {**_STAT_UNITS, "level": level_unit, "noise": noise_unit}
    out = []
    for key, value in stats.items():
        if key == "header_disagrees" and isinstance(value, list):
            out.extend(("warning", printable(d.get("message", d)) if isinstance(d, dict)
                        else printable(d)) for d in value)
            continue
        if isinstance(value, dict):
            text = ", ".join(f"{k} {printable(v) or '-'}" for k, v in value.items()) or "none"
        elif isinstance(value, list):
            text = " ".join(_figure(v) if isinstance(v, float) else printable(v)
                            for v in value)
        elif isinstance(value, float):
            text = _figure(value, units.get(key, ""))
        else:
            text = f"{printable(value)} {units.get(key, '')}"
        out.append((_STAT_LABELS.get(key, key.replace("_", " ")), text.strip()))
    return out


@app.command("add")
def add_cmd(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The master file (FITS, BUNIT its unit).",
                                         exists=True, dir_okay=False)],
    like: Annotated[str | None, typer.Option(
        "--like", metavar="FRAME", help="A catalogued frame (id or path) of the set-up the "
        "master calibrates: one of its inputs, or a frame it is meant for (default: the "
        "one set-up of the header's INSTRUME and FILTER with the master's shape).",
        show_default=False)] = None,
    kind: Annotated[MasterKind | None, typer.Option(
        help="Kind of master (default: the file's NLKIND or frame-type keyword).",
        case_sensitive=False)] = None,
    night: Annotated[str | None, typer.Option(
        help="Night it belongs to (YYYY-MM-DD; default: the frame's).")] = None,
    fmt: Annotated[OutputFormat, typer.Option("--format", help="Output format.")] =
        OutputFormat.table,
) -> None:
    """Register a master made elsewhere (ccdproc, IRAF, ...): checked for kind, set-up,
    unit and shape against a frame, recorded as external with its SHA-256, and matched
    like any master; the group's previous version for the night is superseded."""
    from nightlog.coordinator.context import JobContext
    from nightlog.coordinator.external_master import add_external_master

    state = state_of(ctx)
    engine = state.engine(must_exist=True)
    jobs = JobContext.from_settings(state.settings)
    with make_sessionmaker(engine)() as session, session.begin():
        added = add_external_master(session, jobs, file, like,
                                    kind=None if kind is None else kind.value,
                                    night=parse_date(night))
    row = added.as_dict()
    if fmt is not OutputFormat.table:
        emit([row], list(row), fmt)
        return
    typer.echo(printable(f"master {added.id} added: external {added.kind} ({added.unit}), "
                         f"night {added.night.isoformat()}, v{added.version}"
                         + (f", supersedes master {added.superseded}" if added.superseded
                            else "")))


@app.command("mark-bad")
def mark_bad_cmd(
    ctx: typer.Context,
    master_id: Annotated[int, typer.Argument(help="Master id.")],
    reason: Annotated[str, typer.Option(help="Why the master must not be used.")],
    redo: Annotated[bool, typer.Option(
        "--redo", help="Reduce again, with the best masters left, every frame whose "
        "current product used it.")] = False,
) -> None:
    """Mark a master bad: it is never matched again; lists the products that used it."""
    state = state_of(ctx)
    engine = state.engine(must_exist=True)
    with make_sessionmaker(engine)() as session, session.begin():
        master = get_master(session, master_id)
        set_quality(session, master, MasterQuality.BAD, reason)
        users = [(p.id, p.frame_id) for p in products_using(session, master)]
    typer.echo(f"master {master_id} marked bad: {printable(reason)}")
    if not users:
        typer.echo("no product used it")
        return
    typer.echo(f"{len(users)} product(s) used it: " + ", ".join(str(p) for p, _ in users))
    if not redo:
        typer.echo("reduce them again with 'nightlog calib mark-bad ... --redo' or "
                   "'nightlog reduce --redo-superseded'")
        return
    from nightlog.coordinator.context import JobContext
    from nightlog.coordinator.reduce import run_reduce

    outcomes = run_reduce(engine, JobContext.from_settings(state.settings),
                          sorted({f for _, f in users}), redo_superseded=True)
    for o in outcomes:
        detail = o.reason or (f"without {', '.join(o.missing)}" if o.missing else "")
        typer.echo(f"frame {o.frame_id}: {o.status}"
                   + (f" (product {o.product_id})" if o.product_id else "")
                   + (f": {printable(detail)}" if detail else ""))
    if any(o.status == BuildStatus.FAILED for o in outcomes):
        raise typer.Exit(code=ExitStatus.FAILED)


@app.command("mark-good")
def mark_good_cmd(
    ctx: typer.Context,
    master_id: Annotated[int, typer.Argument(help="Master id.")],
    reason: Annotated[str | None, typer.Option(help="Note kept with the decision.")] = None,
) -> None:
    """Mark a master good again (usable for matching)."""
    engine = state_of(ctx).engine(must_exist=True)
    with make_sessionmaker(engine)() as session, session.begin():
        set_quality(session, get_master(session, master_id), MasterQuality.GOOD, reason)
    typer.echo(f"master {master_id} marked good")


@app.command("certify")
def certify_cmd(
    ctx: typer.Context,
    master_id: Annotated[int, typer.Argument(help="Master id.")],
    valid_from: Annotated[str, typer.Option("--from", help="Start of validity (ISO, UTC).")],
    valid_until: Annotated[str, typer.Option("--until", help="End of validity, exclusive "
                                             "(ISO, UTC).")],
) -> None:
    """Certify a master valid over an explicit time range (overlaps in its group refused)."""
    start, end = parse_time(valid_from), parse_time(valid_until)
    assert start is not None and end is not None
    engine = state_of(ctx).engine(must_exist=True)
    with make_sessionmaker(engine)() as session, session.begin():
        certify_master(session, get_master(session, master_id), start, end)
    typer.echo(f"master {master_id} certified from {start.isoformat()} to {end.isoformat()}")


app.command("history")(calib_history.history_cmd)
