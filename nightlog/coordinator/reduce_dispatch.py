"""Keeping every worker busy through a reduction: plan, submit, collect, record, retry.

:class:`FrameDispatcher` is one call of :func:`~nightlog.coordinator.reduce.run_reduce`.
It claims each frame, plans it in its own short session, hands the job to the
executor, and records each product as it comes back, in its own transaction; a
failed job is tried again up to ``retries`` times, then the frame's failure is
recorded with its reason and cause. Jobs lost together when a worker died run again
one at a time, so that a job that kills its worker is the only one charged for it.
An interruption records what the busy workers finish (:class:`ReduceInterrupted`);
a catalogue gone for good stops the run (:class:`ReduceStopped`) and deletes what
was made but cannot be recorded.
"""

from __future__ import annotations

import functools
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from nightlog.catalogue.claims import FrameClaims
from nightlog.catalogue.engine import make_sessionmaker
from nightlog.catalogue.holds import record_hold, resolve_hold
from nightlog.catalogue.models import Frame
from nightlog.catalogue.reductions import record_failure, resolve_failure
from nightlog.coordinator.context import JobContext
from nightlog.coordinator.executors import FrameExecutor, InProcessExecutor, WorkerLost
from nightlog.coordinator.reduce_job import ReducedFile, ReduceJob
from nightlog.coordinator.reduce_plan import FramePlan, ReduceOutcome, plan_frame
from nightlog.coordinator.reduce_record import (
    record_reduction,
    reduced_meanwhile,
    without_reason,
)
from nightlog.coordinator.replaced_files import set_aside_replaced
from nightlog.coordinator.retry import CatalogueUnreachable, Stopped, failure_cause
from nightlog.errors import CatalogueError, NightlogError
from nightlog.states import FailureCause, HoldState, ReduceStatus

__all__ = ["FrameDispatcher", "ReduceInterrupted", "ReduceStopped"]

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


class FrameDispatcher:
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
                if plan.status in (ReduceStatus.HELD, ReduceStatus.STOPPED):
                    self.hold(plan)
                self.finish(plan)
            else:
                self.submit(plan)

    def plan(self, frame_id: int) -> FramePlan | ReduceOutcome:
        with self.make_session() as session:
            frame = session.get(Frame, frame_id)
            if frame is None:
                return ReduceOutcome(frame_id, ReduceStatus.FAILED, reason="no such frame",
                                     cause=FailureCause.WORK)
            return plan_frame(session, frame, self.ctx, **self.options,
                              cosmic_threads=self.executor.threads)

    def hold(self, outcome: ReduceOutcome) -> None:
        """Record that a frame waits for (or was stopped for want of) a master, in its
        own transaction; the outcome says it whether or not the row is written."""
        def _record() -> None:
            with self.make_session() as session, session.begin():
                if session.get(Frame, outcome.frame_id) is not None:
                    record_hold(session, outcome.frame_id, state=HoldState(outcome.status),
                                steps=outcome.missing, reason=outcome.reason)

        try:
            self.ctx.db_backoff.call(_record)
        except _CATALOGUE_GONE:
            self.claims.release(outcome.frame_id)
            raise
        except (SQLAlchemyError, CatalogueError):
            pass

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

        outcome = ReduceOutcome(frame_id, ReduceStatus.FAILED, reason=_reason(exc),
                                attempts=attempts, cause=failure_cause(exc))
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
                resolve_hold(session, frame_id)
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
            self.finish(ReduceOutcome(frame_id, ReduceStatus.UP_TO_DATE, product_id=product_id,
                                      reason="reduced meanwhile by another process",
                                      attempts=self.attempts[frame_id]))
            return
        set_aside_replaced(self.make_session, product_id)
        self.finish(ReduceOutcome(frame_id, ReduceStatus.REDUCED, product_id=product_id,
                                  reason=without_reason(plan.missing_reasons),
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


