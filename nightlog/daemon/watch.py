"""The watch daemon: files arriving during the night become frames, masters and
quick-looks, and nothing is lost or catalogued twice.

One loop, in one thread::

    folder events ──▶ settle tracker ──▶ ingest a chunk ──▶ debounced build ──▶ quick-look
    (watchdog)        (complete?)        (one transaction)   (masters due)       (live masters)

- At start the folders are scanned and every file goes through the same tracker
  and ingestion as an event would: the catch-up is not a separate path. The
  observer starts before the scan, so a file landing meanwhile is seen twice at
  worst, and ingestion is idempotent (by path and checksum).
- A chunk is one transaction. A ``kill -9`` loses at most the chunk at hand, whose
  files are still on disk and are caught up at the next start.
- Stopping (:attr:`Watcher.stop`, set by the CLI's signal handlers) is looked at
  between chunks: the chunk at hand is committed, then the loop ends.
- A catalogue outage is retried with a capped exponential backoff
  (:mod:`nightlog.coordinator.retry`); bad files are quarantined by ingestion.
- Calibration frames arm a build that waits until the folders have been quiet for
  ``build_delay`` (at most ``build_max_delay``), so a burst of twenty biases gives
  one master. Builds are serialised across daemons (:mod:`.live_builds`).
- With ``[reduction] morning_at`` set, the night that ended is reduced at that local
  time (:mod:`nightlog.daemon.morning`), when the folders are idle.
- With quick-looks on, each new science frame is reduced as ``quicklook`` in live
  mode (only masters whose inputs all came before it); the morning's ``final``
  reduction replaces it. Quick-looks wait while a build is armed, so they get the
  masters of the burst just received.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import logging
import os
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from nightlog.catalogue import daemons as cat_daemons
from nightlog.catalogue.engine import make_sessionmaker, sqlite_path
from nightlog.coordinator.context import JobContext
from nightlog.daemon.heartbeat import Heartbeat, WatchStats
from nightlog.coordinator.ingest import (
    IngestContext,
    IngestResult,
    discover,
    ingest_chunk,
    report_skipped,
    run_ingest,
)
from nightlog.daemon.live_builds import build_due, build_lock, clear_interrupted_builds
from nightlog.coordinator.masters import BuildOutcome
from nightlog.daemon.morning import MorningRun, next_morning_run, run_morning
from nightlog.coordinator.reduce import run_reduce
from nightlog.coordinator.retry import (
    CatalogueUnreachable,
    Stopped,
    call_with_retry,
    is_transient,
)
from nightlog.coordinator.temporaries import sweep_archive
from nightlog.daemon.options import WatchOptions
from nightlog.daemon.store_faults import StoreBackoff, is_store_fault
from nightlog.errors import StoreError
from nightlog.store.file_kinds import refusal
from nightlog.store.folder_events import FolderEvents
from nightlog.store.settle import SettleTracker

__all__ = ["WatchOptions", "WatchStats", "Watcher"]

log = logging.getLogger("nightlog.watch")
_T = TypeVar("_T")

_CALIBRATION = ("bias", "dark", "flat")
_NEW = ("added", "new-version", "moved")


class Watcher:
    """One watch daemon over ``options.directories``.

    Parameters
    ----------
    engine : Engine
        The process's catalogue engine.
    ingest_ctx, job_ctx : IngestContext, JobContext
        Ingestion and build/reduction contexts (``ingest_ctx`` should wait for
        incomplete files: ``incomplete_is_error=False``).
    options : WatchOptions
    stop : threading.Event, optional
        Set it to end :meth:`run` after the chunk at hand.
    clock : callable
        Wall-clock seconds, for settling and debouncing.
    """

    def __init__(self, engine: Engine, ingest_ctx: IngestContext, job_ctx: JobContext,
                 options: WatchOptions, *, stop: threading.Event | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.ingest_ctx = ingest_ctx
        self.options = options
        self.stop = stop if stop is not None else threading.Event()
        # Builds and reductions wait for the catalogue as batch runs do, but a stop
        # ends the wait (the daemon's own loop then waits on, until stopped).
        self.job_ctx = dataclasses.replace(job_ctx, db_backoff=dataclasses.replace(
            job_ctx.db_backoff, stop=self.stop))
        self.clock = clock
        self.stats = WatchStats()
        self.tracker = SettleTracker(options.settle, clock=clock,
                                     max_data_bytes=ingest_ctx.max_data_bytes,
                                     zero_tail=options.zero_tail,
                                     check_writers=options.check_writers)
        self.ready_event = threading.Event()  # set once the catch-up is ingested
        self._sessions = make_sessionmaker(engine)
        self._quicklooks: deque[int] = deque()
        # Builds and quick-looks that failed on the archive (read-only, full, permission)
        # are tried again with the catalogue outage's backoff.
        self._store = StoreBackoff(options.backoff_first, options.backoff_cap, clock)
        self._build_retry = False
        self._calib_first: float | None = None
        self._calib_last = 0.0
        self._next_heartbeat = 0.0
        self._next_rescan = 0.0
        self._seen: dict[str, tuple[int, int]] = {}  # taken by this daemon: size, mtime
        self._last_morning: dt.datetime | None = None
        self._next_morning: dt.datetime | None = None
        self._heartbeat_row = Heartbeat(engine, name=options.name,
                                        directories=options.directories,
                                        interval=options.heartbeat)
        self._events: FolderEvents | None = None
        db_file = sqlite_path(engine.url.render_as_string(hide_password=False))
        self._lock_file = (db_file.with_name(db_file.name + ".build-lock") if db_file
                           else job_ctx.layout.root / ".nightlog-build-lock")

    # -- the loop ---------------------------------------------------------------------

    def run(self) -> WatchStats:
        """Catch up, then follow the folders until :attr:`stop` is set."""
        o = self.options
        self._events = FolderEvents(o.directories, o.patterns, polling=o.polling,
                                    poll_interval=max(o.tick, 0.5))
        try:
            self._events.start()  # before the scan: nothing arriving meanwhile is missed
        except OSError as exc:  # e.g. the kernel's limit of watched folders
            raise StoreError(f"cannot follow {', '.join(map(str, o.directories))}: {exc}; "
                             "raise fs.inotify.max_user_watches or set [watch] polling "
                             "= true") from exc
        try:
            self._register()
            sweep_archive(self.engine, self.job_ctx)  # after registering: others see us live
            self._catch_up()
            self.ready_event.set()
            while not self.stop.is_set():
                self.step()
        except Stopped:
            log.warning("stopping with the catalogue unreachable; files left are caught "
                        "up at the next start", extra={"event": "stopped-unreachable"})
        finally:
            self._events.stop()
            self._finish()
        return self.stats

    def step(self) -> None:
        """One turn: take events, ingest ready files, then a build or one quick-look."""
        assert self._events is not None
        for arrival in self._events.drain(self._wait()):
            if arrival.is_dir:
                self._scan([Path(arrival.path)])
            elif self._refused_link(arrival.path):
                continue
            else:
                self.tracker.touch(arrival.path,
                                   closed=arrival.closed and self.options.close_events)
        ready = self.tracker.ready()
        stalled = self.tracker.stalled(self.options.incomplete_timeout)
        if stalled:  # the writer gave up: record them as truncated, with the reason
            self._ingest(stalled, ctx=dataclasses.replace(self.ingest_ctx,
                                                          incomplete_is_error=True))
        if ready:
            self._ingest(ready)
        elif self._build_is_due():
            self._build()
        elif self._quicklook_is_due():
            self._quicklook()
        elif self._morning_is_due():
            self._morning()
        if self.clock() >= self._next_rescan:
            self._rescan()
        if self.clock() >= self._next_heartbeat:
            self._heartbeat()

    def _refused_link(self, path: str) -> bool:
        """A symbolic link leading out of the watched folders is not followed (unless
        ``[ingest] follow_symlinks``), nor is a name the catalogue cannot record, as
        a scan would not."""
        why = refusal(path, self.options.directories,
                      follow_symlinks=self.ingest_ctx.follow_symlinks)
        if why is not None:
            report_skipped(path, why)
        return why is not None

    def _rescan(self) -> None:
        """Guard against lost events (a kernel queue overflow, a folder the observer
        could not add): files not in the tracker and not taken as they are now go
        back through the tracker."""
        self._next_rescan = self.clock() + self.options.rescan
        missed = 0
        present = list(map(str, discover(self.options.directories, self.options.patterns,
                                         follow_symlinks=self.ingest_ctx.follow_symlinks,
                                         within=self.options.directories)))
        self._seen = {p: self._seen[p] for p in present if p in self._seen}  # bounded
        for path in present:
            if path in self.tracker:
                continue
            try:
                st = os.stat(path)
            except OSError:
                continue
            if self._seen.get(path) != (st.st_size, st.st_mtime_ns):
                self.tracker.touch(path, from_mtime=True)
                missed += 1
        if missed:
            log.warning("rescan found %d file(s) no event announced", missed,
                        extra={"event": "rescan", "files": missed})

    def _wait(self) -> float:
        if self._quicklook_is_due():
            return 0.0
        waits = [self.options.tick]
        if self._store.waiting:
            waits.append(self._store.wait_left())
        due = self.tracker.next_due()
        if due is not None:
            waits.append(due)
        return max(0.0, min(waits))

    # -- catch-up ---------------------------------------------------------------------

    def _scan(self, folders: Sequence[Path]) -> None:
        for path in discover(folders, self.options.patterns,
                             follow_symlinks=self.ingest_ctx.follow_symlinks,
                             within=self.options.directories):
            self.tracker.touch(str(path), from_mtime=True)

    def _catch_up(self) -> None:
        """Files that arrived while no daemon ran go in before any new event is looked
        at (events meanwhile wait in the queue). Files still being written are waited
        for; files stable but incomplete are held and do not delay the start."""
        self._scan(self.options.directories)
        log.info("watching %s; %d file(s) found at start",
                 ", ".join(map(str, self.options.directories)), len(self.tracker),
                 extra={"event": "catch-up", "files": len(self.tracker)})
        now = self.clock()
        self._calib_first = now - self.options.build_max_delay  # build what is due first
        self._calib_last = now - self.options.build_delay
        if self.options.quicklook:
            since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=self.options.quicklook_lookback)
            owed = self._retry(lambda: self._owed_quicklooks(since), "catalogue")
            self._quicklooks.extend(owed)
        # Bounded, so a file that keeps growing cannot hold new arrivals back for long.
        until = self.clock() + max(30.0, 10 * self.options.settle)
        while self.tracker.settling and not self.stop.is_set() and self.clock() < until:
            ready = self.tracker.ready()
            if ready:
                self._ingest(ready)
            else:
                self.stop.wait(min(self.options.tick, self.tracker.next_due() or 0.0))
            if self.clock() >= self._next_heartbeat:
                self._heartbeat()
        self._next_rescan = self.clock() + self.options.rescan
        log.info("caught up", extra={"event": "caught-up"})

    def _owed_quicklooks(self, since: dt.datetime) -> list[int]:
        with self._sessions() as session:
            return cat_daemons.science_without_product(session, since=since)

    # -- ingest -------------------------------------------------------------------------

    def _retry(self, fn: Callable[[], _T], what: str) -> _T:
        return call_with_retry(fn, stop=self.stop, first=self.options.backoff_first,
                               cap=self.options.backoff_cap, what=what)

    def _ingest_part(self, part: Sequence[str], ctx: IngestContext) -> list[IngestResult]:
        try:
            with self._sessions() as session, session.begin():
                return ingest_chunk(session, part, ctx)
        except SQLAlchemyError as exc:
            if is_transient(exc):
                raise
            # A row refused (another daemon took the same file first): one file per
            # transaction, so the others still go in.
            results: list[IngestResult] = []
            run_ingest(self.engine, [Path(p) for p in part], ctx, chunk=1,
                       progress=results.append)
            return results

    def _ingest(self, ready: Sequence[str], ctx: IngestContext | None = None) -> None:
        ctx = ctx or self.ingest_ctx
        size = self.options.chunk
        for start in range(0, len(ready), size):
            if start and self.stop.is_set():
                break  # the rest is still on disk: the next start catches it up
            part = list(ready[start : start + size])
            results = self._retry(functools.partial(self._ingest_part, part, ctx),
                                  "catalogue")
            for result in results:
                self._after_ingest(result)
            added = sum(1 for r in results if r.outcome in _NEW)
            self.stats.did(f"ingested {len(results)} file(s), {added} new")

    def _after_ingest(self, result: IngestResult) -> None:
        self.stats.counts[result.outcome] += 1
        extra = {"event": "ingest", "path": result.path, "outcome": result.outcome}
        if result.outcome == "failed" and result.transient:
            self.tracker.touch(result.path, from_mtime=True)  # the catalogue will be back
            log.warning("will retry %s: %s", result.path, result.reason, extra=extra)
            return
        if result.outcome not in ("incomplete", "failed"):
            try:
                st = os.stat(result.path)
                self._seen[result.path] = (st.st_size, st.st_mtime_ns)
            except OSError:
                self._seen.pop(result.path, None)
        if result.outcome == "incomplete":
            self.tracker.hold(result.path)
            log.info("waiting for %s: %s", result.path, result.reason, extra=extra)
            return
        if result.outcome in ("quarantined", "failed"):
            log.warning("%s %s: %s", result.outcome, result.path, result.reason,
                        extra={**extra, "reason": result.reason})
            return
        frame = result.frame
        said = f": {result.reason}" if result.reason else ""  # a duplicate's, a move's
        log.info("%s %s%s", result.outcome, result.path, said,
                 extra={**extra, "frame_id": result.frame_id, "reason": result.reason or None,
                        "kind": None if frame is None else frame.kind})
        if result.outcome not in _NEW or frame is None:
            return
        if frame.kind in _CALIBRATION:
            now = self.clock()
            if self._calib_first is None:
                self._calib_first = now
            self._calib_last = now
        elif frame.kind == "science" and self.options.quicklook:
            self._quicklooks.append(frame.id)

    # -- builds and quick-looks -----------------------------------------------------------

    def _build_is_due(self) -> bool:
        if self._store.waiting:  # the archive refused the last write: wait for the backoff
            return False
        if self._build_retry:
            return True
        if self._calib_first is None:
            return False
        now = self.clock()
        if now - self._calib_first >= self.options.build_max_delay:
            return True
        return self.tracker.settling == 0 and now - self._calib_last >= self.options.build_delay

    def _build(self) -> None:
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
            if o.status == "built":
                log.info("built %s master %s v%s of %s (%d frames)", o.kind, o.master_id,
                         o.version, o.night, o.n_used, extra=extra)
            else:
                log.warning("%s %s master of %s: %s", o.status, o.kind, o.night, o.reason,
                            extra={**extra, "reason": o.reason})
                if o.reason.startswith(("OperationalError", "InterfaceError")):
                    self._calib_first = self._calib_last = self.clock()  # try again
        built = sum(1 for o in outcomes if o.status == "built")
        if outcomes:
            self.stats.did(f"built {built} master(s) of {len(outcomes)} due")

    def _after_build_store(self, outcomes: Sequence[BuildOutcome]) -> None:
        """Builds that failed on the store are tried again after the backoff."""
        faults = [o for o in outcomes if o.status == "failed" and is_store_fault(o.reason)]
        self._build_retry = bool(faults)
        if faults:
            self._store.failed(f"{len(faults)} master build(s)", faults[0].reason)
        elif any(o.status == "built" for o in outcomes):
            self._store.succeeded()

    def _quicklook_is_due(self) -> bool:
        """Quick-looks wait for armed builds, builds the store refused, and the store's
        backoff."""
        return (bool(self._quicklooks) and self._calib_first is None
                and not self._build_retry and not self._store.waiting)

    def _quicklook(self) -> None:
        frame_id = self._quicklooks.popleft()
        try:
            (outcome,) = run_reduce(self.engine, self.job_ctx, [frame_id], kind="quicklook",
                                    live=True, sweep=False)
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
        if outcome.status == "failed" and is_store_fault(outcome.reason):
            self._quicklooks.appendleft(frame_id)  # the archive's fault: again, later
            self.stats.counts["quicklook postponed"] += 1
            self._store.failed(f"quick-look of frame {frame_id}", outcome.reason)
            return
        if outcome.status == "reduced":
            self._store.succeeded()
        self.stats.counts[f"quicklook {outcome.status}"] += 1
        if outcome.status in ("reduced", "up-to-date"):
            log.info("quick-look of frame %d: product %s%s", frame_id, outcome.product_id,
                     f" (without {', '.join(outcome.missing)})" if outcome.missing else "",
                     extra=extra)
        else:
            log.warning("quick-look of frame %d %s: %s", frame_id, outcome.status,
                        outcome.reason, extra=extra)
        self.stats.did(f"quick-look of frame {frame_id}: {outcome.status}")

    # -- the morning reduction -------------------------------------------------------------

    def _morning_is_due(self) -> bool:
        at = self.options.morning_at
        if at is None:
            return False
        now = dt.datetime.now(dt.UTC)
        if self._next_morning is None:
            self._next_morning = next_morning_run(now, at, self.job_ctx.site,
                                                  self._last_morning)
        return now >= self._next_morning

    def _morning(self) -> None:
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
        built = sum(1 for b in run.builds if b.status == "built")
        for status, n in statuses.items():
            self.stats.counts[f"morning {status}"] += n
        summary = ", ".join(f"{n} {k}" for k, n in sorted(statuses.items())) or "no frames"
        log.info("morning reduction of night %s: %s; %d master(s) built; next at %s",
                 run.night, summary, built, f"{self._next_morning:%Y-%m-%d %H:%M}Z",
                 extra={"event": "morning", "night": run.night.isoformat(),
                        "outcomes": dict(statuses), "masters_built": built})
        self.stats.did(f"morning reduction of night {run.night}: {summary}")

    # -- heartbeat ------------------------------------------------------------------------

    @property
    def backlog(self) -> int:
        queued = 0 if self._events is None else self._events.queue.qsize()
        return len(self.tracker) + queued + len(self._quicklooks)

    def _register(self) -> None:
        self._retry(self._heartbeat_row.register, "catalogue")
        self._next_heartbeat = self.clock() + self.options.heartbeat

    def _heartbeat(self) -> None:
        self._next_heartbeat = self.clock() + self.options.heartbeat
        self._heartbeat_row.beat(self.stats, self.backlog)

    def _finish(self) -> None:
        self._heartbeat_row.beat(self.stats, self.backlog, stopped=True)
        log.info("stopped; %s", ", ".join(f"{k}: {v}" for k, v in sorted(
            self.stats.counts.items())) or "nothing done", extra={"event": "stopped"})
