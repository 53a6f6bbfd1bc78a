"""The CLI reference in Markdown, generated from the typer app.

``python -m nightlog.cli.reference > docs/cli.md`` rewrites the page;
``tests/test_docs.py`` fails when the committed page is stale.
"""

from __future__ import annotations

import os
from typing import Any

import typer

__all__ = ["iter_commands", "render_reference"]


def _is_group(command: Any) -> bool:
    return hasattr(command, "list_commands")


def iter_commands(group: Any, prefix: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    """Yield ``(path, command)`` for every command under ``group``, depth first."""
    ctx = typer.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if command is None or command.hidden:
            continue
        path = (*prefix, name)
        yield path, command
        if _is_group(command):
            yield from iter_commands(command, path)


def _default(param: Any) -> str:
    value = getattr(param, "default", None)
    if value is not None and hasattr(value, "value"):  # an Enum choice
        value = value.value
    if value is None or value == () or getattr(param, "is_flag", False):
        return ""
    if not isinstance(value, str | int | float | os.PathLike):
        return ""
    return f" [default: {value}]"


def _param_line(param: Any) -> str:
    text = (getattr(param, "help", None) or "").strip()
    if param.param_type_name == "argument":
        name = str(param.name).upper()
        many = "..." if param.nargs == -1 else ""
        req = "required" if param.required else "optional"
        return f"- `{name}{many}` ({req}): {text}{_default(param)}"
    flags = ", ".join(f"`{o}`" for o in [*param.opts, *param.secondary_opts])
    return f"- {flags}: {text}{_default(param)}"


def render_reference(app: typer.Typer) -> str:
    """Markdown for every command of ``app``: usage, help, arguments and options."""
    root = typer.main.get_command(app)
    assert _is_group(root)
    lines = [
        "# Command reference",
        "",
        "Generated from the command-line interface by `python -m nightlog.cli.reference`;",
        "a test fails when this page is stale.",
        "",
        "## nightlog",
        "",
        (root.help or "").strip(),
        "",
    ]
    lines += [_param_line(p) for p in root.params if p.name not in ("help",)]
    lines.append("")
    for path, command in iter_commands(root):
        full = " ".join(("nightlog", *path))
        lines += [f"## {full}", ""]
        ctx = typer.Context(command, info_name=full)
        lines += ["```", command.get_usage(ctx).replace("Usage: ", ""), "```", ""]
        lines += [(command.help or "").strip(), ""]
        params = [p for p in command.params if p.name != "help"]
        if params:
            lines += [_param_line(p) for p in params]
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    from nightlog.cli.app import app as _app

    print(render_reference(_app), end="")
