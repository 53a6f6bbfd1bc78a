"""What the night's new frames set going in the watch daemon: master builds, quick-looks
and the morning reduction.

The :class:`~nightlog.daemon.watch.Watcher` takes files in; :class:`LiveWork` is told
what arrived (:meth:`LiveWork.calibration_arrived`, :meth:`LiveWork.science_arrived`)
and, between chunks, does one piece of work when it is due:

- calibration frames arm a build that waits until the folders have been quiet for
  ``build_delay`` (at most ``build_max_delay``), so a burst of twenty biases gives
  one master; builds are serialised across daemons (:mod:`.live_builds`);
- each new science frame gets a live quick-look once no build is armed, so it has
  the masters of the burst just received;
- with ``[reduction] morning_at``, the night that ended is reduced at that time.

A build or quick-look that fails because the catalogue is away or the archive
refuses writes (told by the failure's :class:`~nightlog.states.FailureCause`, not by
its words) is tried again with the outage backoff (:mod:`.store_faults`).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from nightlog.catalogue.engine import make_sessionmaker
from nightlog.coordinator.context import JobContext
from nightlog.coordinator.master_readahead import keep_built_masters
from nightlog.coordinator.masters import BuildOutcome
from nightlog.coordinator.reduce import run_reduce
from nightlog.coordinator.retry import CatalogueUnreachable
from nightlog.daemon.heartbeat import WatchStats
from nightlog.daemon.live_builds import build_due, build_lock, clear_interrupted_builds
from nightlog.daemon.morning import (
    MorningRun,
    announce_morning,
    next_morning_run,
    run_morning,
)
from nightlog.daemon.options import WatchOptions
from nightlog.daemon.store_faults import StoreBackoff
from nightlog.errors import NightlogError
from nightlog.states import BuildStatus, FailureCause, ProductKind, ReduceStatus

__all__ = ["LiveWork"]

log = logging.getLogger("nightlog.watch")
_T = TypeVar("_T")


class LiveWork:
    """Builds, quick-looks and the morning run of one watch daemon.

    Parameters
    ----------
    engine, job_ctx, options
        The catalogue, the build/reduction context and the daemon's options.
    stats : WatchStats
        The daemon's counters (shared with its heartbeat).
    clock : callable
        Wall-clock seconds, for debouncing and backoff.
    retry : callable
        ``retry(fn, what)`` runs ``fn`` through the daemon's outage backoff.
    stop : threading.Event
        Set when the daemon stops (ends a wait).
    lock_file : pathlib.Path
        The build lock on SQLite (PostgreSQL uses an advisory lock).
    """

    def __init__(self, engine: Engine, job_ctx: JobContext, options: WatchOptions, *,
                 stats: WatchStats, clock: Callable[[], float],
                 retry: Callable[[Callable[[], Any], str], Any], stop: threading.Event,
                 lock_file: Path) -> None:
        self.engine, self.job_ctx, self.options = engine, job_ctx, options
        self.stats, self.clock, self.stop = stats, clock, stop
        self._retry_with = retry
        self._lock_file = lock_file
        self._quicklooks: deque[int] = deque()
        # Builds and quick-looks that failed on the archive (read-only, full, permission)
        # are tried again with the catalogue outage's backoff.
        self._store = StoreBackoff(options.backoff_first, options.backoff_cap, clock)
        self._build_retry = False
        self._calib_first: float | None = None
        self._calib_last = 0.0
        self._last_morning: dt.datetime | None = None
        self._next_morning: dt.datetime | None = None

    def _retry(self, fn: Callable[[], _T], what: str) -> _T:
        result: _T = self._retry_with(fn, what)
        return result

    # -- what arrived -------------------------------------------------------------------

    def calibration_arrived(self) -> None:
        """A calibration frame was taken in: arm (or keep armed) a build."""
        now = self.clock()
        if self._calib_first is None:
            self._calib_first = now
        self._calib_last = now

    def science_arrived(self, frame_id: int) -> None:
        """A science frame was taken in: a quick-look is owed (if they are on)."""
        if self.options.quicklook:
            self._quicklooks.append(frame_id)

    def catch_up(self, owed: Iterable[int]) -> None:
        """At start: build what is due first, and make the quick-looks still owed."""
        now = self.clock()
        self._calib_first = now - self.options.build_max_delay
        self._calib_last = now - self.options.build_delay
        self._quicklooks.extend(owed)

    @property
    def build_armed(self) -> bool:
        """Whether calibration frames wait for their build."""
        return self._calib_first is not None

    @property
    def queued(self) -> int:
        """Quick-looks waiting."""
        return len(self._quicklooks)

    def wait_hint(self, waits: Sequence[float]) -> float:
        """How long the daemon's loop may wait for events, given its own ``waits``."""
        if self.quicklook_is_due():
            return 0.0
        every = list(waits)
        if self._store.waiting:
            every.append(self._store.wait_left())
        return max(0.0, min(every))

    # -- builds, quick-looks, the morning -------------------------------------------------

    def build_is_due(self, settling: int) -> bool:
        """Whether the armed build may run: the folders quiet long enough (nothing
        ``settling``), or the build waited its longest, or the archive refused it."""
        if self._store.waiting:  # the archive refused the last write: wait for the backoff
            return False
        if self._build_retry:
            return True
        if self._calib_first is None:
            return False
        now = self.clock()
        if now - self._calib_first >= self.options.build_max_delay:
            return True
        return settling == 0 and now - self._calib_last >= self.options.build_delay

    def build(self) -> None:
        """Build the due masters under the lock shared by daemons."""
        def build() -> list[BuildOutcome] | None:
            return build_due(self.engine, self.job_ctx, self._lock_file)

        outcomes = self._retry(build, "catalogue")
        if outcomes is None:  # another daemon is building: look again later
            self._calib_first = self._calib_last = self.clock()
            self._build_retry = False  # the re-armed build covers it
            log.info("another daemon is building masters; trying again later",
                     extra={"event": "build-busy"})
            return
        self._calib_first = None
        self._after_build_store(outcomes)
        for o in outcomes:
            self.stats.counts[f"master {o.status}"] += 1
            extra = {"event": "build", "kind": o.kind, "status": o.status,
                     "master_id": o.master_id, "group": o.group_key}
            if o.status == BuildStatus.BUILT:
                log.info("built %s master %s v%s of %s (%d frames)", o.kind, o.master_id,
                         o.version, o.night, o.n_used, extra=extra)
            elif o.status == BuildStatus.TOO_FEW:
                # A group still filling up during the night: said, without alarm (the
                # morning run's summary and the report count what stays short).
                log.info("%s master of %s not yet: %s", o.kind, o.night, o.reason,
                         extra={**extra, "reason": o.reason})
            else:
                log.warning("%s %s master of %s: %s", o.status, o.kind, o.night, o.reason,
                            extra={**extra, "reason": o.reason})
                if o.cause == FailureCause.CATALOGUE:
                    self._calib_first = self._calib_last = self.clock()  # try again
        built = sum(1 for o in outcomes if o.status == BuildStatus.BUILT)
        if built and self.options.quicklook:
            self._keep_built(outcomes)
        due = [o for o in outcomes if o.status != BuildStatus.TOO_FEW]
        if due:
            self.stats.did(f"built {built} master(s) of {len(due)} due")

    def _keep_built(self, outcomes: Sequence[BuildOutcome]) -> None:
        """Read the masters just built, and find their bits, while the daemon is idle:
        the next quick-look finds them ready. Only a head start: a failure is said and
        the quick-look reads them itself."""
        ids = [o.master_id for o in outcomes
               if o.status == BuildStatus.BUILT and o.master_id is not None]
        try:
            with make_sessionmaker(self.engine)() as session:
                keep_built_masters(session, self.job_ctx.registry, ids)
        except (NightlogError, SQLAlchemyError, OSError) as exc:
            log.info("masters %s not read ahead: %s", ids, exc,
                     extra={"event": "keep-masters-failed"})

    def _after_build_store(self, outcomes: Sequence[BuildOutcome]) -> None:
        """Builds that failed on the store are tried again after the backoff."""
        faults = [o for o in outcomes if o.cause == FailureCause.ARCHIVE]
        self._build_retry = bool(faults)
        if faults:
            self._store.failed(f"{len(faults)} master build(s)", faults[0].reason)
        elif any(o.status == BuildStatus.BUILT for o in outcomes):
            self._store.succeeded()

    def quicklook_is_due(self) -> bool:
        """Quick-looks wait for armed builds, builds the store refused, and the store's
        backoff."""
        return (bool(self._quicklooks) and self._calib_first is None
                and not self._build_retry and not self._store.waiting)

    def quicklook(self) -> None:
        """Reduce the next science frame as a live quick-look."""
        frame_id = self._quicklooks.popleft()
        try:
            (outcome,) = run_reduce(self.engine, self.job_ctx, [frame_id],
                                    kind=ProductKind.QUICKLOOK, live=True, sweep=False)
        except CatalogueUnreachable as exc:  # nothing half-done: made again later
            self._quicklooks.appendleft(frame_id)
            self.stats.counts["quicklook postponed"] += 1
            log.warning("quick-look of frame %d postponed: %s", frame_id, exc,
                        extra={"event": "quicklook", "frame_id": frame_id,
                               "status": "postponed"})
            self.stop.wait(self.options.backoff_first)
            return
        extra = {"event": "quicklook", "frame_id": frame_id, "status": outcome.status,
                 "product_id": outcome.product_id}
        if outcome.cause == FailureCause.ARCHIVE:
            self._quicklooks.appendleft(frame_id)  # the archive's fault: again, later
            self.stats.counts["quicklook postponed"] += 1
            self._store.failed(f"quick-look of frame {frame_id}", outcome.reason)
            return
        if outcome.status == ReduceStatus.REDUCED:
            self._store.succeeded()
        self.stats.counts[f"quicklook {outcome.status}"] += 1
        if outcome.status in (ReduceStatus.REDUCED, ReduceStatus.UP_TO_DATE):
            log.info("quick-look of frame %d: product %s%s", frame_id, outcome.product_id,
                     f" (without {', '.join(outcome.missing)})" if outcome.missing else "",
                     extra=extra)
        else:
            log.warning("quick-look of frame %d %s: %s", frame_id, outcome.status,
                        outcome.reason, extra=extra)
        self.stats.did(f"quick-look of frame {frame_id}: {outcome.status}")

    # -- the morning reduction -------------------------------------------------------------

    def morning_is_due(self) -> bool:
        at = self.options.morning_at
        if at is None:
            return False
        now = dt.datetime.now(dt.UTC)
        if self._next_morning is None:
            self._next_morning = next_morning_run(now, at, self.job_ctx.site,
                                                  self._last_morning)
        return now >= self._next_morning

    def morning(self) -> None:
        """Reduce the night that ended (:mod:`.morning`), when the folders are idle; new
        files wait meanwhile. Under the build lock, so daemons sharing a catalogue take
        turns; idempotent, so the second finds the night done and a run cut short is
        finished by the next."""
        assert self.options.morning_at is not None
        started = dt.datetime.now(dt.UTC)

        def morning() -> MorningRun | None:
            with build_lock(self.engine, self._lock_file) as got:
                if not got:
                    return None
                clear_interrupted_builds(self.engine, self.job_ctx)
                return run_morning(self.engine, self.job_ctx, now=started)

        try:
            run = self._retry(morning, "catalogue")
        except CatalogueUnreachable as exc:  # the catalogue went away mid-run
            self._next_morning = dt.datetime.now(dt.UTC) + dt.timedelta(
                seconds=self.options.backoff_cap)
            log.warning("morning reduction stopped, tried again at %s: %s",
                        f"{self._next_morning:%H:%M:%S}Z", exc,
                        extra={"event": "morning-stopped"})
            return
        if run is None:  # another daemon builds or reduces: after it, this run is quick
            self._next_morning = started + dt.timedelta(seconds=max(1.0,
                                                                    self.options.build_delay))
            log.info("another process holds the build lock; morning reduction later",
                     extra={"event": "morning-busy"})
            return
        self._last_morning = started
        self._next_morning = next_morning_run(started, self.options.morning_at,
                                              self.job_ctx.site, started)
        statuses = Counter(o.status for o in run.outcomes)
        built = sum(1 for b in run.builds if b.status == BuildStatus.BUILT)
        for status, n in statuses.items():
            self.stats.counts[f"morning {status}"] += n
        summary = ", ".join(f"{n} {k}" for k, n in sorted(statuses.items())) or "no frames"
        log.info("morning reduction of night %s: %s; %d master(s) built; next at %s",
                 run.night, summary, built, f"{self._next_morning:%Y-%m-%d %H:%M}Z",
                 extra={"event": "morning", "night": run.night.isoformat(),
                        "outcomes": dict(statuses), "masters_built": built})
        self.stats.did(f"morning reduction of night {run.night}: {summary}")
        try:
            self._retry(lambda: announce_morning(self.engine, self.job_ctx, run), "catalogue")
        except CatalogueUnreachable as exc:
            log.warning("morning notifications not queued: %s", exc,
                        extra={"event": "morning-notify-failed"})
