"""Reducing science frames with the best masters, with full provenance, at scale.

For each frame: the calibration manager chooses the masters (or the policy says
what to do without one), the raw file and the masters are read, the pure
reduction core reduces it, the product is written under a temporary name and
renamed, and one transaction records the product, each master used (by role,
with its checksum), the parameters (and their digest), the missing steps and the
software version. The file carries the same: keywords naming each master with its
checksum, the software version and the parameter digest, and a ``PROVENANCE``
table of the raw frame and the masters (:mod:`nightlog.coordinator.provenance`).
A frame already reduced from the same inputs (same raw bytes, masters and
parameters: the *inputs key*) is skipped unless forced.

:func:`run_reduce` spreads the work over workers (:mod:`~nightlog.coordinator.
executors`): this process plans each frame and records its product
(:mod:`~nightlog.coordinator.reduce_plan`, :mod:`~nightlog.coordinator.reduce_record`),
the workers only read and write files (:mod:`~nightlog.coordinator.reduce_job`), so
the catalogue sees one connection whatever the number of workers. A job that fails,
or whose worker dies, is tried again up to ``retries`` times; then the frame is
recorded as failed with its reason (:mod:`nightlog.catalogue.reductions`) and the
night goes on. An interruption stops the submissions, records what the busy workers
finish, and raises :class:`ReduceInterrupted`; running the same reduction again
finishes the work, skipping what is done. Each frame is claimed before it is planned
(:class:`~nightlog.catalogue.claims.FrameClaims`): a frame another run is
reducing is put off until that run is done with it, and then found up to date.
A catalogue that stays unreachable through the retries (``ctx.db_backoff``)
stops the run at once with :class:`ReduceStopped` rather than costing every
remaining frame its own round of retries: products made but not recorded are
deleted, and the same command finishes the night once the catalogue is back.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Sequence
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from nightlog.catalogue.claims import FrameClaims
from nightlog.catalogue.frames import science_frame_ids
from nightlog.catalogue.holds import record_hold, resolve_hold
from nightlog.catalogue.models import Frame
from nightlog.catalogue.planner_statistics import keep_statistics
from nightlog.catalogue.products import current_product
from nightlog.catalogue.reductions import resolve_failure
from nightlog.coordinator.context import JobContext
from nightlog.coordinator.executors import FrameExecutor, open_executor
from nightlog.coordinator.reduce_dispatch import (
    FrameDispatcher,
    ReduceInterrupted,
    ReduceStopped,
)
from nightlog.coordinator.reduce_job import ReducedFile, ReduceJob, reduce_job
from nightlog.coordinator.reduce_plan import (
    ReduceOutcome,
    inputs_key,
    plan_frame,
    science_parameters,
)
from nightlog.coordinator.reduce_record import record_reduction, without_reason
from nightlog.coordinator.temporaries import sweep_archive
from nightlog.states import HoldState, ProductKind, ReduceStatus

__all__ = ["ReduceInterrupted", "ReduceOutcome", "ReduceStopped", "current_product",
           "inputs_key", "reduce_frame", "run_reduce", "science_frames",
           "science_parameters"]


def reduce_frame(session: Session, frame: Frame, ctx: JobContext, *,
                 kind: str = ProductKind.FINAL,
                 live: bool = False, force: bool = False, redo_superseded: bool = True,
                 cosmic_threads: int | None = None, written: list[Path]) -> ReduceOutcome:
    """Reduce ``frame`` in this process and the caller's session (no commit).

    Plan, work and record in a row. The product file is written before the rows
    are added and its path appended to ``written`` so the caller can delete it if
    the transaction fails.
    """
    plan = plan_frame(session, frame, ctx, kind=kind, live=live, force=force,
                      redo_superseded=redo_superseded, cosmic_threads=cosmic_threads)
    if isinstance(plan, ReduceOutcome):
        if plan.status in (ReduceStatus.HELD, ReduceStatus.STOPPED):
            record_hold(session, frame.id, state=HoldState(plan.status), steps=plan.missing,
                        reason=plan.reason)
        return plan
    made = reduce_job(plan.job)
    written.append(Path(made.path))
    product = record_reduction(session, plan, made)
    resolve_failure(session, frame.id)
    resolve_hold(session, frame.id)
    return ReduceOutcome(frame.id, ReduceStatus.REDUCED, product_id=product.id,
                         missing=plan.missing, reason=without_reason(plan.missing_reasons),
                         attempts=1, seconds=made.seconds,
                         peak_rss=made.peak_rss, worker=made.worker,
                         cpu_seconds=made.cpu_seconds)


def run_reduce(engine: Engine, ctx: JobContext, frame_ids: Sequence[int], *,
               kind: str = ProductKind.FINAL, live: bool = False, force: bool = False,
               redo_superseded: bool = False, cosmic_threads: int | None = None,
               progress: Callable[[ReduceOutcome], None] | None = None, workers: int = 1,
               scheduler: str | None = None, retries: int | None = None,
               work: Callable[[ReduceJob], ReducedFile] = reduce_job,
               sweep: bool = True, executor: FrameExecutor | None = None
               ) -> list[ReduceOutcome]:
    """Reduce frames, one transaction each; a failure is recorded and the rest go on.

    Parameters
    ----------
    engine, ctx
        The catalogue and the job context (profiles, policy, layout).
    frame_ids : sequence of int
        Frames to reduce, in this order of submission.
    kind : {'final', 'quicklook'}
        Product kind; a final product replaces the frame's current quick-look.
    live : bool
        Match as in live mode (only masters available when the frame was taken).
    force, redo_superseded : bool
        Reduce again frames already reduced from the same inputs (``force``), or
        from other inputs than today's best masters (``redo_superseded``).
    cosmic_threads : int, optional
        OpenMP threads per job; default ``max(1, cores // workers)``.
    progress : callable, optional
        Called with each frame's outcome as it is known.
    workers : int
        Local worker processes (1: in this process). Ignored with ``scheduler``.
    scheduler : str, optional
        Address of a Dask distributed scheduler whose workers do the work.
    retries : int, optional
        Further tries of a failed job (default ``ctx.reduce_retries``).
    work : callable
        The worker function (:func:`~nightlog.coordinator.reduce_job.reduce_job`);
        it must be importable by name where the workers run.
    sweep : bool
        First remove the archive's temporaries left by interrupted writes
        (:func:`~nightlog.coordinator.temporaries.sweep_archive`); the watch daemon,
        which sweeps at start, turns it off for its quick-looks.
    executor : FrameExecutor, optional
        Workers already started (the night's master builds used them); then
        ``workers``, ``scheduler`` and ``cosmic_threads`` are not used.

    Returns
    -------
    list of ReduceOutcome
        One per distinct frame id, in the order given.

    Raises
    ------
    ReduceInterrupted
        On Ctrl-C, after recording what the busy workers finished.
    ReduceStopped
        The catalogue stayed unreachable through ``ctx.db_backoff``'s retries.
    """
    if sweep:
        sweep_archive(engine, ctx)
    options = {"kind": kind, "live": live, "force": force, "redo_superseded": redo_superseded}
    with contextlib.ExitStack() as stack:
        if executor is None:
            executor = stack.enter_context(
                open_executor(workers, scheduler, threads=cosmic_threads))
        claims = stack.enter_context(FrameClaims(engine))
        run = FrameDispatcher(engine, ctx, executor, work, options,
                              ctx.reduce_retries if retries is None else retries, progress,
                              claims)
        try:
            return run.run(frame_ids)
        finally:
            keep_statistics(engine)  # products committed: the planner's statistics


def science_frames(session: Session, *, night: dt.date | None = None,
                   since: dt.date | None = None) -> list[int]:
    """Ids of the latest science frames (see the catalogue's
    :func:`~nightlog.catalogue.frames.science_frame_ids`)."""
    return science_frame_ids(session, night=night, since=since)
