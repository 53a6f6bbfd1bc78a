"""Atomic file writes and deletions deferred until after the database commit.

A file appears under its final name only when it is complete: it is written to a
temporary name in the same folder (naming its host and process, so that one left
by a ``kill -9`` is recognised and swept: :mod:`nightlog.store.temporaries`),
flushed to disk and renamed. A file that the
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

from nightlog.errors import ArchiveFileExists, ArchiveNotWritable, StoreError
from nightlog.store.temporaries import temporary_prefix

__all__ = ["DeferredDeletes", "atomic_write", "folder_mode", "os_error_in", "write_atomically"]


def _disk_free(folder: Path) -> str:
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return "unknown"
    return f"{free / 1024**2:,.1f} MiB"


def folder_mode(mode: int) -> int:
    """The mode of a folder holding files of ``mode``: search (x) wherever read (r)."""
    return mode | ((mode & 0o444) >> 2)


def _make_folders(folder: Path, mode: int) -> None:
    """Create ``folder`` and its missing parents with ``mode`` (less the umask).

    ``Path.mkdir(parents=True)`` gives the parents the umask's default, which is
    world-writable under ``umask 0``.
    """
    missing: list[Path] = []
    current = folder
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for path in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(path, mode)


def _rename_no_clobber(tmp: Path, final: Path) -> None:
    try:
        os.link(tmp, final)
    except FileExistsError:
        raise ArchiveFileExists(f"refusing to overwrite an archive file: {final}") from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
            raise
        # A file system without hard links: check, then rename (a short race).
        if final.exists():
            raise ArchiveFileExists(f"refusing to overwrite an archive file: {final}") from None
        os.replace(tmp, final)
        return
    tmp.unlink()


def os_error_in(exc: BaseException) -> OSError | None:
    """The operating-system error behind ``exc``, if any.

    Writers such as astropy's wrap or mask the error of a failed write (a full
    disk can surface as an ``AttributeError`` raised while astropy cleans up), so
    the chain of causes and contexts is searched for the ``OSError`` that says
    what really happened.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    found: OSError | None = None
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError):
            if current.errno is not None:
                return current
            found = found or current
        current = current.__cause__ or current.__context__
    return found


#: The system's reasons for an archive that cannot take a write for now.
_NOT_WRITABLE = (errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM)


def _failure(final: Path, exc: OSError) -> StoreError:
    """One line naming the file, the system's reason and, if the disk is full, its
    free space."""
    code = exc.errno
    text = str(exc)
    if code is None and "No space left on device" in text:
        code = errno.ENOSPC
    reason = exc.strerror or (os.strerror(code) if code else text)
    if code is None and "requested and" in text and "written" in text:
        # numpy's tofile reports a short write without errno: on a local disk
        # that is a full one.
        code = errno.ENOSPC
        reason = f"short write ({text}): No space left on device?"
    full = code in (errno.ENOSPC, errno.EDQUOT)
    extra = f" (free space: {_disk_free(final.parent)})" if full else ""
    error = ArchiveNotWritable if code in _NOT_WRITABLE else StoreError
    return error(f"cannot write {final}: {reason}{extra}")


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], *, mode: int = 0o644,
                 overwrite: bool = True) -> Iterator[BinaryIO]:
    """Open a temporary file beside ``path``; rename it to ``path`` on success.

    On any error the temporary file is removed and nothing appears under ``path``.
    The file gets ``mode`` whatever the umask; folders created on the way get
    :func:`folder_mode` of it (less the umask). The archive passes the mode of its
    root (:meth:`~nightlog.store.layout.ArchiveLayout.file_mode`), so its files are
    readable by whom the root is, and never world-writable.

    Raises
    ------
    StoreError
        The folder cannot be written (the message names the path and free space).
    ArchiveFileExists
        ``overwrite`` is false and a file appeared under ``path`` meanwhile (the
        check and the rename are one step: a hard link, which fails if the name
        is taken).
    """
    final = Path(path)
    try:
        _make_folders(final.parent, folder_mode(mode))
        fd, tmp_name = tempfile.mkstemp(prefix=temporary_prefix(final), suffix=".part",
                                        dir=final.parent)
    except OSError as exc:
        raise _failure(final, exc) from exc
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        if overwrite:
            os.replace(tmp, final)
        else:
            _rename_no_clobber(tmp, final)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        cause = os_error_in(exc) if isinstance(exc, Exception) else None
        if cause is None or isinstance(exc, StoreError):
            raise
        raise _failure(final, cause) from exc


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
