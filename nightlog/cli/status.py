"""``nightlog status``: are the watch daemons alive, and what has tonight brought?"""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from nightlog.cli.exit_status import ExitStatus
from nightlog.cli.options import parse_date
from nightlog.cli.output import OutputFormat, emit, printable
from nightlog.cli.state import state_of

app = typer.Typer()


def _ago(when: dt.datetime | None, now: dt.datetime) -> str:
    if when is None:
        return ""
    seconds = max(0, int((now - when).total_seconds()))
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago"


@app.command("status")
def status_cmd(
    ctx: typer.Context,
    night: Annotated[str | None, typer.Option(
        help="Night to count (YYYY-MM-DD; default: the newest night with frames).",
        show_default=False)] = None,
    limit: Annotated[int, typer.Option(help="Daemon runs shown, newest first.", min=1)] = 5,
    alarm_limit: Annotated[int, typer.Option(
        "--alarms", help="Open alarms shown, newest night first.", min=0)] = 20,
    fmt: Annotated[OutputFormat, typer.Option(
        "--format", help="Output format: tables, JSON (daemons and the night's counts) or "
        "CSV (one row per daemon).")] = OutputFormat.table,
    require_running: Annotated[bool, typer.Option(
        "--require-running", help="Exit with status 1 when no daemon is running "
        "(for monitoring).")] = False,
) -> None:
    """Show the watch daemons (running or not, since when, last action, backlog) and
    the counts of tonight: frames per kind, masters, products, quarantined files, the
    reduction problems (frames reduced without a step, held or stopped for want of a
    master, failed); and the open detector-health alarms."""
    # The catalogue (and SQLAlchemy) is imported when the command runs, not for --help.
    from nightlog.catalogue import daemons as cat_daemons
    from nightlog.catalogue.alarms import alarm_record, list_alarms
    from nightlog.catalogue.engine import make_sessionmaker
    from nightlog.catalogue.problems import problem_counts
    from nightlog.catalogue.queries import latest_night, night_totals
    from nightlog.notify.events import alarm_text

    engine = state_of(ctx).engine(must_exist=True)
    now = dt.datetime.now(dt.UTC)
    with make_sessionmaker(engine)() as session:
        rows = cat_daemons.recent_daemons(session, limit=limit)
        wanted = parse_date(night) or latest_night(session)
        counts = None if wanted is None else night_totals(session, wanted)
        problems = {} if wanted is None else problem_counts(session, wanted)
        alarms = [alarm_record(a) for a in list_alarms(session)][:alarm_limit]
    daemons: list[dict[str, Any]] = [{
        "id": r.id, "name": r.name, "host": r.host, "pid": r.pid,
        "running": cat_daemons.is_alive(r, now), "started_at": r.started_at,
        "heartbeat_at": r.heartbeat_at, "stopped_at": r.stopped_at,
        "last_action": r.last_action, "last_action_at": r.last_action_at,
        "backlog": r.backlog, "counts": r.counts, "directories": r.directories,
    } for r in rows]
    running = any(d["running"] for d in daemons)
    if fmt is OutputFormat.csv:
        emit([{k: v for k, v in d.items() if k not in ("counts", "directories")}
              for d in daemons],
             ("id", "name", "host", "pid", "running", "started_at", "heartbeat_at",
              "stopped_at", "last_action", "last_action_at", "backlog"), fmt)
    elif fmt is OutputFormat.json:
        doc = {"running": running, "daemons": daemons, "night": None if counts is None else {
            "night": counts.night, "frames": counts.frames, "masters": counts.masters,
            "products": counts.products, "quarantined": counts.quarantined_since_noon,
            "problems": problems},
            "alarms": alarms}
        sys.stdout.write(json.dumps(doc, default=lambda v: v.isoformat()
                                    if isinstance(v, dt.date | dt.datetime) else str(v),
                                    indent=1) + "\n")
    else:
        console = Console()
        if not daemons:
            console.print("no watch daemon has run on this catalogue")
        else:
            table = Table(title="watch daemons" + ("" if running else ": none running"))
            for col in ("host", "pid", "state", "since", "heartbeat", "backlog", "last action"):
                table.add_column(col, justify="right" if col in ("pid", "backlog") else "left")
            for d in daemons:
                state = "running" if d["running"] else (
                    "stopped" if d["stopped_at"] is not None else "dead (no heartbeat)")
                table.add_row(Text(printable(d["host"])), str(d["pid"]), state,
                              f"{d['started_at']:%Y-%m-%d %H:%M:%S}Z",
                              _ago(d["heartbeat_at"], now), str(d["backlog"]),
                              Text(f"{printable(d['last_action'])} "
                                   f"({_ago(d['last_action_at'], now)})"))
            console.print(table)
        if counts is not None:
            def _join(c: dict[str, int]) -> str:
                return ", ".join(f"{k} {v}" for k, v in sorted(c.items())) or "none"

            console.print(Text(f"night {counts.night}: frames: {_join(counts.frames)}; "
                               f"masters: {_join(counts.masters)}; products: "
                               f"{_join(counts.products)}; quarantined: "
                               f"{counts.quarantined_since_noon}"))
            console.print(Text(f"reduction problems: {_join(problems)}"
                               + (" (nightlog report; frames --problems)" if problems else "")))
        if alarms:
            console.print(f"{len(alarms)} open alarm(s) (nightlog calib alarms; "
                          "calib ack ID --note ...):")
            for a in alarms:
                console.print(Text(f"  alarm {a['id']}: {printable(alarm_text(a))}"))
        else:
            console.print("no open alarm")
    if require_running and not running:
        raise typer.Exit(code=ExitStatus.FAILED)
