"""The CLI starts at once: its root imports none of the heavy stack, and still lists
every command (the listing comes from the registry, the commands load on use).

``--version`` imports neither typer nor rich; ``--help`` and the listing commands'
``--help`` import none of what typer loads only for other uses: pydantic (its
converters, built for options given), typer's ``rich_utils`` with rich's Markdown
and traceback renderers, and the standalone click (typer carries its own)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import typer

from nightlog.cli.app import COMMANDS, app
from nightlog.cli.lazy import load_command

HEAVY = ("astropy", "scipy", "matplotlib", "astroscrappy", "dask", "distributed", "numpy",
         "sqlalchemy", "alembic")
LIGHT_COMMANDS = ("status", "frames", "nights", "match")
#: Modules (and packages) no help page needs.
NOT_FOR_HELP = ("pydantic", "pydantic_core", "typer.rich_utils", "rich.markdown",
                "rich.traceback", "rich.pretty", "rich.syntax", "markdown_it", "pygments",
                "click", "attr")


def _modules_after(code: str) -> set[str]:
    probe = (f"import sys\n{code}\nimport json\n"
             "print(json.dumps(sorted(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True, timeout=120)
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def _imported_after(code: str) -> set[str]:
    return {m.split(".")[0] for m in _modules_after(code)}


def _help_imports(args: list[str]) -> set[str]:
    """What running the CLI on ``args`` (a help page) imports of :data:`NOT_FOR_HELP`."""
    code = ("from nightlog.cli.entry import main\n"
            f"try:\n    main({args!r})\nexcept SystemExit:\n    pass")
    modules = _modules_after(code)
    return {m for m in NOT_FOR_HELP
            if m in modules or any(n.startswith(m + ".") for n in modules)}


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


def test_calib_and_reduce_help_import_no_scientific_stack() -> None:
    # Their commands import the coordinator (astropy, scipy, ...) when they run.
    for name in ("calib", "reduce"):
        code = ("from nightlog.cli.entry import main\n"
                f"try:\n    main([{name!r}, '--help'])\nexcept SystemExit:\n    pass")
        assert not _imported_after(code) & {"astropy", "scipy", "matplotlib", "astroscrappy",
                                            "dask", "distributed"}, name


def test_version_imports_neither_typer_nor_rich() -> None:
    imported = _imported_after("from nightlog.cli.entry import main\nmain(['--version'])")
    assert not imported & {"typer", "rich", "click", *HEAVY}


def test_version_is_the_same_on_both_paths() -> None:
    # Alone it is answered before typer loads; with other options typer answers it.
    import nightlog

    alone = subprocess.run([sys.executable, "-m", "nightlog", "--version"],
                           capture_output=True, text=True, check=True, timeout=120)
    with_config = subprocess.run(
        [sys.executable, "-m", "nightlog", "--config", "absent.toml", "--version"],
        capture_output=True, text=True, check=True, timeout=120)
    assert alone.stdout == with_config.stdout == f"nightlog {nightlog.__version__}\n"
    assert alone.stderr == with_config.stderr == ""


def test_help_pages_import_nothing_a_help_page_does_not_need() -> None:
    assert _help_imports(["--help"]) == set()
    for name in LIGHT_COMMANDS:
        assert _help_imports([name, "--help"]) == set(), name


def test_a_given_option_is_still_converted_and_checked() -> None:
    # The root's options are converted only when given: given, typer checks them.
    done = subprocess.run([sys.executable, "-m", "nightlog", "--config", sys.prefix, "status"],
                          capture_output=True, text=True, timeout=120,
                          env=os.environ | {"COLUMNS": "200"})
    assert done.returncode == 2
    assert "Invalid value for '--config' / '-c'" in done.stderr
    assert "is a directory" in done.stderr


def test_a_mistyped_command_is_told_the_one_meant() -> None:
    done = subprocess.run([sys.executable, "-m", "nightlog", "statu"], capture_output=True,
                          text=True, timeout=120, env=os.environ | {"COLUMNS": "200"})
    assert done.returncode == 2
    assert "No such command 'statu'. Did you mean 'status'?" in done.stderr


def test_status_on_a_current_catalogue_imports_no_alembic_nor_numerical_stack(
        tmp_path: Path) -> None:
    # Its start, the settings, the schema check and its queries: SQLAlchemy only.
    from nightlog.catalogue.engine import create_engine
    from nightlog.catalogue.schema import upgrade

    url = f"sqlite:///{tmp_path / 'catalogue.sqlite'}"
    engine = create_engine(url)
    upgrade(engine)
    engine.dispose()
    config = tmp_path / "nightlog.toml"
    config.write_text(f'[database]\nurl = "{url}"\n')
    for name in LIGHT_COMMANDS[:3]:
        code = ("from nightlog.cli.entry import main\n"
                f"try:\n    main(['--config', {str(config)!r}, {name!r}])\n"
                "except SystemExit as exc:\n    assert not exc.code, exc.code")
        imported = _imported_after(code)
        assert "sqlalchemy" in imported, name
        assert not imported & (set(HEAVY) - {"sqlalchemy"}), name


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
