"""Every help page nightlog draws is the page typer draws, byte for byte.

:mod:`nightlog.cli.help_panels` draws help pages without importing typer's
``rich_utils``; the reference here is typer's own ``rich_format_help``, run on the
same command and context, at two widths, in plain text and in colour.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import typer
from typer import rich_utils

from nightlog.cli import help_panels
from nightlog.cli.app import COMMANDS, app
from nightlog.cli.lazy import NightlogCommand, load_command
from nightlog.cli.reference import iter_commands


def _pages() -> Iterator[tuple[str, Any, typer.Context]]:
    root = typer.main.get_command(app)
    root_ctx = typer.Context(root, info_name="nightlog")
    yield "nightlog", root, root_ctx
    for path, command in iter_commands(root):
        parent = root_ctx
        for name in path[:-1]:
            parent = typer.Context(parent.command.get_command(parent, name), info_name=name,
                                   parent=parent)
        yield " ".join(("nightlog", *path)), command, typer.Context(
            command, info_name=path[-1], parent=parent)


def _draw(draw: Any, capsys: pytest.CaptureFixture[str], command: Any,
          ctx: typer.Context) -> str:
    # The root lists its commands' summaries (LazyGroup.format_help), both ways.
    summaries = hasattr(command, "_summaries_only")
    if summaries:
        command._summaries_only = True
    try:
        draw(command, ctx)
    finally:
        if summaries:
            command._summaries_only = False
    return capsys.readouterr().out


@pytest.mark.parametrize("colour", [False, True], ids=["plain", "colour"])
@pytest.mark.parametrize("columns", ["80", "132"])
def test_every_help_page_is_typers(columns: str, colour: bool, capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", columns)
    if colour:
        monkeypatch.setenv("FORCE_COLOR", "1")
        monkeypatch.setattr(rich_utils, "FORCE_TERMINAL", True)
    else:
        monkeypatch.delenv("FORCE_COLOR", raising=False)
        monkeypatch.setattr(rich_utils, "FORCE_TERMINAL", None)
    seen = 0
    for name, command, ctx in _pages():
        ours = _draw(help_panels.format_help, capsys, command, ctx)
        typers = _draw(lambda c, x: rich_utils.rich_format_help(obj=c, ctx=x, markup_mode="rich"),
                       capsys, command, ctx)
        assert ours == typers, name
        assert "Usage: " in ours and "Options" in ours, name
        assert ("\x1b[" in ours) is colour, name
        assert max(len(line) for line in ours.splitlines()) == int(columns) or colour, name
        seen += 1
    assert seen > len(COMMANDS)


def test_the_listed_commands_draw_their_own_help() -> None:
    for name in ("status", "frames", "nights", "match"):
        entry = next(c for c in COMMANDS if c.name == name)
        assert isinstance(load_command(entry), NightlogCommand), name
