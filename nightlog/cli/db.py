"""``nightlog db``: create and upgrade the catalogue schema, refresh its statistics."""

from __future__ import annotations

import typer

from nightlog.catalogue.planner_statistics import analyze_all
from nightlog.catalogue.schema import current_revision, head_revision, upgrade
from nightlog.cli.state import state_of

app = typer.Typer(help="Create, upgrade and inspect the catalogue database schema; refresh "
                       "its planner statistics.", no_args_is_help=True)


@app.command("upgrade")
def upgrade_cmd(ctx: typer.Context) -> None:
    """Create the catalogue or upgrade it to the schema of this nightlog version."""
    state = state_of(ctx)
    engine = state.engine(check_schema=False)
    before, after = upgrade(engine)
    where = state.settings.safe_database_url
    if before == after:
        typer.echo(f"{where}: already at revision {after}")
    else:
        typer.echo(f"{where}: upgraded from {before or 'an empty database'} to {after}")


@app.command("current")
def current_cmd(ctx: typer.Context) -> None:
    """Show the schema revision of the catalogue and whether it is up to date."""
    state = state_of(ctx)
    engine = state.engine(check_schema=False)
    current = current_revision(engine)
    head = head_revision()
    status = "up to date" if current == head else "behind: run 'nightlog db upgrade'"
    typer.echo(f"{state.settings.safe_database_url}: revision {current or '(empty)'}, "
               f"newest {head} ({status})")


@app.command("analyze")
def analyze_cmd(ctx: typer.Context) -> None:
    """Refresh the query planner's statistics of every catalogue table.

    Nightlog refreshes them itself after a batch that changed a table by more than a
    tenth (ingest, master builds, reductions); run this after changing the
    catalogue by other means, such as a restore or a bulk load.
    """
    state = state_of(ctx)
    tables = analyze_all(state.engine())
    typer.echo(f"{state.settings.safe_database_url}: statistics refreshed for "
               f"{len(tables)} table(s)")
