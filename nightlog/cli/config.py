"""``nightlog config``: the effective configuration, and checking it without running."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from nightlog.cli.output import OutputFormat, emit, printable
from nightlog.cli.state import state_of
from nightlog.settings_report import check_config, effective_config

app = typer.Typer(help="Show the effective configuration and check it.",
                  no_args_is_help=True)


@app.command("show")
def show_cmd(
    ctx: typer.Context,
    fmt: Annotated[OutputFormat, typer.Option("--format", help="Output format.")] =
        OutputFormat.table,
) -> None:
    """Show every setting's effective value and where it came from (file, environment,
    default); passwords are shown as ***."""
    found = effective_config(state_of(ctx).config_path)
    if fmt is OutputFormat.json:
        typer.echo(json.dumps(found.as_dict(), ensure_ascii=False, indent=1))
        return
    rows = [{"key": v.key, "value": v.value if isinstance(v.value, str | int | float | None)
             else json.dumps(v.value, ensure_ascii=False), "source": v.source}
            for v in found.values]
    if fmt is OutputFormat.csv:
        emit(rows, ("key", "value", "source"), fmt)
        return
    console = Console()
    where = "none" if found.path is None else str(found.path)
    console.print(Text(printable(f"configuration file: {where} (found by {found.found_by})")))
    emit(rows, ("key", "value", "source"), fmt, console=console)


@app.command("check")
def check_cmd(ctx: typer.Context) -> None:
    """Check the configuration as every command would (settings and instrument profiles),
    without opening the catalogue; exit status 2 and the problem when it is invalid."""
    state = state_of(ctx)
    settings = check_config(state.config_path)
    where = "built-in defaults" if settings.config_path is None else str(settings.config_path)
    typer.echo(printable(f"configuration valid: {where}"))
