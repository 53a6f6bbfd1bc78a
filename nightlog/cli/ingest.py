"""``nightlog ingest``: catalogue raw files and folders."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from nightlog.cli.exit_status import ExitStatus
from nightlog.cli.output import OutputFormat, emit_outcomes, printable
from nightlog.cli.state import state_of
from nightlog.coordinator.ingest import (
    IngestContext,
    IngestResult,
    IngestSummary,
    discover,
    run_ingest,
)
from nightlog.states import IngestOutcome

app = typer.Typer()


def print_summary(summary: IngestSummary, console: Console) -> None:
    """The end-of-batch table: counts per outcome, then each problem with its reason."""
    table = Table(title=f"{summary.total} file(s) in {summary.elapsed:.1f} s")
    table.add_column("outcome")
    table.add_column("files", justify="right")
    for outcome, count in sorted(summary.counts.items()):
        table.add_row(outcome, str(count))
    console.print(table)
    for problem in summary.problems[:50]:
        console.print(Text(f"{problem.outcome}: {printable(problem.path)}: "
                           f"{printable(problem.reason)}"))
    if len(summary.problems) > 50:
        console.print(f"... and {len(summary.problems) - 50} more: see 'nightlog quarantine'")
    print_warnings(summary, console)


def print_warnings(summary: IngestSummary, console: Console) -> None:
    """The batch's profile warnings, each once per instrument, with its frame count."""
    for profile, instrument, warning in summary.warnings:
        frames = summary.said.frames(profile, instrument, warning)
        console.print(Text(f"warning: profile {profile}, instrument "
                           f"{printable(instrument or '-')} ({frames} frame(s)): "
                           f"{printable(warning.message)}"))


def warning_rows(summary: IngestSummary) -> list[dict[str, object]]:
    """The batch's profile warnings, once per instrument, for JSON."""
    return [{"profile": profile, "instrument": instrument, "code": str(w.code),
             "message": w.message, "frames": summary.said.frames(profile, instrument, w)}
            for profile, instrument, w in summary.warnings]


@app.command("ingest")
def ingest_cmd(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="FITS files or folders (searched "
                                                "recursively for the configured patterns).")],
    verify: Annotated[bool, typer.Option(help="Re-read and hash files whose size and "
                                         "modification time are unchanged.")] = False,
    fmt: Annotated[OutputFormat, typer.Option(
        "--format", help="Output format: a table, or JSON (counts and every problem) or "
        "CSV (one row per problem) for scripts.")] = OutputFormat.table,
) -> None:
    """Catalogue raw frames: normalise their headers, record bad files in quarantine.

    Idempotent: the same bytes again add nothing; new bytes at a known path become
    a new version (the old one is kept); a moved file is recognised by checksum.
    What a profile leaves to a default (no read noise, an overscan not subtracted,
    the generic profile, ...) is said once per instrument after the table; see
    'nightlog profile check'. Exit status 1 when a file failed, 3 when files were
    quarantined, 7 when no file was found.
    """
    state = state_of(ctx)
    settings = state.settings
    engine = state.engine()
    files = discover(paths, settings.ingest.patterns,
                     follow_symlinks=settings.ingest.follow_symlinks)
    context = IngestContext.from_settings(settings, verify=verify)
    console = Console(stderr=True)
    with Progress(TextColumn("ingest"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=console, transient=True,
                  disable=len(files) < 20) as bar:
        task = bar.add_task("ingest", total=len(files))

        def _advance(_result: IngestResult) -> None:
            bar.advance(task)

        summary = run_ingest(engine, files, context, progress=_advance)
    if fmt is OutputFormat.table:
        print_summary(summary, Console())
    else:
        emit_outcomes({"files": summary.total, "seconds": round(summary.elapsed, 3),
                       "counts": dict(sorted(summary.counts.items())),
                       "warnings": warning_rows(summary)},
                      [{"path": p.path, "outcome": p.outcome, "reason": p.reason,
                        "transient": p.transient} for p in summary.problems],
                      fmt, key="problems")
        if fmt is OutputFormat.csv:  # one row per problem: the warnings are words
            print_warnings(summary, console)
    if summary.counts.get(IngestOutcome.FAILED):
        raise typer.Exit(code=ExitStatus.FAILED)
    if summary.counts.get(IngestOutcome.QUARANTINED):
        raise typer.Exit(code=ExitStatus.BAD_INPUT)
    if not files:
        Console(stderr=True).print(Text(
            "no file matched the patterns " + ", ".join(settings.ingest.patterns) + " in "
            + ", ".join(printable(p) for p in paths)))
        raise typer.Exit(code=ExitStatus.NO_INPUT)
