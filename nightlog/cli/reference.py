"""The CLI reference in Markdown, generated from the typer app.

``python -m nightlog.cli.reference > docs/cli.md`` rewrites the page;
``tests/test_docs.py`` fails when the committed page is stale.
"""

from __future__ import annotations

import click
import typer

__all__ = ["iter_commands", "render_reference"]


def iter_commands(group: click.Group, prefix: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    """Yield ``(path, command)`` for every command under ``group``, depth first."""
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if command is None or command.hidden:
            continue
        path = (*prefix, name)
        yield path, command
        if isinstance(command, click.Group):
            yield from iter_commands(command, path)


def _param_line(param: click.Parameter) -> str:
    if isinstance(param, click.Argument):
        name = param.human_readable_name.upper()
        many = "..." if param.nargs == -1 else ""
        req = "required" if param.required else "optional"
        return f"- `{name}{many}` ({req})"
    assert isinstance(param, click.Option)
    flags = ", ".join(f"`{o}`" for o in [*param.opts, *param.secondary_opts])
    text = (param.help or "").strip()
    default = ""
    if param.show_default is not False and not param.is_flag and param.default not in (None, ()):
        value = param.default.value if hasattr(param.default, "value") else param.default
        default = f" [default: {value}]"
    return f"- {flags}: {text}{default}"


def render_reference(app: typer.Typer) -> str:
    """Markdown for every command of ``app``: usage, help, arguments and options."""
    root = typer.main.get_command(app)
    assert isinstance(root, click.Group)
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
        ctx = click.Context(command, info_name=full)
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
