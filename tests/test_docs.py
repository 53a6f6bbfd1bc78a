"""The docs are tested: the CLI reference is current, every command has help and a
page, and the README's two commands are the ones CI runs."""

from __future__ import annotations

import re
from pathlib import Path

import typer

from nightlog.cli.app import app
from nightlog.cli.reference import iter_commands, render_reference

ROOT = Path(__file__).resolve().parents[1]


def test_cli_reference_is_current() -> None:
    committed = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert committed == render_reference(app), (
        "docs/cli.md is stale: run 'python -m nightlog.cli.reference > docs/cli.md'"
    )


def test_every_command_and_option_has_help() -> None:
    root = typer.main.get_command(app)
    commands = list(iter_commands(root))
    assert len(commands) >= 8
    for path, command in commands:
        assert (command.help or "").strip(), f"'nightlog {' '.join(path)}' has no help"
        for param in command.params:
            if param.param_type_name == "option" and param.name != "help":
                assert (param.help or "").strip(), (
                    f"option {param.opts} of 'nightlog {' '.join(path)}' has no help"
                )


def test_every_command_appears_in_the_docs() -> None:
    reference = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    root = typer.main.get_command(app)
    for path, _ in iter_commands(root):
        assert f"## nightlog {' '.join(path)}" in reference


def test_readme_opens_with_the_two_commands() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```sh\n(.*?)```", text, re.S)
    assert block is not None and text.index(block.group(0)) < 40, "README must open with them"
    first, second = block.group(1).strip().splitlines()
    assert "pip install ." in first and first.endswith("nightlog demo")
    assert "'.[test]'" in second and "pytest" in second
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    pattern = re.search(r"grep -m1 -E '([^']+)' README.md", ci)
    assert pattern is not None
    assert re.search(pattern.group(1), second) and not re.search(pattern.group(1), first)


def test_docs_index_links_resolve() -> None:
    for page in (ROOT / "docs").glob("*.md"):
        for target in re.findall(r"\]\(([^)#]+\.md)\)", page.read_text(encoding="utf-8")):
            assert (page.parent / target).is_file(), f"{page.name} links to missing {target}"
