"""``nightlog reduce``: reduce science frames with the best masters, with provenance."""

from __future__ import annotations

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
from nightlog.coordinator.reduce import ReduceOutcome, run_reduce, science_frames

app = typer.Typer()


@app.command("reduce")
def reduce_cmd(
    ctx: typer.Context,
    frames: Annotated[list[str] | None, typer.Argument(
        metavar="FRAME", help="Frame ids to reduce (default: every science frame of "
        "the night).")] = None,
    night: Annotated[str | None, typer.Option(help="Night (YYYY-MM-DD); default the "
                                              "latest night in the catalogue.")] = None,
    build: Annotated[bool, typer.Option(help="Build the masters that are due first.")] = True,
    force: Annotated[bool, typer.Option(help="Reduce again even frames already reduced "
                                        "from the same inputs.")] = False,
    redo_superseded: Annotated[bool, typer.Option(
        "--redo-superseded", help="Reduce again frames whose best masters changed.")] = False,
) -> None:
    """Reduce science frames: overscan, trim, bias, dark, flat, cosmic rays, mask, noise."""
    state = state_of(ctx)
    engine = state.engine(must_exist=True)
    jobs = JobContext.from_settings(state.settings)
    console = Console()
    with make_sessionmaker(engine)() as session:
        if frames:
            ids = []
            for ref in frames:
                if not ref.isdigit():
                    raise typer.BadParameter(f"frame ids are numbers, not {ref!r}")
                ids.append(int(ref))
            the_night = None
        else:
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
            ids = science_frames(session, night=the_night)
    with Progress(TextColumn("reduce"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("reduce", total=len(ids))

        def _advance(_o: ReduceOutcome) -> None:
            bar.advance(task)

        outcomes = run_reduce(engine, jobs, ids, force=force, redo_superseded=redo_superseded,
                              progress=_advance)
    counts = Counter(o.status for o in outcomes)
    table = Table(title=f"{len(outcomes)} frame(s)"
                  + (f" of the night of {the_night}" if the_night else ""))
    table.add_column("outcome")
    table.add_column("frames", justify="right")
    for status, n in sorted(counts.items()):
        table.add_row(status, str(n))
    console.print(table)
    for o in outcomes:
        if o.status in ("failed", "stopped") or o.missing:
            detail = o.reason or f"reduced without {', '.join(o.missing)}"
            console.print(Text(f"frame {o.frame_id}: {o.status}: {printable(detail)}"))
    if counts.get("failed"):
        raise typer.Exit(code=1)
