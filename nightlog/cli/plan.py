"""``nightlog plan``: tonight's set-ups against the masters that would serve them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from nightlog.calibration.coverage import coverage_plan, read_announced
from nightlog.catalogue.engine import make_sessionmaker
from nightlog.catalogue.queries import latest_night
from nightlog.cli.options import parse_date
from nightlog.cli.output import OutputFormat, emit
from nightlog.cli.state import state_of
from nightlog.coordinator.context import JobContext

app = typer.Typer()

_COLUMNS = ("instrument", "filter", "exptime", "frames", "announced", "kind", "coverage",
            "master", "master_night", "detail")


@app.command("plan")
def plan_cmd(
    ctx: typer.Context,
    night: Annotated[str | None, typer.Option(help="Night (YYYY-MM-DD); default the "
                                              "newest night with frames.")] = None,
    announced: Annotated[Path | None, typer.Option(
        help="A TOML file of \\[\\[setup]] tables announcing set-ups not yet observed.",
        dir_okay=False, exists=True)] = None,
    fmt: Annotated[OutputFormat, typer.Option("--format", help="Output format.")] =
        OutputFormat.table,
) -> None:
    """List tonight's set-ups against the masters that would serve them (exact, another
    night, scale-only, missing), and what to take at dawn."""
    entries = read_announced(announced) if announced is not None else []
    state = state_of(ctx)
    engine = state.engine(must_exist=True)
    jobs = JobContext.from_settings(state.settings)
    with make_sessionmaker(engine)() as session:
        wanted = parse_date(night) or latest_night(session)
        if wanted is None:
            raise typer.BadParameter("the catalogue holds no frame: give --night",
                                     param_hint="--night")
        plan = coverage_plan(session, jobs, wanted, announced=entries)
    if fmt is OutputFormat.json:
        typer.echo(json.dumps(plan.as_dict(), indent=1))
        return
    rows = [r.as_dict() for r in plan.rows]
    n_setups = len({(r["setup"], r["filter"], r["exptime"], r["announced"]) for r in rows})
    emit(rows, _COLUMNS, fmt,
         title=f"night {plan.night}: {len(rows)} calibration(s) of {n_setups} set-up(s)")
    if fmt is OutputFormat.table:
        console = Console()
        if plan.todo:
            console.print("dawn to-do:")
            for item in plan.todo:
                console.print(f"  - {item}")
        else:
            console.print("dawn to-do: nothing, every set-up has its masters")
