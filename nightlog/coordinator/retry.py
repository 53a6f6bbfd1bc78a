"""Riding out a catalogue that is briefly unreachable.

A PostgreSQL restart, a network blip or a SQLite file locked for longer than the
busy timeout raise SQLAlchemy's :class:`~sqlalchemy.exc.OperationalError` (or a
DBAPI error that invalidated the connection). Those are worth retrying: the same
unit of work is run again after a pause that doubles up to a cap. Anything else
(an integrity error, a bug) is not transient and is raised at once.

The watch daemon retries until it is stopped; a batch run (``nightlog build``,
``nightlog reduce``) retries a bounded number of times (:class:`Backoff`) and then
gives up with a :class:`CatalogueUnreachable` error naming the cause.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from nightlog.errors import ArchiveNotWritable, CatalogueError
from nightlog.redaction import redact_text
from nightlog.states import FailureCause

__all__ = ["Backoff", "CatalogueUnreachable", "Stopped", "call_with_retry", "failure_cause",
           "is_transient"]

T = TypeVar("T")
log = logging.getLogger("nightlog.watch")


class Stopped(CatalogueError):
    """Asked to stop while waiting for the catalogue to come back."""


class CatalogueUnreachable(CatalogueError):
    """The catalogue stayed unreachable (or locked) through every retry."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """How a batch run rides out a catalogue outage: ``attempts`` tries in all,
    pausing ``first``, 2×, 4×… seconds (at most ``cap``) between them.

    The default waits about 30 s in all: long enough for a PostgreSQL restart or
    a SQLite file held by a backup, short enough that a dead server is reported
    before anyone wonders. ``stop``, when given (a daemon's), ends a wait at once
    with :class:`Stopped`.
    """

    attempts: int = 6
    first: float = 1.0
    cap: float = 16.0
    stop: threading.Event | None = field(default=None, compare=False, repr=False)

    def call(self, fn: Callable[[], T], *, what: str = "catalogue") -> T:
        """Run ``fn`` with these retries (see :func:`call_with_retry`)."""
        return call_with_retry(fn, stop=self.stop or threading.Event(), first=self.first,
                               cap=self.cap, what=what, attempts=self.attempts)


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is a database outage rather than a refusal."""
    if isinstance(exc, OperationalError | InterfaceError | PoolTimeout):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def failure_cause(exc: BaseException) -> FailureCause:
    """Why a unit of work failed: the catalogue away, the archive refusing writes, or
    the work itself (see :class:`~nightlog.states.FailureCause`)."""
    if isinstance(exc, CatalogueUnreachable | Stopped) or is_transient(exc):
        return FailureCause.CATALOGUE
    if isinstance(exc, ArchiveNotWritable):
        return FailureCause.ARCHIVE
    return FailureCause.WORK


def call_with_retry(fn: Callable[[], T], *, stop: threading.Event, first: float = 0.5,
                    cap: float = 30.0, what: str = "catalogue",
                    attempts: int | None = None,
                    on_retry: Callable[[int, str], None] | None = None) -> T:
    """Run ``fn`` until it succeeds, pausing ``first``, 2×, 4×… (at most ``cap``)
    seconds after each transient database error; at most ``attempts`` tries in
    all (``None``: until stopped).

    ``fn`` must be a whole unit of work (its own session and transaction), so that
    running it again after a failure cannot leave half of it behind. Each retry is
    a warning (``event: db-retry``); success after a failure is a line of its own
    (``event: db-recovered``, "catalogue reachable again after N failed attempt(s)").
    ``on_retry`` is called with the attempt number and the error's line before
    each pause (a daemon tells its webhooks it is failing).

    Raises
    ------
    Stopped
        ``stop`` was set while waiting.
    CatalogueUnreachable
        ``attempts`` tries all failed on a transient error.
    """
    delay = first
    attempt = 0
    while True:
        try:
            result = fn()
        except Exception as exc:
            if not is_transient(exc):
                raise
            attempt += 1
            first_line = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
            first_line = redact_text(first_line)
            if attempts is not None and attempt >= attempts:
                raise CatalogueUnreachable(
                    f"{what} unreachable after {attempt} attempt(s): "
                    f"{type(exc).__name__}: {first_line}") from exc
            log.warning("%s unreachable (attempt %d, retrying in %.1f s): %s: %s", what,
                        attempt, delay, type(exc).__name__, first_line,
                        extra={"event": "db-retry", "attempt": attempt, "delay": delay})
            if on_retry is not None:
                on_retry(attempt, f"{what} unreachable: {type(exc).__name__}: {first_line}")
            if stop.wait(delay):
                raise Stopped(f"stopped while the {what} was unreachable") from exc
            delay = min(cap, delay * 2)
            continue
        if attempt:
            log.info("%s reachable again after %d failed attempt(s)", what, attempt,
                     extra={"event": "db-recovered", "attempts": attempt})
        return result
