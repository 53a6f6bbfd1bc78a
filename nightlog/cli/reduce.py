"""``nightlog reduce``: reduce a night's science frames with the best masters, in parallel."""

from __future__ import annotations

import datetime as dt
import os
import time
from collections import Counter
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text
from sqlalchemy import select

from nightlog.catalogue.engine import make_sessionmaker
from nightlog.catalogue.models import Frame
from nightlog.cli.options import parse_date
from nightlog.cli.output import printable
from nightlog.cli.state import state_of
from nightlog.coordinator.context import JobContext
from nightlog.coordinator.masters import run_build
from nightlog.coordinator.reduce import (
    ReduceInterrupted,
    ReduceOutcome,
    ReduceStopped,
    run_reduce,
    science_frames,
)

app = typer.Typer()


def _frame_ids(refs: list[str]) -> list[int]:
    ids = []
    for ref in refs:
        if not ref.isdigit():
            raise typer.BadParameter(f"frame ids are numbers, not {ref!r}")
        ids.append(int(ref))
    return ids


def _summary(console: Console, outcomes: list[ReduceOutcome], title: str, seconds: float,
             where: str) -> None:
    counts = Counter(o.status for o in outcomes)
    table = Table(title=title)
    table.add_column("outcome")
    table.add_column("frames", justify="right")
    for status, n in sorted(counts.items()):
        table.add_row(status, str(n))
    console.print(table)
    reduced = [o for o in outcomes if o.status == "reduced"]
    if reduced:
        per_frame = sum(o.seconds for o in reduced) / len(reduced)
        console.print(Text(f"{len(reduced)} reduced in {seconds:.1f} s on {where} "
                           f"({per_frame:.1f} s per frame in a worker)"))
    for o in outcomes:
        if o.status in ("failed", "stopped") or o.missing:
            detail = o.reason or f"reduced without {', '.join(o.missing)}"
            tries = f" after {o.attempts} tries" if o.status == "failed" and o.attempts else ""
            console.print(Text(f"frame {o.frame_id}: {o.status}{tries}: {printable(detail)}"))


@app.command("reduce")
def reduce_cmd(
    ctx: typer.Context,
    frames: Annotated[list[str] | None, typer.Argument(
        metavar="FRAME", help="Frame ids to reduce (default: every science frame of "
        "the night).")] = None,
    night: Annotated[str | None, typer.Option(help="Night (YYYY-MM-DD); default the "
                                              "latest night in the catalogue.")] = None,
    since: Annotated[str | None, typer.Option(help="Every night from this one (YYYY-MM-DD) "
                                              "to the latest.")] = None,
    workers: Annotated[int | None, typer.Option(
        min=1, help="Local worker processes (default: [reduction] workers, else one per "
        "core).", show_default=False)] = None,
    scheduler: Annotated[str | None, typer.Option(
        help="Dask scheduler address (tcp://host:8786) whose workers reduce the frames "
        "from the shared archive (default: [reduction] scheduler).",
        show_default=False)] = None,
    local: Annotated[bool, typer.Option(
        "--local", help="Use local processes even when a scheduler is configured.")] = False,
    retries: Annotated[int | None, typer.Option(
        min=0, help="Further tries of a failed frame (default: [reduction] retries, 2).",
        show_default=False)] = None,
    build: Annotated[bool, typer.Option(help="Build the masters that are due first.")] = True,
    force: Annotated[bool, typer.Option(help="Reduce again even frames already reduced "
                                        "from the same inputs.")] = False,
    redo_superseded: Annotated[bool, typer.Option(
        "--redo-superseded", help="Reduce again frames whose best masters changed.")] = False,
) -> None:
    """Reduce science frames: overscan, trim, bias, dark, flat, cosmic rays, mask, noise.

    Frames already reduced from the same inputs are skipped, so running it again
    after an interruption finishes the work. Exit status 1 when a frame failed,
    130 when interrupted.
    """
    if sum(x is not None and x != [] for x in (frames, night, since)) > 1:
        raise typer.BadParameter("give frame ids, --night or --since, not several")
    state = state_of(ctx)
    engine = state.engine(must_exist=True)
    jobs = JobContext.from_settings(state.settings)
    console = Console()
    the_night: dt.date | None = None
    the_since = parse_date(since)
    with make_sessionmaker(engine)() as session:
        if frames:
            ids = _frame_ids(frames)
        elif the_since is None:
            the_night = parse_date(night) or session.scalars(
                select(Frame.night).order_by(Frame.night.desc()).limit(1)).one_or_none()
            if the_night is None:
                console.print("the catalogue holds no frames")
                return
    if build:
        for outcome in run_build(engine, jobs, night=the_night):
            console.print(Text(f"master {outcome.kind} {outcome.night}: {outcome.status} "
                               f"{printable(outcome.reason)}".rstrip()))
    if not frames:
        with make_sessionmaker(engine)() as session:
            ids = science_frames(session, night=the_night, since=the_since)
    address = None if local else (scheduler or jobs.reduce_scheduler)
    n_workers = workers or jobs.reduce_workers or os.cpu_count() or 1
    where = f"Dask at {address}" if address else f"{n_workers} local worker(s)"
    title = f"{len(ids)} frame(s)" + (f" of the night of {the_night}" if the_night else
                                      f" of the nights from {the_since}" if the_since else "")
    start = time.perf_counter()
    with Progress(TextColumn("reduce"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[failed]} failed, {task.fields[skipped]} up to date"),
                  TimeRemainingColumn(), console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("reduce", total=len(ids), failed=0, skipped=0)
        tally: Counter[str] = Counter()

        def _advance(o: ReduceOutcome) -> None:
            tally[o.status] += 1
            if o.status == "up-to-date":  # no work: out of the count the ETA is made of
                bar.update(task, total=max(0, len(ids) - tally["up-to-date"]),
                           skipped=tally["up-to-date"])
            else:
                bar.update(task, advance=1, failed=tally["failed"])

        try:
            outcomes = run_reduce(engine, jobs, ids, force=force,
                                  redo_superseded=redo_superseded, progress=_advance,
                                  workers=n_workers, scheduler=address, retries=retries)
        except ReduceInterrupted as stop:
            bar.stop()
            _summary(console, stop.outcomes, title, time.perf_counter() - start, where)
            console.print(Text(f"interrupted: {stop.unfinished} frame(s) not reduced; run "
                               "the same command again to finish"))
            raise typer.Exit(code=130) from None
        except ReduceStopped as stopped:
            bar.stop()
            _summary(console, stopped.outcomes, title, time.perf_counter() - start, where)
            raise
    _summary(console, outcomes, title, time.perf_counter() - start, where)
    if any(o.status == "failed" for o in outcomes):
        raise typer.Exit(code=1)
