"""Finding the raw files to ingest: given files as they are, folders searched.

Used by ``nightlog ingest``, the watch daemon's catch-up and its rescans, so that a
file is found, or skipped with the reason, the same way whichever looks.
"""

from __future__ import annotations

import fnmatch
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from nightlog.store.file_kinds import refusal, shown_path, unstorable_name

__all__ = ["discover", "report_skipped"]

log = logging.getLogger("nightlog.ingest")


def _matches(name: str, patterns: Sequence[str]) -> bool:
    lower = name.lower()
    return any(fnmatch.fnmatchcase(lower, p.lower()) for p in patterns)


def discover(paths: Iterable[str | os.PathLike[str]], patterns: Sequence[str], *,
             follow_symlinks: bool = False,
             within: Sequence[str | os.PathLike[str]] | None = None) -> list[Path]:
    """Files to ingest: given files as they are, folders searched recursively.

    In folders, only names matching ``patterns`` (case-insensitive) are taken;
    hidden files and partial writes (``.*``) are skipped, as are symbolic links to
    folders, and (unless ``follow_symlinks``) symbolic links to files outside the
    folder searched (or outside ``within``, the watched folders), each with a
    warning saying why, as are names that are not UTF-8 (the catalogue could not
    record them). A folder named like a file (``d.fits``) is searched as a
    folder. FIFOs and devices are listed: reading refuses them with the reason.
    The result is sorted and free of repeats.
    """
    found: set[Path] = set()
    for raw in paths:
        path = Path(os.path.abspath(raw))
        if (why := unstorable_name(path)) is not None and not path.is_dir():
            report_skipped(path, why)
            continue
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in files:
                    if name.startswith(".") or not _matches(name, patterns):
                        continue
                    candidate = Path(root) / name
                    why = refusal(candidate, [path] if within is None else within,
                                  follow_symlinks=follow_symlinks)
                    if why is not None:
                        report_skipped(candidate, why)
                        continue
                    found.add(candidate)
        else:
            found.add(path)
    return sorted(found)


def report_skipped(path: str | os.PathLike[str], why: str) -> None:
    """Log that ``path`` was skipped and why (its name shown safely)."""
    shown = shown_path(path)
    log.warning("skipped %s: %s", shown, why,
                extra={"event": "skipped", "path": shown, "reason": why})
