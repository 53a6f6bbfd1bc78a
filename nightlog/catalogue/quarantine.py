"""Files that could not be ingested: recorded with their reason, never lost.

Functions take the caller's session and never commit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from nightlog.catalogue.models import QuarantinedFile
from nightlog.catalogue.outbox import queue_notification

__all__ = [
    "QUARANTINE_FIELDS",
    "iter_quarantine_records",
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


#: The fields of a quarantined file's record, the columns it is read from.
QUARANTINE_FIELDS: tuple[str, ...] = (
    "id", "path", "error", "reason", "size", "sha256", "first_seen", "last_seen",
    "times_seen", "resolved_at")


def iter_quarantine_records(session: Session, *, include_resolved: bool = False,
                            newest_first: bool = True, after_id: int | None = None,
                            limit: int | None = None, chunk: int = 1000
                            ) -> Iterator[dict[str, Any]]:
    """Records of the quarantined files, one at a time, the most recently seen first
    (or the least, ``newest_first=False``), a page after ``after_id``.

    Only the record's columns are read (:data:`QUARANTINE_FIELDS`; no catalogue
    objects), ``chunk`` rows at a time; times are ISO text (UTC).

    Parameters
    ----------
    session : Session
        The caller's session (only read; the records are read while it is open).
    include_resolved : bool
        Include files that have since been ingested.
    newest_first : bool
        By the time last seen, the latest first; ties by id.
    after_id : int, optional
        A page after this entry (its id: the last of the previous page, in this order).
    limit : int, optional
        At most this many records.
    chunk : int
        Rows fetched at a time.

    Yields
    ------
    dict
        One record per file: :data:`QUARANTINE_FIELDS`.
    """
    q = QuarantinedFile
    stmt = select(*(getattr(q, name) for name in QUARANTINE_FIELDS))
    if not include_resolved:
        stmt = stmt.where(q.resolved_at.is_(None))
    if after_id is not None:
        # Keyset paging: the time bounds the range, the id breaks ties.
        at = select(q.last_seen).where(q.id == after_id).scalar_subquery()
        if newest_first:
            stmt = stmt.where(q.last_seen <= at, or_(q.last_seen < at, q.id < after_id))
        else:
            stmt = stmt.where(q.last_seen >= at, or_(q.last_seen > at, q.id > after_id))
    stmt = stmt.order_by(*((q.last_seen.desc(), q.id.desc()) if newest_first
                           else (q.last_seen, q.id)))
    if limit is not None:
        stmt = stmt.limit(limit)
    result = session.connection().execute(stmt.execution_options(yield_per=chunk))
    for part in result.partitions(chunk):
        for values in part:
            record = dict(zip(QUARANTINE_FIELDS, values, strict=True))
            for key in ("first_seen", "last_seen", "resolved_at"):
                if record[key] is not None:
                    record[key] = record[key].isoformat()
            yield record
