"""``nightlog quarantine``: files that could not be ingested, and why."""

from __future__ import annotations

from typing import Annotated

import typer

from nightlog.cli.output import OutputFormat, emit
from nightlog.cli.pages import DEFAULT_LIMIT, Page
from nightlog.cli.state import state_of

app = typer.Typer()


@app.command("quarantine")
def quarantine_cmd(
    ctx: typer.Context,
    all_: Annotated[bool, typer.Option("--all", help="Include files that have since been "
                                       "ingested (resolved).")] = False,
    limit: Annotated[int, typer.Option(
        min=0, help="At most this many files, the most recently seen first; 0 lists every "
        "one. When files are left out, stderr says so and how to list the next ones.")]
        = DEFAULT_LIMIT,
    after: Annotated[int | None, typer.Option(
        help="List the files after this one (an id: the last of the previous page).")]
        = None,
    oldest_first: Annotated[bool, typer.Option(
        "--oldest-first", help="The least recently seen first (the most recent come "
        "first).")] = False,
    fmt: Annotated[OutputFormat, typer.Option("--format", help="Output format.")] =
        OutputFormat.table,
) -> None:
    """List files that could not be ingested, with the reason and when they were seen."""
    # The catalogue (and SQLAlchemy) is imported when the command runs, not for --help.
    from nightlog.catalogue.engine import make_sessionmaker
    from nightlog.catalogue.quarantine import QUARANTINE_FIELDS, iter_quarantine_records

    engine = state_of(ctx).engine(must_exist=True)
    page = Page(limit, "quarantined file(s)")
    with make_sessionmaker(engine)() as session:
        rows = page.cut(iter_quarantine_records(
            session, include_resolved=all_, newest_first=not oldest_first, after_id=after,
            limit=page.asked))
        if fmt is OutputFormat.table:
            listed = list(rows)
            emit(listed, ("id", "path", "error", "reason", "last_seen", "times_seen"), fmt,
                 title=f"{len(listed)} quarantined file(s)")
        else:  # written as the rows are read
            emit(rows, QUARANTINE_FIELDS, fmt)
    page.note(oldest_first)
