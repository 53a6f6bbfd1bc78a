"""When is a file that is still arriving complete?

A camera, a copy over a network share or ``rsync`` can leave a file half-written
for seconds. :class:`SettleTracker` holds the files seen arriving and says which
are ready: a file is ready when it is as long as its FITS headers declare
(:func:`declared_complete`) and either

- its size and modification time have not changed for the settle time, or
- the writer closed it (a close-write event, where the platform gives one) and
  it has not changed since.

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

from nightlog.errors import FileProblem, IncompleteFileError
from nightlog.store.file_kinds import open_regular
from nightlog.store.fits_layout import read_layout

__all__ = ["SettleTracker", "declared_complete"]

_GZIP_MAGIC = b"\x1f\x8b"


def declared_complete(path: str, *, max_data_bytes: int | None = None) -> bool:
    """Whether ``path`` is at least as long as its headers declare.

    A file that is not FITS at all, not a regular file, or otherwise broken, counts
    as complete: it is ingestion's job to say what is wrong with it. Gzip files are judged by
    ingestion (their length is only known once decompressed). A data unit declared
    larger than ``max_data_bytes`` counts as complete too: waiting for it is vain,
    and ingestion refuses it.
    """
    try:
        # A FIFO or a device is never opened for a blocking read: ingestion
        # quarantines it with the reason.
        with open_regular(path) as fh:
            size = os.fstat(fh.fileno()).st_size
            if fh.read(2) == _GZIP_MAGIC:
                return True
            read_layout(fh, size, max_data_bytes=max_data_bytes)
    except IncompleteFileError:
        return False
    except (OSError, FileProblem):
        return True
    return True


@dataclass(slots=True)
class _Entry:
    size: int
    mtime_ns: int
    stable_since: float
    closed: bool = False
    held: bool = False  # stable but incomplete: wait for a change


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
    """

    def __init__(self, settle: float, *, clock: Callable[[], float] = time.time,
                 max_data_bytes: int | None = None) -> None:
        self.settle = settle
        self._clock = clock
        self._max_data_bytes = max_data_bytes
        self._entries: dict[str, _Entry] = {}

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

    def ready(self) -> list[str]:
        """Files complete now, sorted; they leave the tracker."""
        now = self._clock()
        out: list[str] = []
        for path, entry in list(self._entries.items()):
            try:
                st = os.stat(path)
            except OSError:
                del self._entries[path]
                continue
            if (st.st_size, st.st_mtime_ns) != (entry.size, entry.mtime_ns):
                self._entries[path] = _Entry(st.st_size, st.st_mtime_ns, now)
                continue
            if entry.held:
                continue
            if entry.closed or now - entry.stable_since >= self.settle:
                if declared_complete(path, max_data_bytes=self._max_data_bytes):
                    out.append(path)
                    del self._entries[path]
                else:
                    entry.held = True
                    entry.closed = False
        return sorted(out)

    def next_due(self) -> float | None:
        """Seconds until the next settling file may be ready (``None``: nothing waits)."""
        now = self._clock()
        waits = [0.0 if e.closed else max(0.0, e.stable_since + self.settle - now)
                 for e in self._entries.values() if not e.held]
        return min(waits) if waits else None
