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
(:mod:`~nightlog.coordinator.reduce_plan`), the workers only read and write files
(:mod:`~nightlog.coordinator.reduce_job`), so the catalogue sees one connection
whatever the number of workers. A job that fails, or whose worker dies, is tried
again up to ``retries`` times; then the frame is recorded as failed with its
reason (:mod:`nightlog.catalogue.reductions`) and the night goes on. An
interruption stops the submissions, records what the busy workers finish, and
raises :class:`ReduceInterrupted`; running the same reduction again finishes the
work, skipping what is done. Each frame is claimed before it is planned
(:class:`~nightlog.catalogue.claims.FrameClaims`): a frame another run is
reducing is put off until that run is done with it, and then found up to date.
A catalogue that stays unreachable through the retries (``ctx.db_backoff``)
stops the run at once with :class:`ReduceStopped` rather than costing every
remaining frame its own round of retries: products made but not recorded are
deleted, and the same command finishes the night once the catalogue is back.
"""

from __future__ import annotations

import datetime as dt
import functools
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from nightlog.catalogue.claims import FrameClaims
from nightlog.catalogue.engine import make_sessionmaker
from nightlog.catalogue.models import Frame
from nightlog.catalogue.reductions import record_failure, resolve_failure
from nightlog.coordinator.context import JobContext
from nightlog.coordinator.executors import (
    FrameExecutor,
    InProcessExecutor,
    WorkerLost,
    open_executor,
)
from nightlog.coordinator.reduce_job import ReducedFile, ReduceJob, reduce_job
from nightlog.catalogue.products import current_product
from nightlog.coordinator.reduce_plan import (
    FramePlan,
    ReduceOutcome,
    inputs_key,
    plan_frame,
    record_reduction,
    reduced_meanwhile,
    science_parameters,
)
from nightlog.coordinator.retry import CatalogueUnreachable, Stopped
from nightlog.coordinator.temporaries import sweep_archive
from nightlog.errors import CatalogueError, NightlogError

__all__ = ["ReduceInterrupted", "ReduceOutcome", "ReduceStopped", "current_product",
           "inputs_key",
           "reduce_frame", "run_reduce", "science_frames", "science_parameters"]

_RECOVERABLE = (NightlogError, SQLAlchemyError, OSError)
_CLAIM_POLL_SECONDS = 0.5
# The catalogue gone for good (through the retries), or the caller asked to stop while
# waiting for it: the run stops.
_CATALOGUE_GONE = (CatalogueUnreachable, Stopped)


class ReduceInterrupted(KeyboardInterrupt):
    """The reduction was interrupted; ``outcomes`` holds the frames finished before.

    A :class:`KeyboardInterrupt`, so code that stops on Ctrl-C still does.
    """

    def __init__(self, outcomes: list[ReduceOutcome], unfinished: int) -> None:
        super().__init__(f"interrupted: {len(outcomes)} frame(s) done, {unfinished} not")
        self.outcomes = outcomes
        self.unfinished = unfinished


class ReduceStopped(CatalogueUnreachable):
    """The catalogue stayed unreachable, so the run stopped; ``outcomes`` holds the
    frames whose outcome is known, ``unfinished`` how many the next run will do."""

    def __init__(self, cause: CatalogueUnreachable, outcomes: list[ReduceOutcome],
                 unfinished: int) -> None:
        super().__init__(f"{cause}; stopped with {unfinished} frame(s) not reduced: run "
                         "the same command again once the catalogue is back")
        self.outcomes = outcomes
        self.unfinished = unfinished


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:300] if text else ''}".rstrip(": ")


def reduce_frame(session: Session, frame: Frame, ctx: JobContext, *, kind: str = "final",
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
        return plan
    made = reduce_job(plan.job)
    written.append(Path(made.path))
    product = record_reduction(session, plan, made)
    resolve_failure(session, frame.id)
    return ReduceOutcome(frame.id, "reduced", product_id=product.id, missing=plan.missing,
                         attempts=1, seconds=made.seconds, peak_rss=made.peak_rss,
                         worker=made.worker, cpu_seconds=made.cpu_seconds)


class _FrameDispatcher:
    """One call of :func:`run_reduce`: frames to plan, jobs in flight, outcomes."""

    def __init__(self, engine: Engine, ctx: JobContext, executor: FrameExecutor,
                 work: Callable[[ReduceJob], ReducedFile], options: dict[str, Any],
                 retries: int, progress: Callable[[ReduceOutcome], None] | None,
                 claims: FrameClaims) -> None:
        self.make_session: sessionmaker[Session] = make_sessionmaker(engine)
        self.claims = claims
        self.put_off: deque[int] = deque()  # claimed by another process for now
        self.ctx, self.executor, self.work = ctx, executor, work
        self.options, self.retries, self.progress = options, retries, progress
        self.todo: deque[int] = deque()
        self.suspects: deque[FramePlan] = deque()  # lost with others: run alone
        self.in_flight: dict[int, FramePlan] = {}
        self.attempts: Counter[int] = Counter()
        self.outcomes: dict[int, ReduceOutcome] = {}

    def finish(self, outcome: ReduceOutcome) -> None:
        self.claims.release(outcome.frame_id)
        self.outcomes[outcome.frame_id] = outcome
        if self.progress is not None:
            self.progress(outcome)

    def fill(self) -> None:
        """Plan frames and submit their jobs until every worker has one.

        Jobs lost together with others when a worker died run first, one at a
        time, so that a job that kills its worker is the only one charged for it.
        """
        if self.suspects:
            if not self.in_flight:
                self.submit(self.suspects.popleft())
            return
        while self.todo and len(self.in_flight) < self.executor.workers:
            frame_id = self.todo.popleft()
            if not self.claims.claim(frame_id):
                self.put_off.append(frame_id)  # another run is reducing it
                continue
            try:
                plan = self.ctx.db_backoff.call(functools.partial(self.plan, frame_id))
            except _CATALOGUE_GONE:
                self.claims.release(frame_id)
                raise
            except _RECOVERABLE as exc:
                self.fail(frame_id, exc, key=None)
                continue
            if isinstance(plan, ReduceOutcome):
                self.finish(plan)
            else:
                self.submit(plan)

    def plan(self, frame_id: int) -> FramePlan | ReduceOutcome:
        with self.make_session() as session:
            frame = session.get(Frame, frame_id)
            if frame is None:
                return ReduceOutcome(frame_id, "failed", reason="no such frame")
            return plan_frame(session, frame, self.ctx, **self.options,
                              cosmic_threads=self.executor.threads)

    def submit(self, plan: FramePlan) -> None:
        self.attempts[plan.job.frame_id] += 1
        self.in_flight[self.executor.submit(self.work, plan.job)] = plan

    def fail(self, frame_id: int, exc: BaseException, key: str | None) -> None:
        """Record ``frame_id`` as failed (its own transaction) and report it."""
        attempts = self.attempts[frame_id]

        def _record() -> None:
            with self.make_session() as session, session.begin():
                if session.get(Frame, frame_id) is not None:
                    record_failure(session, frame_id, kind=self.options["kind"],
                                   attempts=attempts, error=type(exc).__name__,
                                   reason=_reason(exc), inputs_key=key,
                                   software_version=self.ctx.software_version)

        outcome = ReduceOutcome(frame_id, "failed", reason=_reason(exc), attempts=attempts)
        try:
            self.ctx.db_backoff.call(_record)
        except _CATALOGUE_GONE:
            self.finish(outcome)  # the outcome still says why; the run stops
            raise
        except (SQLAlchemyError, CatalogueError):
            pass  # the outcome still says why
        self.finish(outcome)

    def record(self, plan: FramePlan, made: ReducedFile) -> None:
        """Record ``made`` (its own transaction, retried while the catalogue is away).

        A frame another process reduced from the same inputs meanwhile is
        ``up-to-date``: its product stays, this run's file is deleted.
        """
        frame_id = plan.job.frame_id

        def _record() -> tuple[int, bool]:
            with self.make_session() as session, session.begin():
                done = reduced_meanwhile(session, plan, made)
                if done is not None:
                    return done.id, done.path == made.path
                product_id = record_reduction(session, plan, made).id
                resolve_failure(session, frame_id)
                return product_id, True

        try:
            product_id, ours = self.ctx.db_backoff.call(_record)
        except _CATALOGUE_GONE:
            # Most likely never recorded. Should the commit have been made and its
            # answer lost, the product's row names a missing file, and the next run
            # reduces the frame again (plan_frame never calls such a product current).
            Path(made.path).unlink(missing_ok=True)
            self.claims.release(frame_id)
            raise
        except _RECOVERABLE as exc:
            Path(made.path).unlink(missing_ok=True)
            self.fail(frame_id, exc, key=plan.key)
            return
        if not ours:
            Path(made.path).unlink(missing_ok=True)
            self.finish(ReduceOutcome(frame_id, "up-to-date", product_id=product_id,
                                      reason="reduced meanwhile by another process",
                                      attempts=self.attempts[frame_id]))
            return
        self.finish(ReduceOutcome(frame_id, "reduced", product_id=product_id,
                                  missing=plan.missing, attempts=self.attempts[frame_id],
                                  seconds=made.seconds, peak_rss=made.peak_rss,
                                  worker=made.worker, cpu_seconds=made.cpu_seconds))

    def collect(self, *, retry: bool = True) -> None:
        """Wait for finished jobs; retry or fail the failed, keep workers busy, record.

        Should the catalogue be lost meanwhile, every finished job is out of
        ``in_flight`` and every file made but not recorded is deleted before the
        error goes on.
        """
        finished = deque(self.executor.wait())
        made: deque[tuple[FramePlan, ReducedFile]] = deque()
        try:
            while finished:
                token, result, error = finished.popleft()
                plan = self.in_flight.pop(token)
                if error is None:
                    made.append((plan, result))
                elif not retry:
                    continue  # interrupted: the next run does it
                elif isinstance(error, WorkerLost) and error.shared:
                    self.attempts[plan.job.frame_id] -= 1  # not known to be this job's doing
                    self.suspects.append(plan)
                elif self.attempts[plan.job.frame_id] <= self.retries:
                    self.submit(plan)
                else:
                    self.fail(plan.job.frame_id, error, key=plan.key)
            if retry:
                self.fill()  # before recording, so that no worker waits for the catalogue
            while made:
                plan, result = made.popleft()
                self.record(plan, result)
        except _CATALOGUE_GONE:
            self._discard(finished)
            for _, result in made:  # made, but the catalogue is gone: not recorded
                Path(result.path).unlink(missing_ok=True)
            raise

    def run(self, frame_ids: Sequence[int]) -> list[ReduceOutcome]:
        ids = list(dict.fromkeys(frame_ids))
        self.todo.extend(ids)

        def done() -> list[ReduceOutcome]:
            return [self.outcomes[i] for i in ids if i in self.outcomes]

        try:
            while self.todo or self.in_flight or self.suspects or self.put_off:
                self.fill()
                if self.in_flight:
                    self.collect()
                if self.put_off and not self.todo:
                    if not self.in_flight and not self.suspects:
                        time.sleep(_CLAIM_POLL_SECONDS)  # the other run finishes them
                    self.todo.extend(self.put_off)
                    self.put_off.clear()
        except KeyboardInterrupt:
            self.todo.clear()
            self.suspects.clear()
            self.put_off.clear()
            try:
                # Jobs already running in worker processes finish and are recorded.
                while self.in_flight and not isinstance(self.executor, InProcessExecutor):
                    self.collect(retry=False)
            except KeyboardInterrupt:
                pass  # asked twice: abandon them
            except _CATALOGUE_GONE:
                self._drop_unrecordable()  # closes the executor
            self.executor.close(abandon=bool(self.in_flight))
            finished = done()
            raise ReduceInterrupted(finished, len(ids) - len(finished)) from None
        except Stopped:
            self._drop_unrecordable()
            raise
        except CatalogueUnreachable as exc:
            self._drop_unrecordable()
            finished = done()
            raise ReduceStopped(exc, finished, len(ids) - len(finished)) from exc
        return [self.outcomes[i] for i in ids]

    def _discard(self, finished: Iterable[tuple[int, Any, BaseException | None]]) -> None:
        """Jobs finished that will not be recorded: out of ``in_flight``, files deleted."""
        for token, result, _error in finished:
            self.in_flight.pop(token, None)
            if result is not None:
                Path(result.path).unlink(missing_ok=True)

    def _drop_unrecordable(self) -> None:
        """Stop: let the busy workers finish (a job cannot be stopped half-written)
        and delete what they made, which cannot be recorded."""
        self.todo.clear()
        self.suspects.clear()
        self.put_off.clear()
        try:
            while self.in_flight and not isinstance(self.executor, InProcessExecutor):
                finished = self.executor.wait()
                if not finished:
                    break  # nothing more will come back
                self._discard(finished)
        except KeyboardInterrupt:
            pass  # asked to stop: abandon them
        self.executor.close(abandon=bool(self.in_flight))
        self.in_flight.clear()


def run_reduce(engine: Engine, ctx: JobContext, frame_ids: Sequence[int], *,
               kind: str = "final", live: bool = False, force: bool = False,
               redo_superseded: bool = False, cosmic_threads: int | None = None,
               progress: Callable[[ReduceOutcome], None] | None = None, workers: int = 1,
               scheduler: str | None = None, retries: int | None = None,
               work: Callable[[ReduceJob], ReducedFile] = reduce_job,
               sweep: bool = True) -> list[ReduceOutcome]:
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
    with (open_executor(workers, scheduler, threads=cosmic_threads) as executor,
          FrameClaims(engine) as claims):
        run = _FrameDispatcher(engine, ctx, executor, work, options,
                               ctx.reduce_retries if retries is None else retries, progress,
                               claims)
        return run.run(frame_ids)


def science_frames(session: Session, *, night: dt.date | None = None,
                   since: dt.date | None = None) -> list[int]:
    """Ids of the latest science frames (of ``night``, or of every night from ``since``),
    in time order."""
    stmt = select(Frame.id).where(Frame.kind == "science", Frame.is_latest.is_(True),
                                  Frame.status == "ok")
    if night is not None:
        stmt = stmt.where(Frame.night == night)
    if since is not None:
        stmt = stmt.where(Frame.night >= since)
    return list(session.scalars(stmt.order_by(Frame.obs_time, Frame.id)))
