"""Commands registered by name and loaded on first use, so that the CLI starts at once.

The root command lists every sub-command from a small table (name, module, one-line
summary) without importing any command module: ``nightlog --help`` and
``nightlog --version`` import neither SQLAlchemy nor the scientific stack, and a
command pays only for the modules it uses. Each command module keeps its own
``app = typer.Typer(...)``; registering a new one is one :class:`LazyCommand` line.

The parser, the contexts and the usage errors are typer's own (typer carries its
copy of click); help pages are drawn by :mod:`nightlog.cli.help_panels`.
"""

from __future__ import annotations

import copy
import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import get_close_matches
from typing import Any

import typer
import typer.core
from typer import _click as click
from typer._click.exceptions import UsageError
from typer.core import TyperCommand, TyperGroup

from nightlog.cli.unset_options import convert_when_given

__all__ = ["LazyCommand", "LazyGroup", "NightlogCommand", "load_command"]


def _draws_panels(command: TyperCommand | TyperGroup) -> bool:
    return typer.core.HAS_RICH and command.rich_markup_mode == "rich"


class NightlogCommand(TyperCommand):
    """A typer command that starts light: its help page drawn by
    :mod:`nightlog.cli.help_panels`, its unset options not converted
    (:mod:`nightlog.cli.unset_options`)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        convert_when_given(self.get_params(ctx))
        return super().parse_args(ctx, args)

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        if not _draws_panels(self):
            return super().format_help(ctx, formatter)
        from nightlog.cli.help_panels import format_help

        format_help(self, ctx)
        return None


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
    """A typer group whose sub-commands come from :attr:`lazy_commands`, loaded on use.

    Like :class:`NightlogCommand`, it draws its help with :mod:`nightlog.cli.help_panels`
    and converts only the options given (the root's are processed before any command's).
    """

    lazy_commands: Sequence[LazyCommand] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._summaries_only = False

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        convert_when_given(self.get_params(ctx))
        return super().parse_args(ctx, args)

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
            return TyperCommand(entry.name, help=entry.summary, short_help=entry.summary)
        command = load_command(entry)
        self.add_command(command, entry.name)
        return command

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # The listing shows each summary; no command module is imported for it.
        self._summaries_only = True
        try:
            if _draws_panels(self):
                from nightlog.cli.help_panels import format_help

                format_help(self, ctx)
            else:
                super().format_help(ctx, formatter)
        finally:
            self._summaries_only = False

    def resolve_command(self, ctx: click.Context,
                        args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except UsageError as exc:
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
        # An app of one command, merged into the root as ``add_typer`` without a name does
        # (a NightlogCommand unless the module chose a class).
        info = copy.copy(commands[0])
        if info.cls in (None, TyperCommand):
            info.cls = NightlogCommand
        command = typer.main.get_command_from_info(
            info, pretty_exceptions_short=sub_app.pretty_exceptions_short,
            rich_markup_mode=sub_app.rich_markup_mode)
    else:
        # A group, as ``add_typer(app, name=...)`` builds it (no completion options).
        command = typer.main.get_group(sub_app)
    command.name = entry.name
    return command
