"""Riding out a catalogue that is briefly unreachable.

A PostgreSQL restart, a network blip or a SQLite file locked for longer than the
busy timeout raise SQLAlchemy's :class:`~sqlalchemy.exc.OperationalError` (or a
DBAPI error that invalidated the connection). Those are worth retrying: the same
unit of work is run again after a pause that doubles up to a cap. Anything else
(an integrity error, a bug) is not transient and is raised at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from nightlog.errors import CatalogueError

__all__ = ["Stopped", "call_with_retry", "is_transient"]

T = TypeVar("T")
log = logging.getLogger("nightlog.watch")


class Stopped(CatalogueError):
    """Asked to stop while waiting for the catalogue to come back."""


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is a database outage rather than a refusal."""
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def call_with_retry(fn: Callable[[], T], *, stop: threading.Event, first: float = 0.5,
                    cap: float = 30.0, what: str = "catalogue") -> T:
    """Run ``fn`` until it succeeds, pausing ``first``, 2×, 4×… (at most ``cap``)
    seconds after each transient database error.

    Raises
    ------
    Stopped
        ``stop`` was set while waiting.
    """
    delay = first
    attempt = 0
    while True:
        try:
            return fn()
        except Exception as exc:
            if not is_transient(exc):
                raise
            attempt += 1
            first_line = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
            log.warning("%s unreachable (attempt %d, retrying in %.1f s): %s: %s", what,
                        attempt, delay, type(exc).__name__, first_line,
                        extra={"event": "db-retry", "attempt": attempt, "delay": delay})
            if stop.wait(delay):
                raise Stopped(f"stopped while the {what} was unreachable") from exc
            delay = min(cap, delay * 2)
