"""``nightlog notify``: send the pending notifications now, or a test event."""

from __future__ import annotations

from typing import Annotated

import typer

from nightlog.catalogue.engine import make_sessionmaker
from nightlog.cli.state import state_of
from nightlog.notify.events import queue_event
from nightlog.notify.notifier import deliver_pending

app = typer.Typer()


@app.command("notify")
def notify_cmd(
    ctx: typer.Context,
    test: Annotated[bool, typer.Option(
        "--test", help="First queue a 'morning-summary' event saying this is a test.")]
        = False,
) -> None:
    """Send the pending notifications to the configured webhooks and mail relay now."""
    state = state_of(ctx)
    engine = state.engine(must_exist=True)
    notify = state.settings.notify
    if not notify.any:
        typer.echo("no webhook ([[notify.webhooks]]) or mail relay ([notify.smtp]) "
                   "configured: nothing sent", err=True)
        raise typer.Exit(code=1)
    if test:
        with make_sessionmaker(engine)() as session, session.begin():
            queue_event(session, "morning-summary", "nightlog: a test notification",
                        {"test": True})
    report = deliver_pending(engine, notify, limit=1000)
    typer.echo(f"{report.sent} sent, {report.failed} failed, {report.pending} left pending "
               f"({len(notify.webhooks)} webhook(s)"
               + (", mail" if notify.mail is not None else "") + ")")
    if report.failed:
        raise typer.Exit(code=1)
