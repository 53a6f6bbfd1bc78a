"""Finishing a night: build the masters that are due, then reduce the science frames.

Between the two, the night-sky illumination models of profiles with
``illumination = "night-sky"`` are built (:mod:`~nightlog.coordinator.illumination`).

The one sequence behind ``nightlog reduce``, the morning run
(:mod:`nightlog.daemon.morning`) and ``nightlog demo``: choose the night (the one
given, else the latest in the catalogue), build its due masters
(:func:`~nightlog.coordinator.masters.run_build`), choose its science frames,
and reduce them (:func:`~nightlog.coordinator.reduce.run_reduce`) on local
workers or a Dask scheduler. Both steps are idempotent, so finishing a night
again costs little and finishes what an interrupted run left.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Engine

from nightlog.catalogue.engine import make_sessionmaker
from nightlog.catalogue.frames import unreduced_science_by_night
from nightlog.catalogue.holds import held_frames
from nightlog.catalogue.queries import latest_night
from nightlog.coordinator.context import JobContext
from nightlog.coordinator.executors import open_executor
from nightlog.coordinator.illumination import run_illumination
from nightlog.coordinator.masters import BuildOutcome, run_build
from nightlog.coordinator.reduce import ReduceOutcome, run_reduce, science_frames
from nightlog.errors import ConfigurationError
from nightlog.threads import available_cores

__all__ = ["NightRun", "finish_night", "other_nights_note"]


@dataclass(slots=True)
class NightRun:
    """What finishing a night chose and did.

    Attributes
    ----------
    night : datetime.date or None
        The night finished; ``None`` with ``since`` or explicit frame ids.
    since : datetime.date or None
        First of the nights finished (every night from it).
    frame_ids : list of int
        The frames reduced, in order of submission.
    workers : int
        Local worker processes (unused with a ``scheduler``).
    scheduler : str or None
        The Dask scheduler whose workers reduced the frames.
    builds : list of BuildOutcome
        One per due group, in build order; then one per night-sky illumination
        model built, skipped (with the reason) or failed (kind ``illumination``).
    outcomes : list of ReduceOutcome
        One per frame, in the order of ``frame_ids``.
    no_frames : bool
        The catalogue holds no frame: nothing was built or reduced.
    other_nights : dict of datetime.date to int
        With one night finished: the other nights whose science frames still have
        no final product, and how many each (see :func:`other_nights_note`).
    held_again : list of int
        Frames of other nights held for a master (the profile's ``missing =
        "hold"``), tried again at the end of ``frame_ids`` once their nights' due
        masters were built.
    """

    night: dt.date | None
    since: dt.date | None
    frame_ids: list[int]
    workers: int
    scheduler: str | None
    builds: list[BuildOutcome] = field(default_factory=list)
    outcomes: list[ReduceOutcome] = field(default_factory=list)
    no_frames: bool = False
    other_nights: dict[dt.date, int] = field(default_factory=dict)
    held_again: list[int] = field(default_factory=list)


def _chosen(*given: object) -> int:
    return sum(x is not None and x != [] and x != () for x in given)


def finish_night(engine: Engine, ctx: JobContext, *, night: dt.date | None = None,
                 since: dt.date | None = None, frame_ids: Sequence[int] | None = None,
                 build: bool = True, workers: int | None = None,
                 scheduler: str | None = None, local: bool = False, force: bool = False,
                 redo_superseded: bool = False, retries: int | None = None,
                 progress: Callable[[ReduceOutcome], None] | None = None,
                 before_reduce: Callable[[NightRun], None] | None = None) -> NightRun:
    """Build the due masters, then reduce the science frames of a night; idempotent.

    Parameters
    ----------
    engine, ctx
        The catalogue and the job context (``ctx.reduce_workers``,
        ``ctx.reduce_scheduler`` and ``ctx.reduce_retries`` are the defaults).
    night : datetime.date, optional
        The night; default the latest night in the catalogue.
    since : datetime.date, optional
        Instead: every night from this one; the due masters of every night are built.
    frame_ids : sequence of int, optional
        Instead: these frames; the due masters of every night are built.
    build : bool
        Build the due masters first.
    workers : int, optional
        Local worker processes (default ``ctx.reduce_workers``, else one per core).
    scheduler : str, optional
        Dask scheduler address (default ``ctx.reduce_scheduler``; ``""``: none).
    local : bool
        Use local workers even when the context names a scheduler.
    force, redo_superseded : bool
        Reduce again frames already reduced from the same inputs (``force``), or
        from other inputs than today's best masters (``redo_superseded``).
    retries : int, optional
        Further tries of a failed frame (default ``ctx.reduce_retries``).
    progress : callable, optional
        Called with each frame's outcome as it is known.
    before_reduce : callable, optional
        Called with the run so far (night, frames, workers, build outcomes) once
        the masters are built and the frames chosen, before the first is reduced.

    Returns
    -------
    NightRun
        The choices, the build outcomes and the reduce outcomes.

    Raises
    ------
    ConfigurationError
        More than one of ``night``, ``since`` and ``frame_ids`` is given.
    ReduceInterrupted
        On Ctrl-C, with the outcomes so far; the same call finishes the work.
    ReduceStopped
        The catalogue stayed unreachable through ``ctx.db_backoff``'s retries.
    """
    if _chosen(night, since, frame_ids) > 1:
        raise ConfigurationError("give frame ids, a night or a first night, not several")
    address = None if local else (scheduler if scheduler is not None
                                  else ctx.reduce_scheduler) or None
    run = NightRun(night=night, since=since, frame_ids=list(frame_ids or ()),
                   workers=workers or ctx.reduce_workers or available_cores(),
                   scheduler=address)
    make_session = make_sessionmaker(engine)
    if not run.frame_ids and since is None and night is None:
        with make_session() as session:
            run.night = latest_night(session)
        if run.night is None:
            run.no_frames = True
            return run
    # One set of workers for the night: the masters are built on them, then the
    # frames reduced, with no second start-up.
    with make_session() as session:
        held = {} if frame_ids else held_frames(session)
    with open_executor(run.workers, address) as executor:
        if build:
            run.builds = run_build(engine, ctx, night=run.night, executor=executor)
            # The nights of frames held for a master: theirs may be due by now.
            for other in sorted(held):
                if run.night is not None and other != run.night:
                    run.builds += run_build(engine, ctx, night=other, executor=executor,
                                            sweep=False)
        if not frame_ids:
            with make_session() as session:
                run.frame_ids = science_frames(session, night=run.night, since=since)
            # Frames of other nights held for a master come again: it may be here.
            chosen = set(run.frame_ids)
            run.held_again = [i for ids in held.values() for i in ids if i not in chosen]
            run.frame_ids += run.held_again
        if build:
            # After the flats, before the frames it corrects: the night-sky
            # illumination models of the profiles that ask for one.
            run.builds += run_illumination(engine, ctx, run.frame_ids, executor=executor)
        if before_reduce is not None:
            before_reduce(run)
        run.outcomes = run_reduce(engine, ctx, run.frame_ids, force=force,
                                  redo_superseded=redo_superseded, progress=progress,
                                  retries=retries, executor=executor, sweep=not build)
    if run.night is not None:
        with make_session() as session:
            run.other_nights = unreduced_science_by_night(session, besides=run.night)
    return run


def other_nights_note(run: NightRun, *, shown: int = 5) -> str | None:
    """One line saying which other nights still have unreduced science frames, and
    the command that reduces them; ``None`` when there are none.

    Parameters
    ----------
    run : NightRun
        A finished run (its ``other_nights``).
    shown : int
        Nights named at most; the rest are counted.

    Returns
    -------
    str or None
        For example ``'2 other night(s) have unreduced science frames: 2016-01-13 (4),
        2016-01-14 (3); run: nightlog reduce --since 2016-01-13'``.
    """
    nights = run.other_nights
    if not nights:
        return None
    named = ", ".join(f"{night.isoformat()} ({n})" for night, n in list(nights.items())[:shown])
    if len(nights) > shown:
        named += f" and {len(nights) - shown} more"
    first = min(nights)
    command = (f"nightlog reduce --night {first.isoformat()}" if len(nights) == 1
               else f"nightlog reduce --since {first.isoformat()}")
    return (f"{len(nights)} other night(s) have unreduced science frames: {named}; "
            f"run: {command}")
