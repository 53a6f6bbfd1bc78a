"""The CLI end to end on a temporary archive: commands, formats, errors."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from nightlog import __version__
from nightlog.catalogue.engine import create_engine
from nightlog.cli.app import app
from tests.factories import bad_corpus, write_frame


def _raw(tmp_path: Path) -> Path:
    raw = tmp_path / "raw"
    write_frame(raw / "bias1.fits", seed=1, IMAGETYP="BIAS", EXPTIME=0.0, FILTER=None,
                **{"DATE-OBS": "2024-03-10T01:00:00"})
    write_frame(raw / "flat1.fits", seed=2, IMAGETYP="FLAT", EXPTIME=3.0, FILTER="V",
                **{"DATE-OBS": "2024-03-10T01:10:00"})
    write_frame(raw / "sci1.fits", seed=3, OBJECT="[bold red]M 101[/]",
                **{"DATE-OBS": "2024-03-10T05:00:00"})
    bad_corpus(raw / "bad")
    return raw


def test_version_and_help(runner: CliRunner) -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("ingest", "frames", "nights", "quarantine", "db", "simulate", "demo"):
        assert command in result.output


def test_ingest_then_query_in_every_format(runner: CliRunner, tmp_path: Path) -> None:
    raw = _raw(tmp_path)
    result = runner.invoke(app, ["ingest", str(raw)])
    assert result.exit_code == 3, result.output  # the bad corpus was quarantined
    assert "added" in result.output and "quarantined" in result.output
    assert (tmp_path / "nightlog.sqlite").exists()  # defaults: catalogue in the folder

    result = runner.invoke(app, ["frames", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert {r["kind"] for r in rows} == {"bias", "flat", "science"}
    for row in rows:
        assert {"id", "path", "sha256", "kind", "night"} <= set(row)
    (sci,) = [r for r in rows if r["kind"] == "science"]
    assert sci["object"] == "[bold red]M 101[/]"  # exactly as in the header

    result = runner.invoke(app, ["frames", "--kind", "flat", "--format", "csv"])
    (flat,) = list(csv.DictReader(io.StringIO(result.output)))
    assert flat["filter"] == "V" and float(flat["exptime"]) == 3.0

    result = runner.invoke(app, ["frames", "--kind", "science"])
    assert "[bold red]M 101[/]" in result.output  # shown as text, not as markup

    result = runner.invoke(app, ["nights", "--format", "json"])
    counts = {(r["kind"], r["filter"]): r["count"] for r in json.loads(result.output)}
    assert counts == {("bias", None): 1, ("flat", "V"): 1, ("science", "R"): 1}

    result = runner.invoke(app, ["quarantine", "--format", "json"])
    names = {Path(r["path"]).name for r in json.loads(result.output)}
    assert names == set(bad_corpus(tmp_path / "again"))


def test_frames_read_at_80_columns(runner: CliRunner, tmp_path: Path) -> None:
    raw = tmp_path / "raw" / "a folder with a long name" / "deeper still"
    for i in range(3):
        write_frame(raw / f"science_frame_number_{i:03d}.fits", seed=i,
                    OBJECT="a target with a long name", **{"DATE-OBS": f"2024-03-10T0{i}:00:00"})
    runner.invoke(app, ["ingest", str(tmp_path / "raw")])
    result = runner.invoke(app, ["frames"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) <= 80
    heading = next(line for line in lines if line.lstrip().startswith("id"))
    assert "exptime [s]" in heading  # the unit in the heading
    body = [line for line in lines if re.match(r"\s*\d+\s+\d{4}-", line)]
    assert len(body) == 3  # one line per frame: nothing folds
    for i, line in enumerate(reversed(body)):  # the newest first
        assert "2024-03-09" in line and f"0{i}:00:00" in line  # dates and times whole
        assert f"_{i:03d}.fits" in line  # the end of the file name survives the cut
        assert str(tmp_path) not in line  # relative to the archive root
    full = json.loads(runner.invoke(app, ["frames", "--format", "json"]).output)
    assert {r["path"] for r in full} == {str(p) for p in raw.glob("*.fits")}


def test_errors_are_one_line_with_an_exit_code(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["frames"])
    assert result.exit_code == 4
    assert result.output.strip().startswith("error: no catalogue")
    assert len(result.output.strip().splitlines()) == 1

    (tmp_path / "nightlog.toml").write_text("[site]\ntimezone = 'Nowhere/Atlantis'\n")
    result = runner.invoke(app, ["frames"])
    assert result.exit_code == 2
    assert result.output.startswith("error: site.timezone")

    result = runner.invoke(app, ["frames", "--night", "yesterday"])
    assert result.exit_code == 2  # usage error from the option parser


def test_a_schema_behind_is_refused_with_the_command_to_run(runner: CliRunner,
                                                            tmp_path: Path) -> None:
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    assert "up to date" in runner.invoke(app, ["db", "current"]).output
    engine = create_engine(f"sqlite:///{tmp_path / 'nightlog.sqlite'}")
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM alembic_version"))
        conn.execute(text("INSERT INTO alembic_version VALUES ('0000')"))
    engine.dispose()
    result = runner.invoke(app, ["frames"])
    assert result.exit_code == 4
    assert "error:" in result.output and "revision 0000" in result.output
    assert "behind" in runner.invoke(app, ["db", "current"]).output


def test_database_url_from_the_environment(runner: CliRunner, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "elsewhere.sqlite"
    monkeypatch.setenv("NIGHTLOG_DATABASE_URL", f"sqlite:///{other}")
    raw = tmp_path / "raw"
    write_frame(raw / "a.fits")
    assert runner.invoke(app, ["ingest", str(raw)]).exit_code == 0
    assert other.exists() and not (tmp_path / "nightlog.sqlite").exists()


def _commands(group, ctx, path):  # type: ignore[no-untyped-def]
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        yield [*path, name], command
        if hasattr(command, "list_commands"):  # a group: its commands too
            yield from _commands(command, ctx, [*path, name])


def test_every_settings_section_named_in_an_option_help_is_shown(runner: CliRunner) -> None:
    """Help text such as ``(default: [reduction] workers)`` is not eaten as markup."""
    import re

    import typer

    root = typer.main.get_command(app)
    ctx = typer.Context(root)
    checked = 0
    for path, command in _commands(root, ctx, []):
        sections = {m for param in command.params
                    for m in re.findall(r"\[[a-z_]+\]", (getattr(param, "help", None) or "")
                                        .replace("\\[", "["))}
        if not sections:
            continue
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        for section in sections:
            assert section in result.output, (path, section)
            checked += 1
    assert checked >= 2  # reduce and watch at least


def test_every_format_option_offers_table_json_and_csv(runner: CliRunner) -> None:
    """One convention: the same three formats wherever a command prints a result."""
    import typer

    root = typer.main.get_command(app)
    ctx = typer.Context(root)
    found = {}
    for path, command in _commands(root, ctx, []):
        if any("--format" in getattr(p, "opts", ()) for p in command.params):
            shown = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"}).output
            choices = re.search(r"--format\s+.*?<([a-z|]+)>", shown)
            assert choices is not None, (path, shown)
            found[" ".join(path)] = choices.group(1)
    assert {"ingest", "reduce", "calib build", "calib list", "match", "provenance",
            "frames"} <= set(found)
    for name, choices in found.items():
        assert choices == "table|json|csv", name


@pytest.mark.parametrize(("words", "expected"), [
    ("nightlog cal", {"calib"}),
    ("nightlog calib b", {"build"}),
    ("nightlog frames --format ", {"table", "json", "csv"}),
])
def test_shell_completion_knows_commands_and_choices(runner: CliRunner, words: str,
                                                     expected: set[str]) -> None:
    """Shell completion (``nightlog --install-completion``) completes the commands,
    loaded on use, and the choices of their options."""
    result = runner.invoke(app, [], prog_name="nightlog", env={
        "_NIGHTLOG_COMPLETE": "complete_bash", "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split(" ")) - 1)})
    assert result.exit_code == 0, result.output
    assert set(result.output.split()) == expected


def test_exit_statuses_follow_one_table(runner: CliRunner, tmp_path: Path) -> None:
    """docs/index.md's table: a run that quarantined files or found no input says so."""
    from nightlog import errors
    from nightlog.cli.exit_status import ExitStatus

    families = {errors.ConfigurationError: ExitStatus.CONFIGURATION,
                errors.HeaderError: ExitStatus.BAD_INPUT, errors.FileProblem: ExitStatus.BAD_INPUT,
                errors.CatalogueError: ExitStatus.CATALOGUE, errors.StoreError: ExitStatus.ARCHIVE,
                errors.ReductionError: ExitStatus.REDUCTION}
    for family, status in families.items():
        assert family.exit_code == status, family
    (tmp_path / "empty").mkdir()
    nothing = runner.invoke(app, ["ingest", str(tmp_path / "empty")])
    assert nothing.exit_code == ExitStatus.NO_INPUT and "no file matched" in nothing.output
    assert runner.invoke(app, ["reduce"]).exit_code == ExitStatus.NO_INPUT
    write_frame(tmp_path / "raw" / "sci.fits", seed=1)
    assert runner.invoke(app, ["ingest", str(tmp_path / "raw")]).exit_code == ExitStatus.OK
    bad_corpus(tmp_path / "raw" / "bad")
    bad = runner.invoke(app, ["ingest", str(tmp_path / "raw")])
    assert bad.exit_code == ExitStatus.BAD_INPUT and "quarantined" in bad.output
