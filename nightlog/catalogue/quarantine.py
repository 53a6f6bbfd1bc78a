"""Files that could not be ingested: recorded with their reason, never lost.

Functions take the caller's session and never commit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from nightlog.catalogue.models import QuarantinedFile
from nightlog.catalogue.outbox import queue_notification

__all__ = [
    "list_quarantined",
    "record_quarantined",
    "resolve_quarantined",
    "unresolved_quarantined",
]


def record_quarantined(session: Session, path: str, *, reason: str, error: str,
                       size: int | None = None, sha256: str | None = None,
                       now: dt.datetime | None = None) -> QuarantinedFile:
    """Record (or update) the quarantine entry for ``path``; a file quarantined anew (not
    seen again while still in quarantine) queues a ``quarantined`` notification."""
    now = now or dt.datetime.now(dt.UTC)
    row = session.scalars(
        select(QuarantinedFile).where(QuarantinedFile.path == path)
    ).one_or_none()
    if row is None:
        row = QuarantinedFile(path=path, reason=reason, error=error, size=size, sha256=sha256,
                              first_seen=now, last_seen=now, times_seen=1)
        session.add(row)
        _announce(session, path, reason, error, now)
        return row
    if row.resolved_at is not None:
        _announce(session, path, reason, error, now)
    row.reason = reason
    row.error = error
    row.size = size
    row.sha256 = sha256
    row.last_seen = now
    row.times_seen += 1
    row.resolved_at = None
    return row


def _announce(session: Session, path: str, reason: str, error: str, now: dt.datetime) -> None:
    queue_notification(session, "quarantined",
                       {"text": f"nightlog quarantined {path}: {reason}", "path": path,
                        "error": error, "reason": reason}, now=now)


def resolve_quarantined(session: Session, path: str, *, now: dt.datetime | None = None) -> bool:
    """Mark the entry for ``path`` resolved (the file now ingested); whether one existed."""
    row = session.scalars(
        select(QuarantinedFile).where(QuarantinedFile.path == path,
                                      QuarantinedFile.resolved_at.is_(None))
    ).one_or_none()
    if row is None:
        return False
    row.resolved_at = now or dt.datetime.now(dt.UTC)
    return True


def unresolved_quarantined(session: Session, paths: Sequence[str]) -> set[str]:
    """Which of ``paths`` have an unresolved quarantine entry (one query per 500)."""
    found: set[str] = set()
    for i in range(0, len(paths), 500):
        found.update(session.scalars(
            select(QuarantinedFile.path).where(QuarantinedFile.path.in_(paths[i : i + 500]),
                                               QuarantinedFile.resolved_at.is_(None))))
    return found


def list_quarantined(session: Session, *, include_resolved: bool = False) -> list[QuarantinedFile]:
    """Quarantined files, most recently seen first."""
    stmt = select(QuarantinedFile).order_by(QuarantinedFile.last_seen.desc(),
                                            QuarantinedFile.path)
    if not include_resolved:
        stmt = stmt.where(QuarantinedFile.resolved_at.is_(None))
    return list(session.scalars(stmt))
