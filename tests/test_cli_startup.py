"""The CLI starts at once: its root imports none of the heavy stack, and still lists
every command (the listing comes from the registry, the commands load on use)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import typer

from nightlog.cli.app import COMMANDS, app
from nightlog.cli.lazy import load_command

HEAVY = ("astropy", "scipy", "matplotlib", "astroscrappy", "dask", "distributed", "numpy",
         "sqlalchemy", "alembic")
LIGHT_COMMANDS = ("status", "frames", "nights", "match")


def _imported_after(code: str) -> set[str]:
    probe = (f"import sys\n{code}\nimport json\n"
             f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True, timeout=120)
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_importing_the_cli_imports_no_heavy_module() -> None:
    assert not _imported_after("import nightlog.cli.app") & set(HEAVY)


def test_version_and_help_import_no_heavy_module() -> None:
    for args in (["--version"], ["--help"]):
        code = ("from nightlog.cli.app import app\n"
                f"try:\n    app({args!r})\nexcept SystemExit:\n    pass")
        assert not _imported_after(code) & set(HEAVY), args


def test_listing_commands_load_without_the_catalogue_or_scientific_stack() -> None:
    # status, frames, nights and match import the catalogue (SQLAlchemy) in their
    # bodies: parsing their command line, and their --help, pay for neither.
    for name in LIGHT_COMMANDS:
        code = ("from nightlog.cli.app import COMMANDS\n"
                "from nightlog.cli.lazy import load_command\n"
                f"load_command(next(c for c in COMMANDS if c.name == {name!r}))")
        assert not _imported_after(code) & set(HEAVY), name


def test_listing_commands_help_imports_no_heavy_module() -> None:
    for name in LIGHT_COMMANDS:
        code = ("from nightlog.cli.app import app\n"
                f"try:\n    app([{name!r}, '--help'])\nexcept SystemExit:\n    pass")
        assert not _imported_after(code) & set(HEAVY), name


def test_help_lists_every_command_with_its_own_summary() -> None:
    done = subprocess.run([sys.executable, "-m", "nightlog", "--help"], capture_output=True,
                          text=True, check=True, timeout=120,
                          env=os.environ | {"COLUMNS": "200"})
    listed = re.findall(r"^│ (\S+)\s{2,}", done.stdout, re.M)
    names = [c.name for c in COMMANDS]
    assert [n for n in listed if n in names] == names
    for entry in COMMANDS:
        command = load_command(entry)
        first = (command.help or "").strip().split("\n\n")[0]
        assert " ".join(first.split()) == entry.summary, entry.name


def test_loaded_commands_are_the_ones_the_cli_runs() -> None:
    root = typer.main.get_command(app)
    ctx = typer.Context(root)
    assert root.list_commands(ctx) == [c.name for c in COMMANDS]
    for entry in COMMANDS:
        assert root.get_command(ctx, entry.name).name == entry.name
