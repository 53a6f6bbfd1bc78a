"""``nightlog match``: which masters a frame gets, and why each candidate passed or failed."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from sqlalchemy import select

from nightlog.calibration.matching import match_frame
from nightlog.catalogue.engine import make_sessionmaker
from nightlog.catalogue.models import Frame
from nightlog.cli.options import parse_time
from nightlog.cli.output import OutputFormat, printable
from nightlog.cli.state import state_of
from nightlog.coordinator.context import JobContext
from nightlog.errors import NotFoundError

app = typer.Typer()


def _find(session: object, ref: str) -> Frame:
    from sqlalchemy.orm import Session

    assert isinstance(session, Session)
    if ref.isdigit():
        frame = session.get(Frame, int(ref))
    else:
        import os

        frame = session.scalars(select(Frame).where(Frame.path == os.path.abspath(ref),
                                                    Frame.is_latest.is_(True))).one_or_none()
    if frame is None:
        raise NotFoundError(f"no catalogued frame {ref!r} (give an id or a path)")
    return frame


@app.command("match")
def match_cmd(
    ctx: typer.Context,
    frame_ref: Annotated[str, typer.Argument(metavar="FRAME", help="Frame id or path.")],
    at: Annotated[str | None, typer.Option(help="Match as if at this time (ISO, UTC) "
                                           "instead of the frame's own.")] = None,
    live: Annotated[bool, typer.Option(help="Live mode: only masters whose inputs all "
                                       "precede the frame.")] = False,
    fmt: Annotated[OutputFormat, typer.Option("--format", help="Output format (table or "
                                              "json).")] = OutputFormat.table,
) -> None:
    """Show the masters chosen for a frame and every candidate's rules, pass or fail."""
    state = state_of(ctx)
    engine = state.engine(must_exist=True)
    jobs = JobContext.from_settings(state.settings)
    with make_sessionmaker(engine)() as session:
        frame = _find(session, frame_ref)
        matches = match_frame(session, frame, jobs.profile_of(frame), jobs.policy,
                              at=parse_time(at), live=live, explain=True)
        report: list[dict[str, Any]] = [{
            "kind": kind,
            "chosen": None if m.chosen is None else m.chosen.id,
            "reason": m.reason,
            "candidates": [{"master": c.master.id, "night": c.master.night.isoformat(),
                            "version": c.master.version, "usable": c.usable,
                            "hours_away": round(c.distance.total_seconds() / 3600, 3),
                            "rules": [{"rule": r.rule, "passed": r.passed, "detail": r.detail}
                                      for r in c.rules]}
                           for c in m.candidates],
        } for kind, m in matches.items()]
        title = f"frame {frame.id} ({frame.kind}, {printable(frame.path)})"
    if fmt is OutputFormat.json:
        import json

        typer.echo(json.dumps({"frame": frame.id, "matches": report}, indent=1))
        return
    console = Console()
    console.print(Text(title))
    if not report:
        console.print(f"a {frame.kind} frame needs no calibration")
    for item in report:
        chosen = item["chosen"]
        head = (f"{item['kind']}: master {chosen}" if chosen is not None
                else f"{item['kind']}: none ({item['reason']})")
        table = Table(title=head, title_justify="left")
        for col in ("master", "night", "v", "h away", "rule", "ok", "detail"):
            table.add_column(col)
        for cand in item["candidates"][:20]:
            for i, rule in enumerate(cand["rules"]):
                first = i == 0
                table.add_row(str(cand["master"]) if first else "",
                              cand["night"] if first else "",
                              str(cand["version"]) if first else "",
                              f"{cand['hours_away']:g}" if first else "",
                              rule["rule"], "pass" if rule["passed"] else "FAIL",
                              Text(printable(rule["detail"])))
        console.print(table)
