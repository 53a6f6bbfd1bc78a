"""Commands registered by name and loaded on first use, so that the CLI starts at once.

The root command lists every sub-command from a small table (name, module, one-line
summary) without importing any command module: ``nightlog --help`` and
``nightlog --version`` import neither SQLAlchemy nor the scientific stack, and a
command pays only for the modules it uses. Each command module keeps its own
``app = typer.Typer(...)``; registering a new one is one :class:`LazyCommand` line.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import get_close_matches
from typing import Any

import click
import typer
from typer.core import TyperGroup

__all__ = ["LazyCommand", "LazyGroup", "load_command"]


@dataclass(frozen=True, slots=True)
class LazyCommand:
    """A sub-command known by name before its module is imported.

    ``module`` holds ``app``, a :class:`typer.Typer`: a group (``calib``, ``db``)
    or an app of one command named ``name``. ``summary`` is what ``--help`` lists:
    the first paragraph of the command's help (a test keeps the two equal).
    """

    name: str
    module: str
    summary: str


class LazyGroup(TyperGroup):
    """A typer group whose sub-commands come from :attr:`lazy_commands`, loaded on use."""

    lazy_commands: Sequence[LazyCommand] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._summaries_only = False

    def _entry(self, name: str) -> LazyCommand | None:
        return next((c for c in self.lazy_commands if c.name == name), None)

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = super().list_commands(ctx)
        return names + [c.name for c in self.lazy_commands if c.name not in names]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        entry = self._entry(cmd_name)
        if found is not None or entry is None:
            return found
        if self._summaries_only:
            return click.Command(entry.name, help=entry.summary, short_help=entry.summary)
        command = load_command(entry)
        self.add_command(command, entry.name)
        return command

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # The listing shows each summary; no command module is imported for it.
        self._summaries_only = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._summaries_only = False

    def resolve_command(self, ctx: click.Context,
                        args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as exc:
            if args and "Did you mean" not in exc.message:
                matches = get_close_matches(args[0], self.list_commands(ctx))
                if matches:
                    exc.message = (exc.message.rstrip(".") + ". Did you mean "
                                   + ", ".join(repr(m) for m in matches) + "?")
            raise


def load_command(entry: LazyCommand) -> click.Command:
    """Import ``entry.module`` and return its command (or group) named ``entry.name``.

    Parameters
    ----------
    entry : LazyCommand
        The registered command.

    Returns
    -------
    click.Command
        The command typer builds from the module's ``app``.
    """
    sub_app: typer.Typer = importlib.import_module(entry.module).app
    commands = sub_app.registered_commands
    if len(commands) == 1 and not (sub_app.registered_groups or sub_app.registered_callback):
        # An app of one command, merged into the root as ``add_typer`` without a name does.
        command = typer.main.get_command_from_info(
            commands[0], pretty_exceptions_short=sub_app.pretty_exceptions_short,
            rich_markup_mode=sub_app.rich_markup_mode)
    else:
        # A group, as ``add_typer(app, name=...)`` builds it (no completion options).
        command = typer.main.get_group(sub_app)
    command.name = entry.name
    return command
