"""``nightlog serve``: the live web view of the archive."""

from __future__ import annotations

from typing import Annotated

import typer

from nightlog.cli.state import state_of
from nightlog.web.server import DEFAULT_HOST, DEFAULT_PORT, serve

app = typer.Typer()


@app.command("serve")
def serve_cmd(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(
        help="Address to listen on; any but a loopback address needs a token.")] =
        DEFAULT_HOST,
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] =
        DEFAULT_PORT,
    token: Annotated[str | None, typer.Option(
        envvar="NIGHTLOG_SERVE_TOKEN", show_default=False, show_envvar=True,
        help="Token every request must carry (at least 16 letters, digits or '._~-'); "
             "prefer the environment variable, which other users cannot see.")] = None,
) -> None:
    """Serve a live, read-only web view of tonight: frames as they arrive, masters,
    problems, quarantine, the daemon's state; older nights and each frame's
    provenance.

    Open http://127.0.0.1:8765/ (with a token: once with ?token=TOKEN). The page
    follows the catalogue by itself. Stop with Ctrl-C.
    """
    state = state_of(ctx)
    engine = state.engine(must_exist=True)
    serve(state.settings, host=host, port=port, token=token, engine=engine)
