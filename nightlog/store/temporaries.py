"""Temporary files of the archive: named after their owner, and swept once it is gone.

Every archive file is first written under a temporary name beside its final one
(:func:`nightlog.store.atomic.atomic_write`), then renamed. A ``kill -9`` or a
power cut between the two leaves the temporary behind, up to a full product's
size, for good: nothing else would ever name it. So a temporary's name says whose
it is::

    .<final name>.nltmp-<host>-<pid>-<random>.part

and :func:`sweep_temporaries` removes those whose owner is gone:

- written on this host: the owning process is no longer alive;
- written on another host (an archive shared over the network): last modified
  before ``before``, the start of the oldest run still alive (a write under way
  keeps touching its file), and not the temporary of a live run as the caller's
  ``live_elsewhere`` knows it (the catalogue's daemon rows);
- temporaries of earlier versions (``.<final name>.<random>.part``, no owner):
  last modified before ``before``.

and in every case not held open for writing by a process this user can see
(:func:`~nightlog.store.open_writers.open_for_writing`). A temporary another
process is writing is never removed.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from nightlog.store.open_writers import open_for_writing

__all__ = ["DEFAULT_GRACE_SECONDS", "SweepReport", "TemporaryOwner", "host_label",
           "is_temporary", "sweep_temporaries", "temporary_owner", "temporary_prefix"]

log = logging.getLogger("nightlog.store")

#: Without a better bound, temporaries untouched for this long are taken as dead.
DEFAULT_GRACE_SECONDS = 600.0
_MARK = ".nltmp-"
_OWNED = re.compile(r"^\..+\.nltmp-(?P<host>.+)-(?P<pid>\d+)-[A-Za-z0-9_]+\.part$")
_LEGACY = re.compile(r"^\..+\.[a-z0-9_]{8}\.part$")  # tempfile.mkstemp's, before owners
_HOST_UNSAFE = re.compile(r"[^A-Za-z0-9.-]+")


@dataclass(frozen=True, slots=True)
class TemporaryOwner:
    """The host and process that wrote a temporary."""

    host: str
    pid: int


def host_label(hostname: str) -> str:
    """A host name as temporaries carry it (unsafe characters replaced, cut to 40)."""
    return _HOST_UNSAFE.sub("_", hostname)[:40] or "host"


def _this_host() -> str:
    return host_label(socket.gethostname())


def temporary_prefix(final: Path) -> str:
    """The start of a temporary name for ``final``, naming this host and process
    (``tempfile.mkstemp`` adds a random part and the ``.part`` suffix)."""
    return f".{final.name}{_MARK}{_this_host()}-{os.getpid()}-"


def is_temporary(name: str) -> bool:
    """Whether a file name is one of nightlog's temporaries (this version's or an
    earlier one's)."""
    return bool(_OWNED.match(name) or _LEGACY.match(name))


def temporary_owner(name: str) -> TemporaryOwner | None:
    """Who wrote the temporary ``name`` (``None``: not an owned temporary)."""
    m = _OWNED.match(name)
    return None if m is None else TemporaryOwner(m.group("host"), int(m.group("pid")))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


@dataclass(slots=True)
class SweepReport:
    """What a sweep removed, what it kept (with why), and the bytes freed."""

    removed: list[Path] = field(default_factory=list)
    kept: list[tuple[Path, str]] = field(default_factory=list)
    freed_bytes: int = 0


def _why_kept(path: Path, mtime: float, before: float,
              live_elsewhere: Callable[[TemporaryOwner], bool] | None) -> str | None:
    owner = temporary_owner(path.name)
    if owner is None:
        return None if mtime < before else "recent, of an unknown writer"
    if owner.host == _this_host():
        return f"its writer (pid {owner.pid}) is running" if _alive(owner.pid) else None
    if live_elsewhere is not None and live_elsewhere(owner):
        return f"its writer ({owner.host} pid {owner.pid}) is a live run"
    return None if mtime < before else f"recent, of {owner.host} pid {owner.pid}"


def _candidates(roots: Iterable[Path]) -> list[Path]:
    found: list[Path] = []
    for root in roots:
        for folder, _dirs, files in os.walk(root):
            found.extend(Path(folder, name) for name in files if is_temporary(name))
    return found


def sweep_temporaries(roots: Path | Iterable[Path], *, before: float | None = None,
                      live_elsewhere: Callable[[TemporaryOwner], bool] | None = None
                      ) -> SweepReport:
    """Remove the temporaries under ``roots`` whose writer is gone.

    Parameters
    ----------
    roots : Path or iterable of Path
        Archive roots (searched recursively).
    before : float, optional
        POSIX time: temporaries of other hosts and of earlier versions are removed
        only if last modified before it. Pass the start of the oldest run still
        alive; the default is :data:`DEFAULT_GRACE_SECONDS` ago.
    live_elsewhere : callable, optional
        Whether the owner of a temporary written on another host is a live run;
        such temporaries are kept whatever their age.

    Returns
    -------
    SweepReport
        Never raises for a file: one that cannot be removed is kept, with the reason.
    """
    folders = [roots] if isinstance(roots, Path) else list(roots)
    cutoff = time.time() - DEFAULT_GRACE_SECONDS if before is None else before
    report = SweepReport()
    found = _candidates(folders)
    if not found:
        return report
    writing = open_for_writing(str(p) for p in found)
    for path in found:
        if str(path) in writing:
            report.kept.append((path, "open for writing"))
            continue
        try:
            st = path.lstat()
        except OSError:
            continue  # renamed meanwhile: its write finished
        why = _why_kept(path, st.st_mtime, cutoff, live_elsewhere)
        if why is None:
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                why = f"cannot remove: {exc.strerror or exc}"
            else:
                report.removed.append(path)
                report.freed_bytes += st.st_size
                log.warning("removed %s, a temporary left by an interrupted write", path,
                            extra={"event": "temporary-removed", "path": str(path),
                                   "bytes": st.st_size})
                continue
        report.kept.append((path, why))
    return report
