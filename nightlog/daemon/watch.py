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
- What the new frames set going (debounced master builds, live quick-looks, the
  morning reduction) is :class:`~nightlog.daemon.live_work.LiveWork`'s, told what
  arrived after each chunk and given a turn when the folders are quiet.
- Notifications (``[notify]``) go out from a thread of their own
  (:class:`~nightlog.notify.notifier.Notifier`): the loop only wakes it, so a
  webhook that is down never delays ingestion. The daemon tells the webhooks when
  it stops, when the catalogue has been unreachable for three tries, and when it
  dies of an error.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from nightlog.catalogue import daemons as cat_daemons
from nightlog.catalogue.engine import make_sessionmaker, sqlite_path
from nightlog.catalogue.planner_statistics import keep_statistics
from nightlog.coordinator.context import JobContext
from nightlog.coordinator.ingest import (
    IngestContext,
    IngestResult,
    discover,
    ingest_chunk,
    report_skipped,
    run_ingest,
)
from nightlog.coordinator.retry import (
    Stopped,
    call_with_retry,
    is_transient,
)
from nightlog.coordinator.temporaries import sweep_archive
from nightlog.daemon.heartbeat import Heartbeat, WatchStats
from nightlog.daemon.live_work import LiveWork
from nightlog.daemon.options import WatchOptions
from nightlog.errors import StoreError
from nightlog.header.profile_warnings import WarningsOnce
from nightlog.notify.notifier import Notifier
from nightlog.states import IngestOutcome
from nightlog.store.file_kinds import refusal
from nightlog.store.folder_events import FolderEvents
from nightlog.store.settle import SettleTracker

__all__ = ["WatchOptions", "WatchStats", "Watcher"]

log = logging.getLogger("nightlog.watch")
_T = TypeVar("_T")

_CALIBRATION = ("bias", "dark", "flat")
_NEW = (IngestOutcome.ADDED, IngestOutcome.NEW_VERSION, IngestOutcome.MOVED)


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
        self._next_heartbeat = 0.0
        self._next_rescan = 0.0
        self._seen: dict[str, tuple[int, int]] = {}  # taken by this daemon: size, mtime
        self._warned = WarningsOnce()  # profile warnings, said once per instrument
        self._heartbeat_row = Heartbeat(engine, name=options.name,
                                        directories=options.directories,
                                        interval=options.heartbeat)
        self._events: FolderEvents | None = None
        db_file = sqlite_path(engine.url.render_as_string(hide_password=False))
        self._lock_file = (db_file.with_name(db_file.name + ".build-lock") if db_file
                           else job_ctx.layout.root / ".nightlog-build-lock")
        self.live = LiveWork(engine, self.job_ctx, options, stats=self.stats, clock=clock,
                             retry=self._retry, stop=self.stop, lock_file=self._lock_file)
        self.notifier = Notifier(engine, job_ctx.notify,
                                 interval=max(1.0, min(5.0, options.heartbeat)))
        self._failing_said = False

    @property
    def _next_morning(self) -> dt.datetime | None:
        """When the morning reduction runs next (once the daemon has looked)."""
        return self.live._next_morning

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
        self.notifier.start()
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
        except Exception as exc:
            self._tell("daemon-failing", f"died: {type(exc).__name__}: {exc}")
            raise
        finally:
            self._events.stop()
            self._finish()
        return self.stats

    def _tell(self, event: str, reason: str) -> None:
        """Tell the webhooks about this daemon (never through the catalogue, which
        may be what is failing)."""
        name = self._heartbeat_row.name
        self.notifier.send_direct(event, f"nightlog watch {name} on {socket.gethostname()}: "
                                  f"{reason}",
                                  {"name": name, "host": socket.gethostname(),
                                   "pid": os.getpid(), "reason": reason,
                                   "counts": dict(self.stats.counts)})

    def _on_retry(self, attempt: int, reason: str) -> None:
        if attempt >= 3 and not self._failing_said:
            self._failing_said = True
            self._tell("daemon-failing", reason)

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
        elif self.live.build_is_due(self.tracker.settling):
            self.live.build()
        elif self.live.quicklook_is_due():
            self.live.quicklook()
        elif self.live.morning_is_due():
            self.live.morning()
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
        due = self.tracker.next_due()
        return self.live.wait_hint([self.options.tick] + ([] if due is None else [due]))

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
        owed: list[int] = []
        if self.options.quicklook:
            since = dt.datetime.now(dt.UTC) - dt.timedelta(
                seconds=self.options.quicklook_lookback)
            owed = self._retry(lambda: self._owed_quicklooks(since), "catalogue")
        self.live.catch_up(owed)  # what is due is built first
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
        result = call_with_retry(fn, stop=self.stop, first=self.options.backoff_first,
                                 cap=self.options.backoff_cap, what=what,
                                 on_retry=self._on_retry)
        self._failing_said = False
        return result

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
            keep_statistics(self.engine)  # a chunk committed: the planner's statistics
            added = sum(1 for r in results if r.outcome in _NEW)
            self.stats.did(f"ingested {len(results)} file(s), {added} new")

    def _after_ingest(self, result: IngestResult) -> None:
        self.stats.counts[result.outcome] += 1
        extra = {"event": "ingest", "path": result.path, "outcome": result.outcome}
        if result.outcome == IngestOutcome.FAILED and result.transient:
            self.tracker.touch(result.path, from_mtime=True)  # the catalogue will be back
            log.warning("will retry %s: %s", result.path, result.reason, extra=extra)
            return
        if result.outcome not in (IngestOutcome.INCOMPLETE, IngestOutcome.FAILED):
            try:
                st = os.stat(result.path)
                self._seen[result.path] = (st.st_size, st.st_mtime_ns)
            except OSError:
                self._seen.pop(result.path, None)
        if result.outcome == IngestOutcome.INCOMPLETE:
            self.tracker.hold(result.path)
            log.info("waiting for %s: %s", result.path, result.reason, extra=extra)
            return
        if result.outcome in (IngestOutcome.QUARANTINED, IngestOutcome.FAILED):
            self.notifier.wake()  # its notification was queued with the quarantine entry
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
        for warning in self._warned.new(frame.profile, frame.instrument, result.warnings):
            log.warning("profile %s, instrument %s: %s", frame.profile, frame.instrument,
                        warning.message, extra={"event": "profile-warning",
                                                "code": str(warning.code),
                                                "profile": frame.profile,
                                                "instrument": frame.instrument})
        if frame.kind in _CALIBRATION:
            self.live.calibration_arrived()
        elif frame.kind == "science":
            for each in result.frames:  # one per CCD of a mosaic
                self.live.science_arrived(each.id)

    # -- heartbeat ------------------------------------------------------------------------

    @property
    def backlog(self) -> int:
        queued = 0 if self._events is None else self._events.queue.qsize()
        return len(self.tracker) + queued + self.live.queued

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
        self._tell("daemon-stopped", "stopped")
        # A last pass, bounded: a webhook that is down does not hold the stop long.
        notify = self.job_ctx.notify
        timeouts = [h.timeout for h in notify.webhooks] + (
            [notify.mail.timeout] if notify.mail is not None else [])
        self.notifier.stop(timeout=max(timeouts, default=0.0) + 1.0)
