"""The query planner's statistics, kept by nightlog itself.

The planner picks an index from the statistics the database keeps of each table
(rows, distinct values). A catalogue that grew from nothing to a million frames
through ingest, with statistics taken when it was empty (or never), gets plans
made for an empty table: on PostgreSQL, right after a bulk ingest, ``nightlog
status`` took 255 ms instead of 6 ms. Nightlog does not rely on a maintenance job
outside it to refresh them:

- After a write batch that may have changed a table a lot (an ingest chunk, a
  recorded master, a recorded product) the coordinator calls
  the engine, after its own commit (:func:`keep_statistics`): the check is
  one statement, and only the tables changed by more than a tenth of their rows
  since their last analysis (and by at least :data:`MIN_CHANGED` rows) are
  analysed, each in a transaction of its own.
- PostgreSQL: the rows changed since each table's last analysis are read from
  ``pg_stat_user_tables.n_mod_since_analyze``, its size from
  ``pg_class.reltuples``.
- SQLite: a table never analysed is analysed once it holds :data:`MIN_CHANGED`
  rows; of the others SQLite decides itself (``PRAGMA optimize``: a table that
  grew many times over since). Each index is read whole: sampled statistics
  (``PRAGMA analysis_limit``) misjudged the frames' indexes by a hundred times;
  a catalogue of a million frames is analysed in about two seconds.

``nightlog db analyze`` (:func:`analyze_all`) refreshes every table's statistics
on demand.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

__all__ = ["CHANGED_FRACTION", "MIN_CHANGED", "TableChange",
           "analyze_all", "keep_statistics", "refresh_statistics", "stale_tables"]

log = logging.getLogger(__name__)

#: A table is analysed again once this fraction of its rows changed.
CHANGED_FRACTION = 0.10
#: ... and at least this many rows (a small table's plans do not depend on them).
MIN_CHANGED = 500

_PG_CHANGES = text(
    "SELECT s.relname, s.n_mod_since_analyze, c.reltuples FROM pg_stat_user_tables s "
    "JOIN pg_class c ON c.oid = s.relid WHERE s.schemaname = current_schema()")


@dataclass(frozen=True, slots=True)
class TableChange:
    """Rows of a table changed since its statistics were taken, and its size then
    (``rows`` is ``None`` when it was never analysed)."""

    table: str
    changed: int
    rows: float | None

    @property
    def stale(self) -> bool:
        """Whether the table changed enough to be analysed again."""
        return self.changed >= max(MIN_CHANGED, CHANGED_FRACTION * (self.rows or 0.0))


def _quoted(conn: Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote(name)


def stale_tables(engine: Engine) -> list[TableChange]:
    """PostgreSQL: the tables of the catalogue's schema that changed enough since
    their last analysis (none on SQLite, which decides itself)."""
    if engine.dialect.name != "postgresql":
        return []
    with engine.connect() as conn:
        # A backend sends its counts of changed rows at most once a second: make this
        # connection (most often the one that just committed the batch) send its own.
        conn.execute(text("SELECT pg_stat_force_next_flush()"))
        conn.commit()
        rows = conn.execute(_PG_CHANGES).all()
        conn.rollback()
    changes = [TableChange(str(name), int(changed or 0),
                           None if tuples is None or tuples < 0 else float(tuples))
               for name, changed, tuples in rows]
    return [c for c in changes if c.stale]


def _sqlite_unanalysed(conn: Connection) -> list[str]:
    """SQLite: the indexed tables with no statistics that hold at least
    :data:`MIN_CHANGED` rows (counted no further than that)."""
    indexed = [str(n) for n in conn.scalars(text(
        "SELECT DISTINCT tbl_name FROM sqlite_master WHERE type = 'index' "
        "AND tbl_name NOT LIKE 'sqlite_%'"))]
    has_stats = conn.scalar(text(
        "SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'"))
    analysed = ({str(n) for n in conn.scalars(text("SELECT DISTINCT tbl FROM sqlite_stat1"))}
                if has_stats else set())
    return [t for t in indexed if t not in analysed and conn.scalar(text(
        f"SELECT count(*) FROM (SELECT 1 FROM {_quoted(conn, t)} LIMIT {MIN_CHANGED})"
    )) >= MIN_CHANGED]


def _sqlite_refresh(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        tables = _sqlite_unanalysed(conn)
        for table in tables:
            conn.exec_driver_sql(f"ANALYZE {_quoted(conn, table)}")
        # The tables this connection used that grew many times over since (SQLite's
        # own rule).
        conn.exec_driver_sql("PRAGMA optimize")
        conn.commit()
    return tables


def refresh_statistics(engine: Engine) -> list[str]:
    """Analyse the catalogue's tables that changed a lot since their statistics were
    taken; return their names (SQLite: those never analysed; of the others it
    decides itself and does not say).

    Called with the engine after a write batch is committed, outside any session of
    the caller: each analysis is a transaction of its own.
    """
    if engine.dialect.name == "sqlite":
        return _sqlite_refresh(engine)
    stale = stale_tables(engine)
    if stale:
        with engine.connect() as conn:
            for change in stale:
                conn.exec_driver_sql(f"ANALYZE {_quoted(conn, change.table)}")
                conn.commit()
    return [c.table for c in stale]


def analyze_all(engine: Engine) -> list[str]:
    """Refresh the statistics of every table of the catalogue (``nightlog db
    analyze``; PostgreSQL: the tables of its schema, not the whole database);
    return their names."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
            return sorted(str(n) for n in conn.scalars(text(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite_%'")))
        tables = sorted(str(row[0]) for row in conn.execute(_PG_CHANGES))
        conn.rollback()
        for table in tables:
            conn.exec_driver_sql(f"ANALYZE {_quoted(conn, table)}")
            conn.commit()
        return tables


def keep_statistics(engine: Engine) -> list[str]:
    """:func:`refresh_statistics` for the coordinator after a committed batch: a
    failure (the catalogue gone away, a lock) is logged, never raised, since the
    batch itself is done and the next one checks again."""
    try:
        return refresh_statistics(engine)
    except SQLAlchemyError as exc:
        log.warning("planner statistics not refreshed: %s", exc,
                    extra={"event": "statistics-not-refreshed"})
        return []
