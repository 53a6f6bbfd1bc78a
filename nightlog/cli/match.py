"""``nightlog match``: which masters a frame gets, and why each candidate passed or failed."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from nightlog.cli.options import parse_time
from nightlog.cli.output import OutputFormat, emit, printable
from nightlog.cli.state import state_of

app = typer.Typer()


@app.command("match")
def match_cmd(
    ctx: typer.Context,
    frame_ref: Annotated[str, typer.Argument(metavar="FRAME", help="Frame id or path.")],
    at: Annotated[str | None, typer.Option(help="Match as if at this time (ISO, UTC) "
                                           "instead of the frame's own.")] = None,
    live: Annotated[bool, typer.Option(help="Live mode: only masters whose inputs all "
                                       "precede the frame.")] = False,
    fmt: Annotated[OutputFormat, typer.Option(
        "--format", help="Output format: tables, JSON (one object) or CSV (one row per "
        "candidate and rule).")] = OutputFormat.table,
) -> None:
    """Show the masters chosen for a frame and every candidate's rules, pass or fail."""
    # The catalogue (and SQLAlchemy) is imported when the command runs, not for --help.
    from nightlog.calibration.match_report import explain_match
    from nightlog.catalogue.engine import make_sessionmaker
    from nightlog.coordinator.context import JobContext

    state = state_of(ctx)
    engine = state.engine(must_exist=True)
    jobs = JobContext.from_settings(state.settings)
    with make_sessionmaker(engine)() as session:
        found = explain_match(session, jobs, frame_ref, at=parse_time(at), live=live)
    if fmt is OutputFormat.json:
        typer.echo(json.dumps(found.as_dict(), indent=1))
        return
    if fmt is OutputFormat.csv:
        emit([{"kind": item["kind"], "chosen": item["chosen"], "master": cand["master"],
               "night": cand["night"], "version": cand["version"],
               "hours_away": cand["hours_away"], "usable": cand["usable"],
               "rule": rule["rule"], "passed": rule["passed"], "detail": rule["detail"]}
              for item in found.matches for cand in item["candidates"]
              for rule in cand["rules"]],
             ("kind", "chosen", "master", "night", "version", "hours_away", "usable", "rule",
              "passed", "detail"), fmt)
        return
    console = Console()
    console.print(Text(f"frame {found.frame_id} ({found.frame_kind}, "
                       f"{printable(found.frame_path)})"))
    if not found.matches:
        console.print(f"a {found.frame_kind} frame needs no calibration")
    units = {"gain": "e-/ADU", "read_noise": "e-"}
    for name, number in found.detector.items():
        console.print(Text(f"{name.replace('_', ' ')}: {number['value']:.4g} {units[name]} "
                           f"({printable(number['source'])})"))
    for item in found.matches:
        chosen = item["chosen"]
        head = (f"{item['kind']}: master {chosen}" if chosen is not None
                else f"{item['kind']}: none ({item['reason']})")
        if item.get("flags"):
            head += f" ({item['flags']})"
        if item.get("second") is not None:
            head += f" and master {item['second']}"
        if item.get("how"):
            head += f"; {item['how']}"
        table = Table(title=head, title_justify="left")
        for col in ("master", "night", "v", "h away", "rule", "ok", "detail"):
            table.add_column(col)
        for cand in item["candidates"][:20]:
            for i, rule in enumerate(cand["rules"]):
                first = i == 0
                label = f"{cand['master']} ({cand['flags']})" if cand["flags"] else str(
                    cand["master"])
                table.add_row(label if first else "",
                              cand["night"] if first else "",
                              str(cand["version"]) if first else "",
                              f"{cand['hours_away']:g}" if first else "",
                              rule["rule"], "pass" if rule["passed"] else "FAIL",
                              Text(printable(rule["detail"])))
        console.print(table)
