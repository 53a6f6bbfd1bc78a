"""The catalogue's hot queries use indexes: none scans every frame or every product.

A small catalogue of two years is built with the archive benchmark's builder, each
hot query runs through the library while its SQL is recorded, and the database's
own plan of every recorded statement is read: ``EXPLAIN QUERY PLAN`` on SQLite,
``EXPLAIN (FORMAT JSON)`` on PostgreSQL with sequential scans, hash and merge joins
priced out, so that a ``Seq Scan`` left in a plan means no index could serve it
(an index scan with no index condition walks the whole table too, and counts as a
full scan), except a walk in the order of an index that a ``LIMIT`` stops (a page
of the newest frames reads the page, whatever the catalogue's size). Nothing is
timed.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy import Engine, event, inspect

from nightlog.catalogue.engine import make_sessionmaker

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("frames", "products")
#: SQLite names a walk of a whole table, or of a whole index of it, ``SCAN table``.
SQLITE_FULL_SCAN = re.compile(r"\bSCAN (frames|products)\b")
#: A walk of one index in its order (no sort after it): a LIMIT stops it.
SQLITE_INDEX_WALK = re.compile(r"SCAN (frames|products) USING (COVERING )?INDEX \w+")
#: PostgreSQL plan methods that read whole tables, priced out so that the planner
#: takes an index path wherever one exists (a small catalogue makes them cheap).
PRICED_OUT = ("enable_seqscan", "enable_hashjoin", "enable_mergejoin")


def _module(name: str) -> ModuleType:
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _benchmark() -> ModuleType:
    """The scale benchmark's queries (its catalogue builder is a module beside it)."""
    _module("archive_build")
    return _module("archive_scale")


@pytest.fixture
def small_archive(catalogue_engine: Engine) -> Iterator[tuple[Engine, Any]]:
    """Two years of nights, 24 frames each, with masters, products and links.

    The planner's statistics are then refreshed as ingest refreshes them after a
    chunk (:func:`~nightlog.catalogue.planner_statistics.refresh_statistics`), on
    both backends."""
    from nightlog.catalogue.planner_statistics import refresh_statistics

    cat = _module("archive_build").build_catalogue(catalogue_engine, 24 * 730, nights=730,
                                                   header_cards=5)
    assert "frames" in refresh_statistics(catalogue_engine)
    yield catalogue_engine, cat


def _statements(engine: Engine, run: Any) -> list[tuple[str, Any]]:
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any,
               executemany: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT") and not executemany:
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        with make_sessionmaker(engine)() as session:
            run(session)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return seen


def _pg_is_full(node: dict[str, Any], leading: dict[str, str]) -> bool:
    kind = node["Node Type"]
    if kind == "Seq Scan":
        return True
    if kind in ("Index Scan", "Index Only Scan", "Bitmap Index Scan"):
        # A condition that does not bound the index's first column walks all of it.
        column = leading.get(node.get("Index Name", ""), "")
        return not re.search(rf"\b{re.escape(column)}\b", node.get("Index Cond", ""))
    if kind == "Bitmap Heap Scan":  # its bitmaps come from the index scans below it
        return any(_pg_is_full(child, leading) for child in node.get("Plans", ())
                   if child["Node Type"] == "Bitmap Index Scan")
    return False


#: Plan nodes that pass rows on as they come (an incremental sort orders only the rows
#: of one time, already in time order), so a ``Limit`` above them stops the
#: index walk below them after its rows.
_STREAMING = ("Limit", "Incremental Sort", "Index Scan", "Index Only Scan", "Nested Loop",
              "Result")


def _pg_full_scans(node: dict[str, Any], leading: dict[str, str],
                   limited: bool = False) -> Iterator[str]:
    limited = (limited or node["Node Type"] == "Limit") and node["Node Type"] in _STREAMING
    stopped = limited and node["Node Type"] in ("Index Scan", "Index Only Scan")
    if node.get("Relation Name") in SCANNED and not stopped and _pg_is_full(node, leading):
        yield f"{node['Node Type']} on {node['Relation Name']}"
    for child in node.get("Plans", ()):
        yield from _pg_full_scans(child, leading, limited)


def _leading_columns(engine: Engine) -> dict[str, str]:
    """The first column of every index of frames and products, by index name."""
    found: dict[str, str] = {}
    insp = inspect(engine)
    for table in SCANNED:
        pk = insp.get_pk_constraint(table)
        found[str(pk["name"])] = pk["constrained_columns"][0]
        for ix in [*insp.get_indexes(table), *insp.get_unique_constraints(table)]:
            found[str(ix["name"])] = str(ix["column_names"][0])
    return found


def _full_scans(engine: Engine, statement: str, parameters: Any) -> list[str]:
    """The full scans of frames or products in the plan of ``statement``."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            rows = [str(r[-1]) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement,
                                                             parameters)]
            if (re.search(r"\bLIMIT\b", statement) and len(rows) == 1
                    and SQLITE_INDEX_WALK.fullmatch(rows[0])):
                return []  # one walk in an index's order, stopped by the LIMIT
            return [r for r in rows if SQLITE_FULL_SCAN.search(r)]
        for method in PRICED_OUT:
            conn.exec_driver_sql(f"SET {method} = off")
        doc = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, parameters).scalar()
        plan = json.loads(doc) if isinstance(doc, str) else doc
        return list(_pg_full_scans(plan[0]["Plan"], _leading_columns(engine)))


def test_hot_queries_scan_no_frames_and_no_products(small_archive: tuple[Engine, Any]) -> None:
    engine, cat = small_archive
    queries = _benchmark().hot_queries(cat)
    assert {q.name.split()[0] for q in queries} >= {
        "status", "nights", "frames", "calib", "match", "provenance", "watch"}
    for query in queries:
        statements = _statements(engine, query.run)
        assert statements, query.name
        for statement, parameters in statements:
            scans = _full_scans(engine, statement, parameters)
            assert not scans, f"{query.name}: {statement}\n{scans}"


def test_the_ten_year_listings_read_the_night_tally_not_the_frames(
        small_archive: tuple[Engine, Any]) -> None:
    # ``nights`` over every night, or per month or year, would group every frame;
    # they read the tally.
    engine, cat = small_archive
    listings = [q for q in _benchmark().hot_queries(cat)
                if q.name.startswith("nights") and "(ten years)" in q.name]
    assert {q.name.split()[1] for q in listings} >= {"--limit", "--by"}
    for listing in listings:
        statements = _statements(engine, listing.run)
        assert statements, listing.name
        assert all(re.search(r"\bnight_tallies\b", s) for s, _ in statements), listing.name
        assert not any(re.search(r"\b(FROM|JOIN) frames\b", s, re.I) for s, _ in statements)


def test_every_night_comes_from_the_tally_index_in_order_without_a_sort(
        small_archive: tuple[Engine, Any]) -> None:
    # Ten years of nights are read in the order of the tally's group index
    # (migration 0015): no sort of every group before the first row is printed.
    engine, cat = small_archive
    (every,) = [q for q in _benchmark().hot_queries(cat)
                if q.name == "nights --limit 0 (ten years)"]
    (statement, parameters), = _statements(engine, every.run)
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            plan = " | ".join(str(r[-1]) for r in conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN " + statement, parameters))
            assert "ix_night_tallies_group" in plan and "TEMP B-TREE" not in plan, plan
        else:
            for method in PRICED_OUT:
                conn.exec_driver_sql(f"SET {method} = off")
            conn.exec_driver_sql("SET enable_sort = off")
            doc = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement,
                                       parameters).scalar()
            text = json.dumps(doc)
            assert "ix_night_tallies_group" in text and '"Sort"' not in text, text


def _frames_read_by_id(engine: Engine, statement: str, parameters: Any) -> list[str]:
    """How the plan of ``statement`` reads frames, each way that is not one row by id."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            rows = [str(r[-1]) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement,
                                                             parameters)]
            return [r for r in rows if re.search(r"\bframes\b", r)
                    and not re.fullmatch(r"SEARCH frames USING INTEGER PRIMARY KEY \(rowid=\?\)",
                                         r)]
        for method in PRICED_OUT:
            conn.exec_driver_sql(f"SET {method} = off")
        doc = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, parameters).scalar()
        plan = json.loads(doc) if isinstance(doc, str) else doc

        def walk(node: dict[str, Any]) -> Iterator[str]:
            if node.get("Relation Name") == "frames" and not (
                    node["Node Type"] in ("Index Scan", "Index Only Scan")
                    and node.get("Index Name") == "pk_frames"
                    and re.fullmatch(r"\(id = \w+\.frame_id\)", node.get("Index Cond", ""))):
                yield " ".join((node["Node Type"], node.get("Index Name", ""),
                                node.get("Index Cond", "")))
            for child in node.get("Plans", ()):
                yield from walk(child)

        return list(walk(plan[0]["Plan"]))


def test_calib_build_reads_the_waiting_frames_not_every_calibration_frame(
        small_archive: tuple[Engine, Any]) -> None:
    # The nights with calibration frames in no master were an anti-join of every
    # calibration frame (half a million after ten years) with the masters' inputs:
    # an index range of frames, which the test above lets pass. They are read from
    # the frames waiting for a master (migration 0016), each frame looked up by id.
    engine, cat = small_archive
    (build,) = [q for q in _benchmark().hot_queries(cat) if q.name.startswith("calib build")]
    nights = [(s, p) for s, p in _statements(engine, build.run)
              if re.search(r"\bawaiting_masters\b", s)]
    assert len(nights) == 1, nights
    ((statement, parameters),) = nights
    assert not _frames_read_by_id(engine, statement, parameters), statement


def test_a_match_reads_its_first_candidates_in_one_statement_from_indexes(
        small_archive: tuple[Engine, Any]) -> None:
    # The first page on each side and the certified masters of bias, dark and flat
    # are one UNION ALL; each of its parts reads masters through an index.
    engine, cat = small_archive
    (match,) = [q for q in _benchmark().hot_queries(cat) if q.name.startswith("match")]
    statements = _statements(engine, match.run)
    united = [(s, p) for s, p in statements if "UNION ALL" in s]
    assert len(united) == 1 and len(statements) <= 4, [s for s, _ in statements]
    statement, parameters = united[0]
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            plan = [str(r[-1]) for r in conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN " + statement, parameters)]
            assert not [r for r in plan if re.search(r"\bSCAN masters\b", r)], plan
            assert sum("SEARCH masters USING INDEX" in r for r in plan) == 9, plan
        else:
            for method in PRICED_OUT:
                conn.exec_driver_sql(f"SET {method} = off")
            doc = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement,
                                       parameters).scalar()
            text = json.dumps(doc)
            assert '"Seq Scan"' not in text, text
