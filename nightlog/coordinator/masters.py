"""Building master calibrations when a group has enough frames.

A group (kind, profile grouping fields, night) is *due* when it holds at least
the profile's minimum number of frames and its frame set differs from the inputs
of its newest master: a new group gets version 1, a group that received more
frames is rebuilt as the next version and the old one is kept, superseded, for
provenance.

Before a frame enters a master it is checked, and every rejection is recorded on
the master with its reason: a dark whose CCD temperature departs from its set
point; a bias whose level or noise departs from its group; a flat that is
under-exposed or too close to saturation. Frames flagged bad never enter.

The master file carries its provenance: the software version, a parameter
digest, the masters it was calibrated with (id and checksum) and a
``PROVENANCE`` table of every frame considered, used or rejected.

A build runs as a reduction does: planned in the coordinating process
(:mod:`~nightlog.coordinator.master_plan`), built by any worker without the
catalogue (:mod:`~nightlog.coordinator.master_job`) and recorded in one
transaction. Biases are built first, then darks, then flats, so that each kind is
calibrated with the masters just built; the groups of one kind are independent and
are built in parallel on the executor given (this process, local processes or Dask).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from nightlog.calibration.grouping import GroupSpec, group_of
from nightlog.catalogue.awaiting import awaiting_nights
from nightlog.catalogue.engine import make_sessionmaker
from nightlog.catalogue.masters import (
    inputs_of,
    is_external,
    latest_built_version,
    latest_version,
)
from nightlog.catalogue.models import Frame
from nightlog.catalogue.planner_statistics import keep_statistics
from nightlog.coordinator.context import JobContext
from nightlog.coordinator.executors import FrameExecutor, open_executor
from nightlog.coordinator.master_job import (
    BuiltMaster,
    MasterJob,
    MasterRefused,
    build_master_job,
)
from nightlog.coordinator.master_plan import (
    BuildOutcome,
    DueGroup,
    MasterPlan,
    master_flags,
    plan_master,
    record_health,
    record_master,
)
from nightlog.coordinator.retry import failure_cause
from nightlog.coordinator.short_groups import GroupChoice, ShortGroup, choose_short
from nightlog.coordinator.temporaries import sweep_archive
from nightlog.errors import NightlogError
from nightlog.states import BuildStatus, FrameStatus

__all__ = ["BuildOutcome", "DueGroup", "build_threads", "find_due", "group_counts",
           "run_build"]

log = logging.getLogger("nightlog.build")
_ORDER = {"bias": 0, "dark": 1, "flat": 2}
_FAILURES = (NightlogError, SQLAlchemyError, OSError)
BuildWork = Callable[[MasterJob], BuiltMaster | MasterRefused]


def _candidate_nights(session: Session) -> list[dt.date]:
    # The calibration frames (the kinds of _ORDER) no master lists yet are kept apart
    # (awaiting_masters): a handful in a catalogue of years, where the frames hold
    # half a million.
    return awaiting_nights(session)


def find_due(session: Session, ctx: JobContext, *, night: dt.date | None = None,
             short: list[ShortGroup] | None = None) -> list[DueGroup]:
    """Groups that need a (new version of their) master, bias before dark before flat.

    Without ``night``, only nights with calibration frames not yet in any master
    are looked at. A group short of frames is completed by the profile's policy
    (:func:`~nightlog.coordinator.short_groups.choose_short`: multi-night, or
    provisional); one it cannot complete is appended to ``short``.
    """
    nights = [night] if night is not None else _candidate_nights(session)
    due: list[DueGroup] = []
    for n in nights:
        frames = session.scalars(
            select(Frame).where(Frame.night == n, Frame.kind.in_(tuple(_ORDER)),
                                Frame.is_latest.is_(True), Frame.status == FrameStatus.OK)
            .order_by(Frame.obs_time, Frame.id)
        )
        groups: dict[str, tuple[GroupSpec, list[Frame]]] = {}
        for frame in frames:
            spec = group_of(frame, frame.kind, ctx.profile_of(frame))
            groups.setdefault(spec.key, (spec, []))[1].append(frame)
        for spec, members in groups.values():
            profile = ctx.registry.get(spec.profile)
            choice = GroupChoice(tuple(members), (n,))
            if len(members) < profile.min_frames.get(spec.kind, 5):
                found = choose_short(session, ctx, spec, n, members)
                if isinstance(found, ShortGroup):
                    if short is not None:
                        short.append(found)
                    continue
                choice = found
            previous = latest_version(session, spec.key, n)
            ids = tuple(f.id for f in choice.frames)
            if previous is not None:
                # An external master (calib add) stands until the group's frames
                # differ from those of the newest master nightlog built of them.
                built = (latest_built_version(session, spec.key, n) if is_external(previous)
                         else previous)
                before = (set() if built is None
                          else {mi.frame_id for mi, _ in inputs_of(session, built)})
                if before == set(ids):
                    continue
            due.append(DueGroup(spec, n, ids, None if previous is None else previous.id,
                                multi_night=choice.multi_night,
                                provisional=choice.provisional, nights=choice.nights))
    due.sort(key=lambda d: (d.night, _ORDER[d.kind], d.group.key))
    return due


def build_threads(executor: FrameExecutor, builds: int) -> int:
    """Cores each of ``builds`` concurrent master builds may use on ``executor``.

    The executor's workers share its cores (``workers × threads``); when fewer builds
    than workers run (a kind with one group), each build takes the idle workers'
    cores as well, so that the morning's bias, dark and flat steps, which wait for
    each other, do not leave cores idle; never more than the smallest host has (a
    cluster's idle workers may sit on other machines).
    """
    at_once = max(1, min(builds, executor.workers))
    return max(1, min(executor.host_cores, executor.threads * executor.workers // at_once))


def _failed(item: DueGroup, exc: BaseException) -> BuildOutcome:
    reason = ("built concurrently by another process" if isinstance(exc, IntegrityError)
              else f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:300]}")
    return BuildOutcome(kind=item.kind, night=item.night, group_key=item.group.key,
                        status=BuildStatus.FAILED, reason=reason, cause=failure_cause(exc))


class _MasterBuilds:
    """One call of :func:`run_build`: due groups planned, built on the executor, recorded."""

    def __init__(self, engine: Engine, ctx: JobContext, executor: FrameExecutor,
                 work: BuildWork) -> None:
        self.make_session: sessionmaker[Session] = make_sessionmaker(engine)
        self.ctx, self.executor, self.work = ctx, executor, work

    def plan(self, item: DueGroup) -> MasterPlan | BuildOutcome:
        def _plan() -> MasterPlan | BuildOutcome:
            with self.make_session() as session:
                return plan_master(session, item, self.ctx)
        try:
            return self.ctx.db_backoff.call(_plan)
        except _FAILURES as exc:
            return _failed(item, exc)

    def record(self, item: DueGroup, plan: MasterPlan, built: BuiltMaster) -> BuildOutcome:
        """One transaction; the file is deleted unless a committed row names it."""
        def _record() -> tuple[int, int, bool, list[str]]:
            with self.make_session() as session, session.begin():
                master, ours = record_master(session, plan, built)
                if ours:
                    record_health(session, master, self.ctx.health)
                said = [str(d.get("message")) for d in
                        (master.stats or {}).get("header_disagrees", [])]
                return master.id, master.version, ours, said
        try:
            master_id, version, ours, warnings = self.ctx.db_backoff.call(_record)
        except BaseException as exc:
            Path(built.path).unlink(missing_ok=True)
            if isinstance(exc, _FAILURES):
                return _failed(item, exc)
            raise
        outcome = BuildOutcome(kind=item.kind, night=item.night, group_key=item.group.key,
                               status=BuildStatus.BUILT, master_id=master_id, version=version,
                               n_used=len(built.used), rejected=list(built.rejected),
                               seconds=built.seconds, worker=built.worker,
                               warnings=warnings if ours else [],
                               flags=master_flags(item.multi_night, item.provisional),
                               peak_rss=built.peak_rss, cpu_seconds=built.cpu_seconds)
        for text in outcome.warnings:
            log.warning("%s master %s: %s", item.kind, master_id, text,
                        extra={"event": "header-disagrees", "master": master_id})
        if not ours:  # another process built this group meanwhile: its master stays
            Path(built.path).unlink(missing_ok=True)
            outcome.status, outcome.reason = BuildStatus.SKIPPED, "built meanwhile"
            outcome.n_used = 0
        return outcome

    def build(self, due: list[DueGroup]) -> list[BuildOutcome]:
        """Plan every group of ``due``, build them at once on the executor, record each
        as it finishes."""
        outcomes: list[BuildOutcome] = []
        in_flight: dict[int, tuple[DueGroup, MasterPlan]] = {}
        planned: list[tuple[DueGroup, MasterPlan]] = []
        for item in due:
            plan = self.plan(item)
            if isinstance(plan, BuildOutcome):
                outcomes.append(plan)
            else:
                planned.append((item, plan))
        threads = build_threads(self.executor, len(planned))
        for item, plan in planned:
            job = dataclasses.replace(plan.job, threads=threads)
            in_flight[self.executor.submit(self.work, job)] = (item, plan)
        finished: list[tuple[int, object, BaseException | None]] = []
        try:
            while in_flight:
                finished = self.executor.wait()
                while finished:
                    token, result, error = finished.pop(0)
                    item, plan = in_flight.pop(token)
                    if error is not None:
                        outcomes.append(_failed(item, error))
                    elif isinstance(result, MasterRefused):
                        outcomes.append(BuildOutcome(
                            kind=item.kind, night=item.night, group_key=item.group.key,
                            status=BuildStatus.SKIPPED, reason=result.reason,
                            rejected=list(result.rejected)))
                    else:
                        assert isinstance(result, BuiltMaster)
                        outcomes.append(self.record(item, plan, result))
        except BaseException:
            for _, result, _error in finished:  # made, but never to be recorded
                if isinstance(result, BuiltMaster):
                    Path(result.path).unlink(missing_ok=True)
            raise
        return outcomes


def run_build(engine: Engine, ctx: JobContext, *, night: dt.date | None = None,
              workers: int = 1, scheduler: str | None = None,
              executor: FrameExecutor | None = None,
              work: BuildWork = build_master_job, sweep: bool = True) -> list[BuildOutcome]:
    """Build every due master: one committed transaction per master.

    Parameters
    ----------
    engine, ctx
        The catalogue and the job context (profiles, policy, layout).
    night : datetime.date, optional
        Only this night's groups (default: every night with calibration frames in
        no master yet).
    workers : int
        Local worker processes (1: in this process). Ignored with ``scheduler``.
    scheduler : str, optional
        Address of a Dask distributed scheduler whose workers build the masters.
    executor : FrameExecutor, optional
        Workers already started (the morning run shares its reduction's); then
        ``workers`` and ``scheduler`` are not used, and the executor stays open.
    work : callable
        The worker function (:func:`~nightlog.coordinator.master_job.build_master_job`);
        it must be importable by name where the workers run.
    sweep : bool
        First remove the archive's temporaries left by interrupted writes
        (:func:`~nightlog.coordinator.temporaries.sweep_archive`); the watch daemon,
        which sweeps at start, turns it off for its live builds.

    Returns
    -------
    list of BuildOutcome
        One per group looked at, by night, then bias, dark, flat; a group short of
        frames that the profile's policy could not complete is ``too-few``, with
        its count and what is missing.

    Notes
    -----
    A failure (bad file, full disk, a concurrent build of the same version) leaves
    that group without its master and deletes its file; it is reported and the
    others go on. Biases are built first, then the due groups are looked at again
    for darks, then for flats, so that darks use the biases just built. A
    catalogue that goes away (a server restart, a SQLite file locked for longer
    than the busy timeout) is waited for, within ``ctx.db_backoff``, while a group
    is planned or recorded; then that group is reported failed.
    """
    if sweep:
        sweep_archive(engine, ctx)
    make_session = make_sessionmaker(engine)
    outcomes: list[BuildOutcome] = []
    done: set[tuple[str, dt.date]] = set()

    short: dict[tuple[str, dt.date], ShortGroup] = {}

    def _due() -> list[DueGroup]:
        found: list[ShortGroup] = []
        with make_session() as session:
            due = [d for d in find_due(session, ctx, night=night, short=found)
                   if (d.group.key, d.night) not in done]
        short.update(((g.group.key, g.night), g) for g in found)
        return due

    with contextlib.ExitStack() as stack:
        if executor is None:
            executor = stack.enter_context(open_executor(workers, scheduler))
        builds = _MasterBuilds(engine, ctx, executor, work)
        for kind in _ORDER:
            while True:
                due = [d for d in ctx.db_backoff.call(_due) if d.kind == kind]
                if not due:
                    break
                done.update((d.group.key, d.night) for d in due)
                outcomes.extend(builds.build(due))
                keep_statistics(engine)  # masters committed: the planner's statistics
    outcomes.extend(BuildOutcome(kind=g.kind, night=g.night, group_key=g.group.key,
                                 status=BuildStatus.TOO_FEW, reason=g.missing, n_used=g.count)
                    for key, g in short.items() if key not in done)
    outcomes.sort(key=lambda o: (o.night, _ORDER[o.kind], o.group_key))
    return outcomes


def group_counts(session: Session, ctx: JobContext, night: dt.date) -> dict[str, int]:
    """Frames per calibration group of ``night`` (for status displays)."""
    counts: dict[str, int] = defaultdict(int)
    for frame in session.scalars(select(Frame).where(Frame.night == night,
                                                     Frame.kind.in_(tuple(_ORDER)))):
        counts[group_of(frame, frame.kind, ctx.profile_of(frame)).key] += 1
    return dict(counts)
