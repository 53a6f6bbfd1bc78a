"""Help pages drawn as typer draws them, with only the rich modules a page needs.

typer renders ``--help`` in its ``rich_utils`` module, whose import also loads
rich's Markdown (markdown-it, Pygments) and traceback (attrs) renderers: about a
quarter of the start of ``nightlog status --help``, for a page that uses neither.
This module draws the same page (usage, help text, the Arguments and Options
panels, the Commands panel) in typer's "rich" markup mode, the mode every
nightlog command uses; ``tests/test_cli_help_panels.py`` compares the two
renderings of every command, byte for byte. Any other markup mode goes to typer.
"""

from __future__ import annotations

import inspect
import os
import re
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

from rich.align import Align
from rich.columns import Columns
from rich.console import Console, RenderableType, group
from rich.highlighter import RegexHighlighter
from rich.padding import Padding
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from rich.theme import Theme
from typer.core import TyperArgument, TyperGroup, TyperOption

__all__ = ["format_help"]

# The styles and words of typer's help pages.
_THEME = {"option": "bold cyan", "switch": "bold green", "negative_option": "bold magenta",
          "negative_switch": "bold red", "types": "bold yellow", "types_sep": "dim",
          "usage": "yellow"}
_STYLE_DEPRECATED = "red"
_STYLE_DEPRECATED_COMMAND = "dim"
_STYLE_HELPTEXT = "dim"
_STYLE_OPTION_DEFAULT = "dim"
_STYLE_OPTION_ENVVAR = "dim yellow"
_STYLE_REQUIRED_SHORT = "red"
_STYLE_REQUIRED_LONG = "dim red"
_STYLE_PANEL_BORDER = "dim"
_STYLE_COMMAND_NAME = "bold cyan"
_STYLE_TYPES = "bold yellow"
_DEPRECATED = "(deprecated) "
_ARGUMENTS, _OPTIONS, _COMMANDS = "Arguments", "Options", "Commands"
_EMOJI_CODE = re.compile(r"(:(\S*?)(?:(?:\-)(emoji|text))?:)")


class _OptionHighlighter(RegexHighlighter):
    highlights: ClassVar[list[str]] = [
        r"(^|\W)(?P<switch>\-\w+)(?![a-zA-Z0-9])",
        r"(^|\W)(?P<option>\-\-[\w\-]+)(?![a-zA-Z0-9])",
        r"(?P<types>\<[^\>]+\>)",
        r"(?P<usage>Usage: )",
    ]


class _NegativeOptionHighlighter(RegexHighlighter):
    highlights: ClassVar[list[str]] = [
        r"(^|\W)(?P<negative_switch>\-\w+)(?![a-zA-Z0-9])",
        r"(^|\W)(?P<negative_option>\-\-[\w\-]+)(?![a-zA-Z0-9])",
    ]


class _TypesHighlighter(RegexHighlighter):
    highlights: ClassVar[list[str]] = [
        r"^(?P<types_sep>(\[|<))",
        r"(?P<types_sep>\|)",
        r"(?P<types_sep>(\]|>))(\.\.\.)?$",
    ]


def _console() -> Console:
    """A console set up as typer's: its theme, and its environment switches."""
    width = os.getenv("TERMINAL_WIDTH")
    force = True if (os.getenv("GITHUB_ACTIONS") or os.getenv("FORCE_COLOR")
                     or os.getenv("PY_COLORS")) else None
    if os.getenv("_TYPER_FORCE_DISABLE_TERMINAL"):
        force = False
    return Console(theme=Theme(_THEME), highlighter=_OptionHighlighter(), color_system="auto",
                   force_terminal=force, width=int(width) if width else None)


def _rich_text(text: str, style: str = "") -> Text:
    text = inspect.cleandoc(text)
    if "\033[" in text:
        return _OptionHighlighter()(Text.from_ansi(text, style=style))
    return _OptionHighlighter()(_markup(text, style=style))


def _markup(text: str, style: str = "") -> Text:
    # rich replaces emoji codes (``:name:``, the pattern is rich's); a text without
    # one is marked up without loading rich's table of codes.
    return Text.from_markup(text, style=style, emoji=_EMOJI_CODE.search(text) is not None)


@group()
def _help_text(obj: Any) -> Iterable[Text]:
    if obj.deprecated:
        yield Text(_DEPRECATED, style=_STYLE_DEPRECATED)
    help_text = inspect.cleandoc(obj.help or "").partition("\f")[0]
    first, *rest = help_text.split("\n\n")
    if not first.startswith("\b"):
        first = first.replace("\n", " ")
    yield _rich_text(first.strip())
    if rest:
        yield Text("")
        yield _rich_text("\n\n".join(rest), style=_STYLE_HELPTEXT)


def _parameter_help(param: Any, ctx: Any) -> Columns:
    items: list[Text] = []
    envvar = getattr(param, "envvar", None)
    if envvar is None and (getattr(param, "allow_from_autoenv", None)
                           and getattr(ctx, "auto_envvar_prefix", None) is not None
                           and param.name):
        envvar = f"{ctx.auto_envvar_prefix}_{param.name.upper()}"
    var_str = "" if envvar is None else (
        envvar if isinstance(envvar, str) else ", ".join(str(d) for d in envvar))
    help_value: str | None = getattr(param, "help", None)
    if help_value:
        paragraphs = [p.replace("\n", " ").strip() if not p.startswith("\b")
                      else "{}\n".format(p.strip("\b\n")) for p in help_value.split("\n\n")]
        items.append(_rich_text("\n".join(paragraphs).strip()))
    if envvar and getattr(param, "show_envvar", None):
        items.append(Text(f"[env var: {var_str}]", style=_STYLE_OPTION_ENVVAR))
    if isinstance(param, TyperOption | TyperArgument):
        default_value = param._extract_default_help_str(ctx=ctx)
        show_default_is_str = isinstance(param.show_default, str)
        if show_default_is_str or (default_value is not None
                                   and (param.show_default or ctx.show_default)):
            default_str = param._get_default_string(
                ctx=ctx, show_default_is_str=show_default_is_str, default_value=default_value)
            if default_str:
                items.append(Text(f"[default: {default_str}]", style=_STYLE_OPTION_DEFAULT))
    if param.required:
        items.append(Text("[required]", style=_STYLE_REQUIRED_LONG))
    return Columns(items)


def _names(opts: Sequence[str], display_name: str | None) -> tuple[list[str], list[str]]:
    long = [o for o in opts if "--" in o]
    short = [display_name if display_name else o for o in opts if "--" not in o]
    return long, short


def _options_panel(name: str, params: Sequence[Any], ctx: Any, console: Console) -> None:
    if not params:
        return
    highlight, negative, types = (_OptionHighlighter(), _NegativeOptionHighlighter(),
                                  _TypesHighlighter())
    rows: list[list[RenderableType]] = []
    required_marks: list[str | Text] = []
    for param in params:
        display_name = None
        if isinstance(param, TyperArgument):
            display_name = param.display_name_raw
            if param.metavar is None and param.nargs != 1:
                display_name += "..."
        long, short = _names(param.opts, display_name)
        second_long, second_short = _names(param.secondary_opts, display_name)
        types_data = Text(style=_STYLE_TYPES, overflow="fold")
        display_type = param.display_type_rich(ctx=ctx)
        if display_type is not None:
            types_data.append(display_type)
        range_str = param._get_number_range_help_str()
        if range_str:
            types_data.append(f" [{range_str}]")
        required_marks.append(Text("*", style=_STYLE_REQUIRED_SHORT) if param.required else "")
        rows.append([highlight(",".join(long)), highlight(",".join(short)),
                     negative(",".join(second_long)), negative(",".join(second_short)),
                     types(types_data), _parameter_help(param, ctx)])
    if any(required_marks):
        rows = [[mark, *row] for mark, row in zip(required_marks, rows, strict=True)]
    table = Table(highlight=True, show_header=False, expand=True, box=None, show_lines=False,
                  leading=0, border_style=None, row_styles=None, pad_edge=False,
                  padding=(0, 1))
    for row in rows:
        table.add_row(*row)
    console.print(Panel(table, border_style=_STYLE_PANEL_BORDER, title=_markup(name),
                        title_align="left"))


def _commands_panel(name: str, commands: Sequence[Any], console: Console, width: int) -> None:
    table = Table(highlight=False, show_header=False, expand=True, box=None, show_lines=False,
                  leading=0, border_style=None, row_styles=None, pad_edge=False,
                  padding=(0, 1))
    table.add_column(style=_STYLE_COMMAND_NAME, no_wrap=True, width=width)
    table.add_column("Description", justify="left", no_wrap=False, ratio=10)
    rows: list[list[RenderableType | None]] = []
    deprecated: list[Text | None] = []
    for command in commands:
        paragraphs = inspect.cleandoc(command.short_help or command.help or "").split("\n\n")
        if paragraphs[0].startswith("\b"):
            paragraphs[0] = paragraphs[0].replace("\b\n", "")
        label = command.name or ""
        if command.deprecated:
            rows.append([Text(label, style=_STYLE_DEPRECATED_COMMAND),
                         _rich_text(paragraphs[0].strip())])
            deprecated.append(Text(_DEPRECATED, style=_STYLE_DEPRECATED))
        else:
            rows.append([Text(label), _rich_text(paragraphs[0].strip())])
            deprecated.append(None)
    if any(deprecated):
        rows = [[*row, mark] for row, mark in zip(rows, deprecated, strict=True)]
    for row in rows:
        table.add_row(*row)
    if table.row_count:
        console.print(Panel(table, border_style=_STYLE_PANEL_BORDER, title=_markup(name),
                            title_align="left"))


def _by_panel(items: Iterable[Any], default: str) -> dict[str, list[Any]]:
    panels: dict[str, list[Any]] = {default: []}
    for item in items:
        panels.setdefault(getattr(item, "rich_help_panel", None) or default, []).append(item)
    return panels


def format_help(obj: Any, ctx: Any) -> None:
    """Print the help page of ``obj`` (a typer command or group) as typer prints it.

    Parameters
    ----------
    obj : typer.core.TyperCommand or typer.core.TyperGroup
        The command whose page is shown; its ``rich_markup_mode`` must be ``"rich"``.
    ctx : typer.Context
        Its context (the usage line and the defaults shown come from it).
    """
    console = _console()
    console.print(Padding(_OptionHighlighter()(obj.get_usage(ctx)), 1), style="bold")
    if obj.help:
        console.print(Padding(Align(_help_text(obj), pad=False), (0, 1, 1, 1)))
    shown = [p for p in obj.get_params(ctx) if not getattr(p, "hidden", False)]
    for panel, params in _by_panel((p for p in shown if isinstance(p, TyperArgument)),
                                   _ARGUMENTS).items():
        _options_panel(panel, params, ctx, console)
    for panel, params in _by_panel((p for p in shown if isinstance(p, TyperOption)),
                                   _OPTIONS).items():
        _options_panel(panel, params, ctx, console)
    if isinstance(obj, TyperGroup):
        listed = (obj.get_command(ctx, name) for name in obj.list_commands(ctx))
        panels = _by_panel((c for c in listed if c and not c.hidden), _COMMANDS)
        width = max((len(c.name or "") for cs in panels.values() for c in cs), default=0)
        for panel, commands in panels.items():
            _commands_panel(panel, commands, console, width)
    if obj.epilog:
        epilogue = _rich_text("\n\n".join(obj.epilog.split("\n\n")))
        console.print(Padding(Align(epilogue, pad=False), 1))
