"""File-system events of watched folders, as a queue of paths.

A thin layer over watchdog: one observer (inotify, or polling for network shares
that deliver no events) follows each folder recursively and turns its events into
:class:`Arrival` items. Only names matching the patterns count; hidden names
(``.partial`` copies) do not, so a file written under a hidden name and renamed
arrives once, under its final name. A folder created or moved in is reported as
such, so the caller can scan it (files may land in it before its watch exists).
"""

from __future__ import annotations

import fnmatch
import os
import queue
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from watchdog.events import (
    DirCreatedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

__all__ = ["Arrival", "FolderEvents", "name_matches"]


def name_matches(name: str, patterns: Sequence[str]) -> bool:
    """Whether a file name is one to ingest: not hidden, matching a pattern
    (case-insensitive)."""
    if name.startswith("."):
        return False
    lower = name.lower()
    return any(fnmatch.fnmatchcase(lower, p.lower()) for p in patterns)


@dataclass(frozen=True, slots=True)
class Arrival:
    """A file written, closed or moved in, or a folder that appeared."""

    path: str
    closed: bool = False
    is_dir: bool = False


def _text(value: str | bytes) -> str:
    return os.fsdecode(value)


class _Handler(FileSystemEventHandler):
    def __init__(self, out: queue.Queue[Arrival], patterns: Sequence[str], root: Path
                 ) -> None:
        self._out = out
        self._patterns = tuple(patterns)
        self._root = root

    def _file(self, path: str, *, closed: bool = False) -> None:
        if not name_matches(os.path.basename(path), self._patterns):
            return
        try:
            inside = Path(path).relative_to(self._root).parts[:-1]
        except ValueError:
            inside = ()
        if not any(part.startswith(".") for part in inside):  # as a scan skips them
            self._out.put(Arrival(path, closed=closed))

    def on_any_event(self, event: FileSystemEvent) -> None:
        if isinstance(event, FileMovedEvent):
            self._file(_text(event.dest_path))
        elif isinstance(event, FileClosedEvent):
            self._file(_text(event.src_path), closed=True)
        elif isinstance(event, FileCreatedEvent | FileModifiedEvent):
            self._file(_text(event.src_path))
        elif isinstance(event, DirMovedEvent):
            self._out.put(Arrival(_text(event.dest_path), is_dir=True))
        elif isinstance(event, DirCreatedEvent):
            self._out.put(Arrival(_text(event.src_path), is_dir=True))


class FolderEvents:
    """Arrivals in ``folders`` (recursive), collected by a background observer.

    Parameters
    ----------
    folders : sequence of Path
        Folders to follow; each must exist.
    patterns : sequence of str
        File-name globs to take (case-insensitive).
    polling : bool
        Poll the folders instead of asking the kernel for events (network shares).
    poll_interval : float
        Seconds between two polls when polling.
    """

    def __init__(self, folders: Sequence[Path], patterns: Sequence[str], *,
                 polling: bool = False, poll_interval: float = 1.0) -> None:
        self.queue: queue.Queue[Arrival] = queue.Queue()
        self._observer: BaseObserver = (PollingObserver(timeout=poll_interval) if polling
                                        else Observer())
        for folder in folders:
            self._observer.schedule(_Handler(self.queue, patterns, Path(folder)), str(folder),
                                    recursive=True)

    def start(self) -> None:
        self._observer.start()

    def stop(self) -> None:
        self._observer.stop()
        self._observer.join(timeout=10)

    def drain(self, timeout: float) -> list[Arrival]:
        """Arrivals so far, waiting up to ``timeout`` seconds for the first."""
        items: list[Arrival] = []
        try:
            items.append(self.queue.get(timeout=timeout) if timeout > 0
                         else self.queue.get_nowait())
        except queue.Empty:
            return items
        while True:
            try:
                items.append(self.queue.get_nowait())
            except queue.Empty:
                return items
