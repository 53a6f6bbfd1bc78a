"""Frames claimed by the process reducing them, so that two runs share a night's work.

Two ``nightlog reduce`` of the same night on one PostgreSQL catalogue (a morning
timer and an observer, two daemons) would otherwise both reduce each frame; the
recording keeps one product (:func:`nightlog.coordinator.reduce_record.
reduced_meanwhile`) but the work is done twice. A run claims a frame before it
plans it and releases it once the frame's outcome is known; a frame claimed by
another process is put off until that process is done with it, and then found
up to date.

A claim is a PostgreSQL session-level advisory lock held on a connection of its
own, so a process that dies releases its claims with its connection. SQLite has
no such locks (and one writer at a time): every claim is granted there, and the
recording alone keeps a frame from being recorded twice.
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

__all__ = ["FrameClaims"]

_NAMESPACE = 0x6E6C  # "nl": the first key of nightlog's advisory locks; frame id second


class FrameClaims:
    """Claims on frames by this process (a context manager; closing releases all)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._enabled = engine.dialect.name == "postgresql"
        self._conn: Connection | None = None
        self._held: set[int] = set()

    def __enter__(self) -> FrameClaims:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _connection(self) -> Connection:
        if self._conn is None:
            self._conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        return self._conn

    def _drop(self) -> None:
        """Forget a connection that failed (its claims went with it)."""
        if self._conn is not None:
            try:
                self._conn.invalidate()
                self._conn.close()
            except SQLAlchemyError:
                pass
        self._conn = None
        self._held.clear()

    def claim(self, frame_id: int) -> bool:
        """Claim ``frame_id``; ``False`` if another process holds it.

        A catalogue that cannot be asked grants the claim: the recording still
        keeps the frame from being recorded twice.
        """
        if not self._enabled or frame_id in self._held:
            return True
        try:
            got = self._connection().scalar(text("SELECT pg_try_advisory_lock(:ns, :id)"),
                                            {"ns": _NAMESPACE, "id": frame_id})
        except SQLAlchemyError:
            self._drop()
            return True
        if got:
            self._held.add(frame_id)
        return bool(got)

    def release(self, frame_id: int) -> None:
        """Release the claim on ``frame_id`` (nothing if not held)."""
        if frame_id not in self._held:
            return
        self._held.discard(frame_id)
        try:
            self._connection().execute(text("SELECT pg_advisory_unlock(:ns, :id)"),
                                       {"ns": _NAMESPACE, "id": frame_id})
        except SQLAlchemyError:
            self._drop()

    def close(self) -> None:
        """Release every claim."""
        if self._conn is not None:
            try:
                # A pooled connection outlives close(): release the locks first.
                self._conn.execute(text("SELECT pg_advisory_unlock_all()"))
                self._conn.close()
            except SQLAlchemyError:
                self._drop()
            self._conn = None
        self._held.clear()
