"""``nightlog calib fence | fences | alarms | ack``: hardware changes and detector health.

Registered on the ``calib`` group by :mod:`nightlog.cli.calib`.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from nightlog.catalogue.alarms import acknowledge_alarm, alarm_record, list_alarms
from nightlog.catalogue.engine import make_sessionmaker
from nightlog.catalogue.fences import add_fence, list_fences
from nightlog.cli.options import parse_date, parse_time
from nightlog.cli.output import OutputFormat, emit
from nightlog.cli.state import state_of

__all__ = ["ack_cmd", "alarms_cmd", "fence_cmd", "fences_cmd"]

ALARM_COLUMNS = ("id", "night", "kind", "filter", "metric", "amplifier", "value",
                 "uncertainty", "low", "high", "n_points", "master", "state")


def fence_cmd(
    ctx: typer.Context,
    at: Annotated[str, typer.Option("--at", help="When the hardware changed (ISO, UTC "
                                    "unless an offset is given).")],
    reason: Annotated[str, typer.Option(help="What changed (camera serviced, filter wheel "
                                        "changed, ...).")],
    instrument: Annotated[str | None, typer.Option(help="Only this instrument (default: "
                                                   "every instrument).")] = None,
    setup: Annotated[str | None, typer.Option(help="Only this set-up key of the "
                                              "instrument.")] = None,
) -> None:
    """Record a hardware change: no master is matched across it, trend bands restart."""
    when = parse_time(at)
    assert when is not None
    engine = state_of(ctx).engine(must_exist=True)
    with make_sessionmaker(engine)() as session, session.begin():
        fence = add_fence(session, when, reason, instrument=instrument, setup_key=setup)
        fence_id, fence_at = fence.id, fence.at
    typer.echo(f"fence {fence_id} at {fence_at.isoformat()}: {reason}")


def fences_cmd(
    ctx: typer.Context,
    instrument: Annotated[str | None, typer.Option(help="Only fences of this instrument "
                                                   "(and of every instrument).")] = None,
    fmt: Annotated[OutputFormat, typer.Option("--format", help="Output format.")] =
        OutputFormat.table,
) -> None:
    """List the hardware-change fences, oldest first."""
    engine = state_of(ctx).engine(must_exist=True)
    with make_sessionmaker(engine)() as session:
        rows: list[dict[str, Any]] = [
            {"id": f.id, "at": f.at.isoformat(), "reason": f.reason,
             "instrument": f.instrument, "setup": f.setup_key,
             "created_at": f.created_at.isoformat()}
            for f in list_fences(session, instrument=instrument)]
    emit(rows, ["id", "at", "instrument", "setup", "reason"], fmt,
         title=f"{len(rows)} fence(s)")


def alarms_cmd(
    ctx: typer.Context,
    since: Annotated[str | None, typer.Option(help="First night (YYYY-MM-DD).")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Include acknowledged alarms.")] = False,
    fmt: Annotated[OutputFormat, typer.Option("--format", help="Output format.")] =
        OutputFormat.table,
) -> None:
    """List detector-health alarms: master figures outside their normal band."""
    engine = state_of(ctx).engine(must_exist=True)
    with make_sessionmaker(engine)() as session:
        rows = [alarm_record(a) for a in list_alarms(session, since=parse_date(since),
                                                     include_acknowledged=all_)]
    emit(rows, ALARM_COLUMNS, fmt, title=f"{len(rows)} alarm(s)")


def ack_cmd(
    ctx: typer.Context,
    alarm_id: Annotated[int, typer.Argument(help="Alarm id.")],
    note: Annotated[str, typer.Option(help="What was found or done.")],
) -> None:
    """Acknowledge an alarm, with a note; it leaves the open alarms."""
    engine = state_of(ctx).engine(must_exist=True)
    with make_sessionmaker(engine)() as session, session.begin():
        acknowledge_alarm(session, alarm_id, note)
    typer.echo(f"alarm {alarm_id} acknowledged")
