"""The planner's statistics are kept by nightlog: a table that changed a lot is
analysed after the batch, one that changed a little is left alone; ``nightlog db
analyze`` refreshes them all."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, text
from typer.testing import CliRunner

from nightlog.catalogue.engine import create_engine
from nightlog.catalogue.models import NightTally
from nightlog.catalogue.planner_statistics import MIN_CHANGED, refresh_statistics
from nightlog.cli.app import app


def _add_tally_rows(engine: Engine, n: int, first_night: dt.date) -> None:
    rows = [{"night": first_night + dt.timedelta(days=i // 4), "kind": "bias",
             "filter": None, "exptime": float(i % 4), "frames": 1} for i in range(n)]
    with engine.begin() as conn:
        conn.execute(insert(NightTally), rows)


def _sqlite_stat(engine: Engine) -> str | None:
    with engine.connect() as conn:
        if conn.scalar(text("SELECT count(*) FROM sqlite_master "
                            "WHERE name = 'sqlite_stat1'")) == 0:
            return None
        return conn.scalar(text("SELECT stat FROM sqlite_stat1 "
                                "WHERE idx = 'ix_night_tallies_group'"))


def _pg_analyses(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(text(
            "SELECT analyze_count FROM pg_stat_user_tables "
            "WHERE schemaname = current_schema() AND relname = 'night_tallies'")) or 0)


def test_a_large_change_is_analysed_and_a_tiny_one_left_alone(
        catalogue_engine: Engine) -> None:
    engine = catalogue_engine
    sqlite = engine.dialect.name == "sqlite"
    if sqlite:
        assert _sqlite_stat(engine) is None  # a new catalogue has no statistics

    _add_tally_rows(engine, 4 * MIN_CHANGED, dt.date(2024, 1, 1))
    analysed = refresh_statistics(engine)
    if sqlite:
        stat = _sqlite_stat(engine)  # sampled: about the rows there are
        assert stat is not None and int(stat.split()[0]) > 2 * MIN_CHANGED
        assert "night_tallies" in analysed
    else:
        assert "night_tallies" in analysed
        assert _pg_analyses(engine) == 1

    _add_tally_rows(engine, 5, dt.date(2030, 1, 1))  # a few rows more: no new analysis
    analysed = refresh_statistics(engine)
    if sqlite:
        assert _sqlite_stat(engine) == stat
    else:
        assert "night_tallies" not in analysed
        assert _pg_analyses(engine) == 1


@pytest.mark.postgres
def test_postgresql_analyses_again_once_a_tenth_of_the_rows_changed(
        pg_schema_url: str) -> None:
    from nightlog.catalogue.schema import upgrade

    engine = create_engine(pg_schema_url)
    try:
        upgrade(engine)
        _add_tally_rows(engine, 10 * MIN_CHANGED, dt.date(2024, 1, 1))
        refresh_statistics(engine)
        assert _pg_analyses(engine) == 1
        _add_tally_rows(engine, MIN_CHANGED // 2, dt.date(2030, 1, 1))  # 5 %
        assert "night_tallies" not in refresh_statistics(engine)
        _add_tally_rows(engine, MIN_CHANGED, dt.date(2031, 1, 1))  # 15 % in all
        assert "night_tallies" in refresh_statistics(engine)
        assert _pg_analyses(engine) == 2
    finally:
        engine.dispose()


def test_db_analyze_refreshes_every_table(runner: CliRunner, tmp_path: Path) -> None:
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    engine = create_engine(f"sqlite:///{tmp_path / 'nightlog.sqlite'}")
    _add_tally_rows(engine, 10, dt.date(2024, 1, 1))
    result = runner.invoke(app, ["db", "analyze"])
    assert result.exit_code == 0, result.output
    assert "statistics refreshed" in result.output
    assert _sqlite_stat(engine) is not None and _sqlite_stat(engine).split()[0] == "10"
    engine.dispose()


@pytest.mark.postgres
def test_analyze_all_analyses_the_catalogue_schema_on_postgresql(pg_schema_url: str) -> None:
    from nightlog.catalogue.planner_statistics import analyze_all
    from nightlog.catalogue.schema import upgrade

    engine = create_engine(pg_schema_url)
    try:
        upgrade(engine)
        _add_tally_rows(engine, 3, dt.date(2024, 1, 1))
        tables = analyze_all(engine)
        assert {"frames", "night_tallies", "masters"} <= set(tables)
        assert _pg_analyses(engine) == 1
    finally:
        engine.dispose()
