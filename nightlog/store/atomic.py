"""Atomic file writes and deletions deferred until after the database commit.

A file appears under its final name only when it is complete: it is written to a
temporary name in the same folder, flushed to disk and renamed. A file that the
catalogue stops referring to is deleted only after the database commit, so a
failed transaction never leaves a row that points at nothing (the split of
registry and datastore).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from nightlog.errors import StoreError

__all__ = ["DeferredDeletes", "atomic_write", "write_atomically"]


def _disk_free(folder: Path) -> str:
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return "unknown"
    return f"{free / 1024**2:,.1f} MiB"


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], *, mode: int = 0o644) -> Iterator[BinaryIO]:
    """Open a temporary file beside ``path``; rename it to ``path`` on success.

    On any error the temporary file is removed and nothing appears under ``path``.

    Raises
    ------
    StoreError
        The folder cannot be written (the message names the path and free space).
    """
    final = Path(path)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".part",
                                        dir=final.parent)
    except OSError as exc:
        raise StoreError(f"cannot write {final}: {exc.strerror or exc}") from exc
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, final)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        extra = f" (free space: {_disk_free(final.parent)})" if exc.errno == errno.ENOSPC else ""
        raise StoreError(f"cannot write {final}: {exc.strerror or exc}{extra}") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomically(path: str | os.PathLike[str], writer: Callable[[BinaryIO], None], *,
                     mode: int = 0o644) -> Path:
    """Write ``path`` with ``writer(fileobj)`` atomically; return the path."""
    with atomic_write(path, mode=mode) as fh:
        writer(fh)
    return Path(path)


class DeferredDeletes:
    """Files to delete once the unit of work that stopped using them has committed.

    Use ``schedule(path)`` during the unit of work, then ``run()`` after the commit,
    or ``discard()`` after a rollback.
    """

    def __init__(self) -> None:
        self._paths: list[Path] = []

    def schedule(self, path: str | os.PathLike[str]) -> None:
        """Remember ``path`` for deletion after the commit."""
        self._paths.append(Path(path))

    def run(self) -> list[Path]:
        """Delete the scheduled files; return those that could not be deleted."""
        failed: list[Path] = []
        for path in self._paths:
            try:
                path.unlink(missing_ok=True)
            except OSError:
                failed.append(path)
        self._paths.clear()
        return failed

    def discard(self) -> None:
        """Forget the scheduled files (the transaction was rolled back)."""
        self._paths.clear()
