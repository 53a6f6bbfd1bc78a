"""``nightlog reduce``: reduce a night's science frames with the best masters, in parallel."""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from nightlog.catalogue.problems import REDUCED_WITHOUT
from nightlog.cli.exit_status import ExitStatus
from nightlog.cli.options import parse_date
from nightlog.cli.output import OutputFormat, emit_outcomes, printable
from nightlog.cli.state import state_of
from nightlog.states import ReduceStatus

if TYPE_CHECKING:
    from nightlog.coordinator.masters import BuildOutcome
    from nightlog.coordinator.night import NightRun
    from nightlog.coordinator.reduce import ReduceOutcome

app = typer.Typer()


def _frame_ids(refs: list[str]) -> list[int]:
    ids = []
    for ref in refs:
        if not ref.isdigit():
            raise typer.BadParameter(f"frame ids are numbers, not {ref!r}")
        ids.append(int(ref))
    return ids


def _summary(console: Console, outcomes: list[ReduceOutcome], title: str, seconds: float,
             where: str) -> None:
    counts = Counter(o.status for o in outcomes)
    table = Table(title=title)
    table.add_column("outcome")
    table.add_column("frames", justify="right")
    for status, n in sorted(counts.items()):
        table.add_row(status, str(n))
    console.print(table)
    reduced = [o for o in outcomes if o.status == ReduceStatus.REDUCED]
    if reduced:
        per_frame = sum(o.seconds for o in reduced) / len(reduced)
        console.print(Text(f"{len(reduced)} reduced in {seconds:.1f} s on {where} "
                           f"({per_frame:.1f} s per frame in a worker)"))
    problems = problem_tally(outcomes)
    if problems:
        console.print(Text(f"{sum(problems.values())} frame(s) with a reduction problem: "
                           + ", ".join(f"{k} {v}" for k, v in problems.items())))
    for o in outcomes:
        if o.status in _PROBLEMS or o.missing:
            detail = o.reason or f"reduced without {', '.join(o.missing)}"
            tries = (f" after {o.attempts} tries"
                     if o.status == ReduceStatus.FAILED and o.attempts else "")
            console.print(Text(f"frame {o.frame_id}: {o.status}{tries}: {printable(detail)}"))


_PROBLEMS = (ReduceStatus.FAILED, ReduceStatus.STOPPED, ReduceStatus.HELD)


def problem_tally(outcomes: list[ReduceOutcome]) -> dict[str, int]:
    """The run's frames with a reduction problem, by kind: ``reduced-without`` (reduced,
    a step missing), ``held``, ``stopped``, ``failed``."""
    counts = Counter(REDUCED_WITHOUT if o.status == ReduceStatus.REDUCED else str(o.status)
                     for o in outcomes
                     if o.status in _PROBLEMS or (o.status == ReduceStatus.REDUCED and o.missing))
    return dict(sorted(counts.items()))


def _print_builds(console: Console, builds: list[BuildOutcome]) -> None:
    for outcome in builds:
        console.print(Text(f"master {outcome.kind} {outcome.night}: {outcome.status} "
                           f"{printable(outcome.reason)}".rstrip()))


class _Bar:
    """The progress bar of the reduction, started once the frames are known; it also
    keeps the summary's title and where the frames were reduced."""

    def __init__(self) -> None:
        self.title = ""
        self.where = ""
        self._started = time.perf_counter()
        self._progress: Progress | None = None
        self._total = 0
        self._tally: Counter[str] = Counter()

    def start(self, run: NightRun) -> None:
        self._total = len(run.frame_ids)
        self.where = (f"Dask at {run.scheduler}" if run.scheduler
                      else f"{run.workers} local worker(s)")
        self.title = f"{self._total} frame(s)" + (
            f" of the night of {run.night}" if run.night else
            f" of the nights from {run.since}" if run.since else "")
        self._started = time.perf_counter()
        self._progress = Progress(
            TextColumn("reduce"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[failed]} failed, {task.fields[skipped]} up to date"),
            TimeRemainingColumn(), console=Console(stderr=True), transient=True)
        self._progress.add_task("reduce", total=self._total, failed=0, skipped=0)
        self._progress.start()

    def advance(self, o: ReduceOutcome) -> None:
        if self._progress is None:
            return
        task = self._progress.task_ids[0]
        self._tally[o.status] += 1
        if o.status == ReduceStatus.UP_TO_DATE:  # no work: out of the count the ETA is made of
            skipped = self._tally[ReduceStatus.UP_TO_DATE]
            self._progress.update(task, total=max(0, self._total - skipped), skipped=skipped)
        else:
            self._progress.update(task, advance=1, failed=self._tally[ReduceStatus.FAILED])

    def seconds(self) -> float:
        return time.perf_counter() - self._started

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


@app.command("reduce")
def reduce_cmd(
    ctx: typer.Context,
    frames: Annotated[list[str] | None, typer.Argument(
        metavar="FRAME", help="Frame ids to reduce (default: every science frame of "
        "the night).")] = None,
    night: Annotated[str | None, typer.Option(help="Night (YYYY-MM-DD); default the "
                                              "latest night in the catalogue.")] = None,
    since: Annotated[str | None, typer.Option(help="Every night from this one (YYYY-MM-DD) "
                                              "to the latest.")] = None,
    workers: Annotated[int | None, typer.Option(
        min=1, help="Local worker processes (default: \\[reduction] workers, else one per "
        "core).", show_default=False)] = None,
    scheduler: Annotated[str | None, typer.Option(
        help="Dask scheduler address (tcp://host:8786) whose workers reduce the frames "
        "from the shared archive (default: \\[reduction] scheduler).",
        show_default=False)] = None,
    local: Annotated[bool, typer.Option(
        "--local", help="Use local processes even when a scheduler is configured.")] = False,
    retries: Annotated[int | None, typer.Option(
        min=0, help="Further tries of a failed frame (default: \\[reduction] retries, 2).",
        show_default=False)] = None,
    build: Annotated[bool, typer.Option(help="Build the masters that are due first.")] = True,
    force: Annotated[bool, typer.Option(help="Reduce again even frames already reduced "
                                        "from the same inputs.")] = False,
    redo_superseded: Annotated[bool, typer.Option(
        "--redo-superseded", help="Reduce again frames whose best masters changed.")] = False,
    fmt: Annotated[OutputFormat, typer.Option(
        "--format", help="Output format: tables, or JSON (the builds and every frame) or CSV "
        "(one row per frame) for scripts.")] = OutputFormat.table,
) -> None:
    """Reduce science frames: overscan, trim, bias, dark, flat, cosmic rays, mask, noise.

    Frames already reduced from the same inputs are skipped, so running it again
    after an interruption finishes the work. Exit status 1 when a frame failed,
    7 when the catalogue holds no frame, 130 when interrupted.
    """
    # The coordinator (and astropy, scipy under it) is imported when the command runs.
    from nightlog.coordinator.context import JobContext
    from nightlog.coordinator.night import finish_night, other_nights_note
    from nightlog.coordinator.reduce import ReduceInterrupted, ReduceStopped

    if sum(x is not None and x != [] for x in (frames, night, since)) > 1:
        raise typer.BadParameter("give frame ids, --night or --since, not several")
    ids = _frame_ids(frames or [])
    state = state_of(ctx)
    engine = state.engine(must_exist=True)
    jobs = JobContext.from_settings(state.settings)
    # With --format json or csv, stdout holds the document alone; the words go to stderr.
    console = Console(stderr=fmt is not OutputFormat.table)
    bar = _Bar()
    builds: list[BuildOutcome] = []

    def _reducing(run: NightRun) -> None:
        builds.extend(run.builds)
        _print_builds(console, run.builds)
        bar.start(run)

    def _document(outcomes: list[ReduceOutcome], **extra: object) -> None:
        if fmt is not OutputFormat.table:
            counts = Counter(str(o.status) for o in outcomes)
            emit_outcomes({"title": bar.title, "where": bar.where,
                           "seconds": round(bar.seconds(), 3),
                           "counts": dict(sorted(counts.items())),
                           "problems": problem_tally(outcomes), "builds": builds, **extra},
                          outcomes, fmt)

    try:
        run = finish_night(engine, jobs, night=parse_date(night), since=parse_date(since),
                           frame_ids=ids, build=build, workers=workers,
                           scheduler=scheduler or None, local=local, force=force,
                           redo_superseded=redo_superseded, retries=retries,
                           progress=bar.advance,
                           before_reduce=_reducing)
    except ReduceInterrupted as stop:
        bar.stop()
        _summary(console, stop.outcomes, bar.title, bar.seconds(), bar.where)
        console.print(Text(f"interrupted: {stop.unfinished} frame(s) not reduced; run "
                           "the same command again to finish"))
        _document(stop.outcomes, interrupted=True, unfinished=stop.unfinished)
        raise typer.Exit(code=ExitStatus.INTERRUPTED) from None
    except ReduceStopped as stopped:
        bar.stop()
        _summary(console, stopped.outcomes, bar.title, bar.seconds(), bar.where)
        _document(stopped.outcomes, stopped=str(stopped))
        raise
    finally:
        bar.stop()
    if run.no_frames:
        console.print("the catalogue holds no frames")
        _document([])
        raise typer.Exit(code=ExitStatus.NO_INPUT)
    _summary(console, run.outcomes, bar.title, bar.seconds(), bar.where)
    if run.held_again:
        console.print(Text(f"{len(run.held_again)} frame(s) of other nights held for a "
                           "master were tried again"))
    note = other_nights_note(run)
    if note is not None:
        console.print(Text(note))
    _document(run.outcomes, note=note)
    if any(o.status == ReduceStatus.FAILED for o in run.outcomes):
        raise typer.Exit(code=ExitStatus.FAILED)
