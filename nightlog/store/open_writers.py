"""Which files some process holds open for writing.

A writer that sets a file's full length first (``fallocate``, ``rsync
--preallocate``, a Windows copy) and fills it afterwards leaves a file that is as
long as its header declares long before it is complete. Size and time alone
cannot tell; the kernel can: on Linux every open descriptor is listed under
``/proc/<pid>/fd`` with its access mode in ``/proc/<pid>/fdinfo/<fd>``.

:func:`open_for_writing` looks through the processes this user may inspect (its
own, or all of them as root), one pass for many files. Processes of other users
cannot be seen without privileges, nor writers on other machines (a network
share): for those the close event, the settle time and the zero-tail rule of
:mod:`nightlog.store.completeness` decide.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

__all__ = ["can_see_writers", "open_for_writing"]

_PROC = "/proc"
_WRITE_MODES = (os.O_WRONLY, os.O_RDWR)


def can_see_writers() -> bool:
    """Whether this system lists open descriptors under ``/proc`` (Linux)."""
    return os.path.isdir(f"{_PROC}/self/fdinfo")


def _flags(pid: str, fd: str) -> int | None:
    try:
        with open(f"{_PROC}/{pid}/fdinfo/{fd}", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("flags:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        return None
    return None


def open_for_writing(paths: Iterable[str]) -> set[str]:
    """Those of ``paths`` that a visible process holds open for writing.

    Parameters
    ----------
    paths : iterable of str
        Files to look for (compared by their resolved path).

    Returns
    -------
    set of str
        The paths (as given) held open write-only or read-write by a process whose
        descriptors this user may read. Empty where ``/proc`` is unavailable.
    """
    wanted: dict[str, list[str]] = {}
    for path in paths:
        wanted.setdefault(os.path.realpath(path), []).append(path)
    if not wanted or not can_see_writers():
        return set()
    held: set[str] = set()
    try:
        pids = [p for p in os.listdir(_PROC) if p.isdigit()]
    except OSError:
        return held
    for pid in pids:
        folder = f"{_PROC}/{pid}/fd"
        try:
            fds = os.listdir(folder)
        except OSError:  # another user's process, or gone
            continue
        for fd in fds:
            try:
                target = os.readlink(f"{folder}/{fd}")
            except OSError:
                continue
            if target not in wanted:
                continue
            flags = _flags(pid, fd)
            if flags is not None and flags & os.O_ACCMODE in _WRITE_MODES:
                held.update(wanted[target])
        if len(held) == sum(len(v) for v in wanted.values()):
            break
    return held
