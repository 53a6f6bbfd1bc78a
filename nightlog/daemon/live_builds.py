"""Master builds while the night goes on, with several daemons on one catalogue.

One builder at a time: daemons sharing a PostgreSQL catalogue take a session
advisory lock; on SQLite (one machine) a lock file next to the database does the
same. A daemon that finds the lock taken leaves the build to the holder and tries
again later. Should two builds of one group still race (a morning ``nightlog calib
build`` at the same moment), the catalogue's unique (group, night, version) lets
one commit and :func:`~nightlog.coordinator.masters.run_build` reports the other.

A build interrupted after writing its file but before its commit (``kill -9``)
leaves a file that no catalogue row names; the archive refuses to overwrite it, so
it is removed (under the lock) before the group is built again.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, select, text

from nightlog.catalogue.engine import make_sessionmaker
from nightlog.catalogue.models import Frame, Master
from nightlog.coordinator.context import JobContext
from nightlog.coordinator.masters import BuildOutcome, find_due, run_build

__all__ = ["build_due", "build_lock", "clear_interrupted_builds"]

log = logging.getLogger("nightlog.watch")
_LOCK_KEY = 0x6E6C6275  # 'nlbu': nightlog master builds


@contextmanager
def build_lock(engine: Engine, lock_file: Path) -> Iterator[bool]:
    """Try to become the one builder; yields whether the lock was obtained."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"),
                                    {"k": _LOCK_KEY}).scalar())
            conn.commit()
            try:
                yield got
            finally:
                if got:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _LOCK_KEY})
                    conn.commit()
        return
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def clear_interrupted_builds(engine: Engine, ctx: JobContext) -> list[Path]:
    """Remove master files of due groups that no catalogue row names (call under the
    build lock); return them."""
    removed: list[Path] = []
    with make_sessionmaker(engine)() as session:
        for due in find_due(session, ctx):
            first = session.get(Frame, due.frame_ids[0])
            previous = None if due.previous_id is None else session.get(Master, due.previous_id)
            if first is None:
                continue
            path = ctx.layout.master_path(
                instrument=first.instrument, kind=due.kind, night=due.night,
                group_key=due.group.key, version=1 if previous is None else previous.version + 1)
            if path.exists() and session.scalar(
                    select(Master.id).where(Master.path == str(path))) is None:
                path.unlink()
                removed.append(path)
                log.warning("removed %s, left by an interrupted build", path,
                            extra={"event": "orphan-removed", "path": str(path)})
    return removed


def build_due(engine: Engine, ctx: JobContext, lock_file: Path) -> list[BuildOutcome] | None:
    """Build every due master under the build lock; ``None`` if another process holds it."""
    with build_lock(engine, lock_file) as got:
        if not got:
            return None
        clear_interrupted_builds(engine, ctx)
        return run_build(engine, ctx, sweep=False)  # the daemon swept at its start
