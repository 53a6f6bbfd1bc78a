"""``nightlog quarantine``: files that could not be ingested, and why."""

from __future__ import annotations

from typing import Annotated

import typer

from nightlog.catalogue.engine import make_sessionmaker
from nightlog.catalogue.quarantine import list_quarantined
from nightlog.cli.output import OutputFormat, emit
from nightlog.cli.state import state_of

app = typer.Typer()


@app.command("quarantine")
def quarantine_cmd(
    ctx: typer.Context,
    all_: Annotated[bool, typer.Option("--all", help="Include files that have since been "
                                       "ingested (resolved).")] = False,
    fmt: Annotated[OutputFormat, typer.Option("--format", help="Output format.")] =
        OutputFormat.table,
) -> None:
    """List files that could not be ingested, with the reason and when they were seen."""
    engine = state_of(ctx).engine(must_exist=True)
    with make_sessionmaker(engine)() as session:
        rows = [{"path": q.path, "error": q.error, "reason": q.reason, "size": q.size,
                 "sha256": q.sha256, "first_seen": q.first_seen.isoformat(),
                 "last_seen": q.last_seen.isoformat(), "times_seen": q.times_seen,
                 "resolved_at": q.resolved_at.isoformat() if q.resolved_at else None}
                for q in list_quarantined(session, include_resolved=all_)]
    emit(rows, ("path", "error", "reason", "last_seen", "times_seen"), fmt,
         title=f"{len(rows)} quarantined file(s)")
