"""``nightlog profile``: list the instrument profiles, and dry-run them on files."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from nightlog.cli.exit_status import ExitStatus
from nightlog.cli.output import OutputFormat, emit, printable
from nightlog.cli.state import state_of
from nightlog.coordinator.profile_check import FileCheck, check_files
from nightlog.header.model import Site
from nightlog.header.profiles import FALLBACK_PROFILE, MatchRule, ProfileRegistry
from nightlog.store.discovery import discover

app = typer.Typer(help="List the instrument profiles and check which one a file gets, "
                  "and what it makes of it.", no_args_is_help=True)


def _rows(check: FileCheck) -> list[dict[str, Any]]:
    """One CSV row per fact of a file's check: section, name, value, source."""
    rows: list[dict[str, Any]] = []

    def add(section: str, name: str, value: Any, source: str) -> None:
        rows.append({"path": check.path, "section": section, "name": name,
                     "value": value.isoformat() if hasattr(value, "isoformat") else value,
                     "source": source})

    if check.match is not None:
        add("profile", check.match.chosen, check.match.fallback, check.match.reason)
        for verdict in check.match.verdicts:
            for rule in verdict.rules:
                add("rule", verdict.profile, rule.holds, rule.describe())
    if check.error is not None:
        add("error", "quarantined", None, check.error)
    for f in check.fields:
        add("field", f.name, f.value, f.source)
    for role, key in check.calibration_keys:
        add("calibration", role, key, "profile calibration_keys")
    for s in check.settings:
        add("setting", s.name, s.value, s.source)
    for w in check.warnings:
        add("warning", str(w.code), None, w.message)
    return rows


def _print(check: FileCheck, console: Console) -> None:
    console.print(Text(f"file: {printable(check.path)}", style="bold"))
    if check.match is not None:
        console.print(Text(f"profile: {check.match.chosen}: {printable(check.match.reason)}"))
        for verdict in check.match.verdicts:
            for rule in verdict.rules:
                console.print(Text(f"  {verdict.profile}: {printable(rule.describe())}"))
    if check.error is not None:
        console.print(Text(f"error: ingest would quarantine it: {printable(check.error)}"))
        console.print()
        return
    emit([{"field": f.name, "value": f.value, "source": f.source} for f in check.fields],
         ("field", "value", "source"), OutputFormat.table, console=console)
    emit([{"group": role, "key": key} for role, key in check.calibration_keys],
         ("group", "key"), OutputFormat.table, console=console)
    emit([{"setting": s.name, "value": s.value, "source": s.source} for s in check.settings],
         ("setting", "value", "source"), OutputFormat.table, console=console)
    for w in check.warnings:
        console.print(Text(f"warning [{w.code}]: {printable(w.message)}"))
    if not check.warnings:
        console.print("no warning")
    console.print()


@app.command("check")
def check_cmd(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(
        metavar="FILE...", help="FITS files, or folders (searched recursively for the "
        "configured patterns).")],
    strict: Annotated[bool, typer.Option(
        "--strict", help="Exit with status 3 when any file has a warning.")] = False,
    fmt: Annotated[OutputFormat, typer.Option(
        "--format", help="Output format: tables, JSON (one object per file) or CSV (one row "
        "per fact: path, section, name, value, source).")] = OutputFormat.table,
) -> None:
    """Show which profile each file gets and why, every normalised value and its source,
    and the settings the reduction would apply, with warnings; no catalogue needed.

    Warnings: no read noise, gain or saturation level; an overscan or trim section
    in the header that is not used; the generic profile; a frame-type word no
    profile knows; a date without a time; no site. Exit status 3 when a file would
    be quarantined, or with --strict when any file has a warning; 7 when no file
    was found.
    """
    settings = state_of(ctx).settings
    files = discover(paths, settings.ingest.patterns,
                     follow_symlinks=settings.ingest.follow_symlinks)
    checks = check_files(files, settings)
    if fmt is OutputFormat.json:
        typer.echo(json.dumps([c.as_dict() for c in checks], ensure_ascii=False, indent=1))
    elif fmt is OutputFormat.csv:
        emit([row for c in checks for row in _rows(c)],
             ("path", "section", "name", "value", "source"), fmt)
    else:
        console = Console()
        for check in checks:
            _print(check, console)
    if not files:
        Console(stderr=True).print(Text(
            "no file matched the patterns " + ", ".join(settings.ingest.patterns) + " in "
            + ", ".join(printable(p) for p in paths)))
        raise typer.Exit(code=ExitStatus.NO_INPUT)
    if any(c.error is not None for c in checks) or (strict and any(c.warnings for c in checks)):
        raise typer.Exit(code=ExitStatus.BAD_INPUT)


@app.command("list")
def list_cmd(
    ctx: typer.Context,
    fmt: Annotated[OutputFormat, typer.Option("--format", help="Output format.")] =
        OutputFormat.table,
) -> None:
    """List the instrument profiles (built-in and configured) and the rules that match
    them."""
    registry = ProfileRegistry.from_settings(state_of(ctx).settings.instruments)
    rows = []
    for name in registry.names:
        profile = registry.get(name)
        rules = [f"{r.keyword} ~ /{r.pattern.pattern}/" if r.pattern is not None
                 else f"{r.keyword} = " + " | ".join(r.values) for r in profile.match]
        rows.append({"profile": name, "priority": profile.priority,
                     "matched by": "; ".join(rules) or (
                         "the fallback" if name == "generic" else "never (no rules)"),
                     "description": profile.description})
    emit(rows, ("profile", "priority", "matched by", "description"), fmt)


def _shown(value: Any) -> Any:
    if isinstance(value, tuple) and value and isinstance(value[0], MatchRule):
        return [f"{r.keyword} ~ /{r.pattern.pattern}/" if r.pattern is not None
                else f"{r.keyword} = " + " | ".join(r.values) for r in value]
    if isinstance(value, Site):
        return {k: v for k, v in (("longitude", value.longitude_deg),
                                  ("timezone", value.timezone), ("name", value.name),
                                  ("latitude", value.latitude_deg)) if v is not None}
    if isinstance(value, Mapping):
        return {k: _shown(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_shown(v) for v in value]
    return value


@app.command("show")
def show_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Profile name (see 'nightlog profile list').")],
    fmt: Annotated[OutputFormat, typer.Option("--format", help="Output format.")] =
        OutputFormat.table,
) -> None:
    """Show every key of one instrument profile as it applies (built-in, merged with the
    configuration), and whether it is the generic profile's value or differs from it."""
    registry = ProfileRegistry.from_settings(state_of(ctx).settings.instruments)
    profile, generic = registry.get(name), registry.get(FALLBACK_PROFILE)
    rows = []
    for f in dataclasses.fields(profile):
        value = _shown(getattr(profile, f.name))
        same = value == _shown(getattr(generic, f.name))
        shown = value if fmt is OutputFormat.json or not isinstance(value, list | dict) \
            else json.dumps(value, ensure_ascii=False)
        rows.append({"key": f.name, "value": shown, "vs generic": "same" if same else "differs"})
    emit(rows, ("key", "value", "vs generic"), fmt)
