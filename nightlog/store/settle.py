"""When is a file that is still arriving complete?

A camera, a copy over a network share or ``rsync`` can leave a file half-written
for seconds. :class:`SettleTracker` holds the files seen arriving and says which
are ready. A file is ready when

1. it is as long as its FITS headers declare
   (:func:`~nightlog.store.completeness.declared_complete`), and
2. either its size and modification time have not changed for the settle time,
   or the writer closed it (a close-write event, where the platform gives one)
   and it has not changed since, and
3. no process holds it open for writing
   (:func:`~nightlog.store.open_writers.open_for_writing`: a writer that set the
   full length first and pauses is waited for, however long the pause), unless
   the file is complete, does not end in zeros and has not changed for
   ``zero_tail`` seconds (a writer that never closes what it finished), and
4. its last data block is not all zeros
   (:func:`~nightlog.store.completeness.ends_in_zero_block`, what a pre-allocating
   writer on another machine leaves), or it has been unchanged for
   ``zero_tail`` seconds (the rule for legitimate zero data).

A file that is stable but shorter than declared is held (never given out) until
it changes again, or until :meth:`SettleTracker.stalled` gives it up (a writer
that died: the caller records the file as truncated). The tracker only looks at
the file system; the caller feeds it events and asks for ready files, with its
own clock.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from nightlog.store.completeness import declared_complete, ends_in_zero_block
from nightlog.store.open_writers import open_for_writing

__all__ = ["SettleTracker", "declared_complete"]

_MIN_WRITER_RECHECK = 0.25  # seconds between two looks for a writer of one file


@dataclass(slots=True)
class _Entry:
    size: int
    mtime_ns: int
    stable_since: float
    closed: bool = False
    held: bool = False  # stable but incomplete: wait for a change
    not_before: float = 0.0  # a writer held it, or its data end in zeros: look again then


class SettleTracker:
    """Files arriving, and which of them are complete.

    Parameters
    ----------
    settle : float
        Seconds a file's size and modification time must stay unchanged.
    clock : callable
        Wall-clock seconds (compared with modification times).
    max_data_bytes : int, optional
        A file declaring a larger data unit is handed over at once (to be refused),
        not held as incomplete.
    zero_tail : float
        Seconds a file whose last data block is all zeros must stay unchanged
        (close events notwithstanding) before it is given out.
    check_writers : bool
        Wait while a process holds the file open for writing (``/proc``, Linux).
    """

    def __init__(self, settle: float, *, clock: Callable[[], float] = time.time,
                 max_data_bytes: int | None = None, zero_tail: float = 60.0,
                 check_writers: bool = True) -> None:
        self.settle = settle
        self.zero_tail = zero_tail
        self._clock = clock
        self._max_data_bytes = max_data_bytes
        self._check_writers = check_writers
        self._entries: dict[str, _Entry] = {}
        self.writer_waits = 0  # times a file was found held open for writing
        self.zero_waits = 0  # times a file was found ending in a zero block

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, path: object) -> bool:
        return path in self._entries

    @property
    def settling(self) -> int:
        """Files still expected to change (not held as incomplete)."""
        return sum(1 for e in self._entries.values() if not e.held)

    def touch(self, path: str, *, closed: bool = False, from_mtime: bool = False) -> None:
        """A file was created, written, moved in or closed (``closed``).

        ``from_mtime`` (a file found by scanning rather than by an event) lets its
        modification time count as the start of its quiet period, so files that
        arrived while nobody watched are taken at once.
        """
        try:
            st = os.stat(path)
        except OSError:
            self._entries.pop(path, None)  # gone (renamed away, deleted)
            return
        now = self._clock()
        entry = self._entries.get(path)
        if entry is None or (entry.size, entry.mtime_ns) != (st.st_size, st.st_mtime_ns):
            since = min(now, st.st_mtime) if from_mtime else now
            self._entries[path] = _Entry(st.st_size, st.st_mtime_ns, since, closed=closed)
        elif closed:
            entry.closed = True
            entry.held = False

    def hold(self, path: str) -> None:
        """Ingestion found ``path`` incomplete: keep it until it changes."""
        self.touch(path)
        entry = self._entries.get(path)
        if entry is not None:
            entry.held = True
            entry.closed = False

    def stalled(self, after: float) -> list[str]:
        """Held files unchanged for ``after`` seconds, sorted; they leave the tracker
        (a change brings them back)."""
        now = self._clock()
        out = sorted(path for path, e in self._entries.items()
                     if e.held and now - e.stable_since >= after)
        for path in out:
            del self._entries[path]
        return out

    def forget(self, path: str) -> None:
        self._entries.pop(path, None)

    def _quiet(self) -> list[str]:
        """Files unchanged for the settle time (or closed), due for a look."""
        now = self._clock()
        due: list[str] = []
        for path, entry in list(self._entries.items()):
            try:
                st = os.stat(path)
            except OSError:
                del self._entries[path]
                continue
            if (st.st_size, st.st_mtime_ns) != (entry.size, entry.mtime_ns):
                self._entries[path] = _Entry(st.st_size, st.st_mtime_ns, now)
                continue
            if entry.held or now < entry.not_before:
                continue
            if entry.closed or now - entry.stable_since >= self.settle:
                due.append(path)
        return due

    def ready(self) -> list[str]:
        """Files complete now, sorted; they leave the tracker."""
        due = self._quiet()
        if not due:
            return []
        now = self._clock()
        writing = open_for_writing(due) if self._check_writers else set()
        out: list[str] = []
        for path in due:
            entry = self._entries[path]
            if path in writing and not self._writer_forgot(path, entry, now):
                # Pre-allocated and paused, or just slow: look again.
                entry.closed = False
                entry.not_before = now + max(self.settle, _MIN_WRITER_RECHECK)
                self.writer_waits += 1
                continue
            if not declared_complete(path, max_data_bytes=self._max_data_bytes):
                entry.held = True
                entry.closed = False
                continue
            if (now - entry.stable_since < self.zero_tail
                    and ends_in_zero_block(path, max_data_bytes=self._max_data_bytes)):
                entry.closed = False
                entry.not_before = entry.stable_since + self.zero_tail
                self.zero_waits += 1
                continue
            out.append(path)
            del self._entries[path]
        return sorted(out)

    def _writer_forgot(self, path: str, entry: _Entry, now: float) -> bool:
        """A writer that keeps a finished file open (a leaked descriptor): the file is
        complete by its header, does not end in zeros and has not changed for
        ``zero_tail`` seconds."""
        return (now - entry.stable_since >= self.zero_tail
                and declared_complete(path, max_data_bytes=self._max_data_bytes)
                and not ends_in_zero_block(path, max_data_bytes=self._max_data_bytes))

    def next_due(self) -> float | None:
        """Seconds until the next settling file may be ready (``None``: nothing waits)."""
        now = self._clock()
        waits = [max(0.0, e.not_before - now,
                     0.0 if e.closed else e.stable_since + self.settle - now)
                 for e in self._entries.values() if not e.held]
        return min(waits) if waits else None
