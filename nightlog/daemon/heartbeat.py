"""A daemon's row in the catalogue: registered at start, beaten while it runs,
marked stopped at a clean exit (``nightlog status`` reads it).

A heartbeat that cannot be written (catalogue briefly away) is skipped with a
warning: the daemon's real work is retried elsewhere, and a missed beat only makes
``nightlog status`` see the daemon as silent for a while.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from nightlog import __version__
from nightlog.catalogue import daemons as cat_daemons
from nightlog.catalogue.engine import make_sessionmaker

__all__ = ["Heartbeat", "WatchStats"]

log = logging.getLogger("nightlog.watch")


@dataclass(slots=True)
class WatchStats:
    """What a daemon did since it started."""

    counts: Counter[str] = field(default_factory=Counter)
    last_action: str = "started"
    last_action_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def did(self, action: str) -> None:
        self.last_action = action
        self.last_action_at = dt.datetime.now(dt.UTC)


class Heartbeat:
    """The catalogue row of one daemon run."""

    def __init__(self, engine: Engine, *, name: str, directories: Sequence[Path],
                 interval: float) -> None:
        self._sessions = make_sessionmaker(engine)
        self.name = name or socket.gethostname()
        self.directories = [str(d) for d in directories]
        self.interval = interval
        self.daemon_id: int | None = None

    def register(self) -> int:
        """Add the row (raises on a database error: the caller retries)."""
        with self._sessions() as session, session.begin():
            row = cat_daemons.register_daemon(
                session, name=self.name, host=socket.gethostname(), pid=os.getpid(),
                directories=self.directories, interval_s=self.interval,
                software_version=__version__)
            self.daemon_id = row.id
        return self.daemon_id

    def beat(self, stats: WatchStats, backlog: int, *, stopped: bool = False) -> None:
        """Record being alive (or a clean stop) with the backlog and counts."""
        if self.daemon_id is None:
            return
        try:
            with self._sessions() as session, session.begin():
                cat_daemons.heartbeat(session, self.daemon_id, backlog=backlog,
                                      counts=dict(stats.counts),
                                      last_action=stats.last_action,
                                      last_action_at=stats.last_action_at)
                if stopped:
                    cat_daemons.mark_stopped(session, self.daemon_id)
        except SQLAlchemyError as exc:
            log.warning("%s not recorded: %s", "stop" if stopped else "heartbeat",
                        type(exc).__name__, extra={"event": "heartbeat-failed"})
