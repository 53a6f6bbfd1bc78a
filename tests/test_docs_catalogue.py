"""docs/catalogue.md: every SQL query of the page runs on a demo catalogue and finds rows."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nightlog.cli.app import app

PAGE = Path(__file__).resolve().parent.parent / "docs" / "catalogue.md"
QUERIES = re.findall(r"```sql\n(.*?)```", PAGE.read_text(encoding="utf-8"), flags=re.S)


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("demo") / "archive"
    result = CliRunner().invoke(app, ["demo", str(where), "--scale", "0.1"])
    assert result.exit_code == 0, result.output
    return where / "nightlog.sqlite"


def test_the_page_has_queries() -> None:
    assert len(QUERIES) >= 5


@pytest.mark.parametrize("query", QUERIES, ids=[q.split("\n")[0][:40] for q in QUERIES])
def test_every_query_runs_read_only_and_finds_rows(catalogue: Path, query: str) -> None:
    with sqlite3.connect(f"file:{catalogue}?mode=ro", uri=True) as db:
        rows = db.execute(query).fetchall()
    if "not mi.used" in query or "from alarms" in query or "from frame_holds" in query:
        # A demo night rejects no frame, raises no alarm and holds no frame: the query
        # only has to run.
        return
    assert rows, query


def test_the_tables_named_are_the_schema(catalogue: Path) -> None:
    named = set(re.findall(r"^\| `([a-z_]+)` \|", PAGE.read_text(encoding="utf-8"), flags=re.M))
    with sqlite3.connect(f"file:{catalogue}?mode=ro", uri=True) as db:
        # SQLite's own tables (its planner statistics, sqlite_stat1) are not the catalogue's.
        tables = {r[0] for r in db.execute("select name from sqlite_master where type='table'")
                  if not r[0].startswith("sqlite_")}
    assert named <= tables, named - tables
    assert tables - named <= {"alembic_version"}, tables - named  # every table is described
