"""``calib list`` and ``quarantine`` on a long archive: as ``nightlog frames``, the
newest first, a page at a time with a note that says how to read the next one, and
JSON or CSV written as the rows are read, from the record's columns alone."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path

from sqlalchemy import Engine, event
from typer.testing import CliRunner

from nightlog.catalogue.engine import create_engine, make_sessionmaker
from nightlog.catalogue.listing import iter_master_records
from nightlog.catalogue.masters import MasterFilter, NewMaster, add_master, find_masters
from nightlog.catalogue.quarantine import (
    iter_quarantine_records,
    record_quarantined,
    resolve_quarantined,
)
from nightlog.catalogue.records import master_record
from nightlog.catalogue.schema import upgrade
from nightlog.cli.app import app
from nightlog.cli.calib import _RECORD_COLUMNS
from nightlog.cli.pages import DEFAULT_LIMIT

FIRST = dt.date(2026, 3, 1)
SEEN = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)


def _fill_masters(engine: Engine, n: int) -> None:
    """``n`` masters, three kinds a night (ties of night are broken by kind and id)."""
    with make_sessionmaker(engine)() as session, session.begin():
        for i in range(n):
            night = FIRST + dt.timedelta(days=i // 3)
            kind = ("bias", "dark", "flat")[i % 3]
            start = dt.datetime.combine(night, dt.time(18), tzinfo=dt.UTC)
            add_master(session, NewMaster(
                kind=kind, profile="lfc", instrument="LFC", setup_key="s",
                group_key=f"{kind}-g", night=night, version=1, path=f"/m/{i}.fits",
                sha256=f"{i:064x}", size=1, first_obs=start,
                last_obs=start + dt.timedelta(hours=1), n_frames=5,
                stats={"level": 100.0 + i, "noise": 3.0}, parameters={},
                software_version="test", filter="V" if kind == "flat" else None), [])


def _fill_quarantine(engine: Engine, n: int) -> None:
    """``n`` files, two seen at each time, one of them since ingested."""
    with make_sessionmaker(engine)() as session, session.begin():
        for i in range(n):
            record_quarantined(session, f"/raw/bad-{i}.fits", reason="unreadable",
                               error="header", now=SEEN + dt.timedelta(minutes=i // 2))
        resolve_quarantined(session, "/raw/bad-4.fits", now=SEEN + dt.timedelta(days=1))


def _catalogue(folder: Path, masters: int = 0, quarantined: int = 0) -> None:
    engine = create_engine(f"sqlite:///{folder / 'nightlog.sqlite'}")
    upgrade(engine)
    _fill_masters(engine, masters)
    _fill_quarantine(engine, quarantined)
    engine.dispose()


def _all_pages(runner: CliRunner, command: list[str], size: int) -> list[dict[str, object]]:
    listed: list[dict[str, object]] = []
    after: list[str] = []
    while True:
        result = runner.invoke(app, [*command, "--limit", str(size), *after,
                                     "--format", "json"])
        assert result.exit_code == 0, result.output
        page = json.loads(result.stdout)
        listed += page
        if "left out" not in result.stderr:
            return listed
        assert len(page) == size
        assert f"--after {page[-1]['id']} lists the next ones" in result.stderr
        after = ["--after", str(page[-1]["id"])]


def test_calib_list_pages_follow_each_other_newest_first(runner: CliRunner,
                                                         tmp_path: Path) -> None:
    _catalogue(tmp_path, masters=25)
    listed = _all_pages(runner, ["calib", "list"], 4)
    assert len(listed) == 25 and len({r["id"] for r in listed}) == 25  # no gap, no repeat
    order = [(r["night"], r["kind"], r["id"]) for r in listed]
    assert order == sorted(order, reverse=True)
    everything = runner.invoke(app, ["calib", "list", "--limit", "0", "--oldest-first",
                                     "--format", "json"])
    assert "left out" not in everything.stderr
    assert json.loads(everything.stdout) == listed[::-1]
    flats = runner.invoke(app, ["calib", "list", "--kind", "flat", "--format", "csv"])
    assert [int(r["id"]) for r in csv.DictReader(io.StringIO(flats.stdout))] == [
        r["id"] for r in listed if r["kind"] == "flat"]
    table = runner.invoke(app, ["calib", "list", "--limit", "3"])
    assert "3 master(s)" in table.stdout
    assert "the newest 3 master(s) listed; more are left out" in table.stderr


def test_calib_list_by_default_the_newest_page(runner: CliRunner, tmp_path: Path) -> None:
    _catalogue(tmp_path, masters=DEFAULT_LIMIT + 2)
    result = runner.invoke(app, ["calib", "list", "--format", "json"])
    assert result.exit_code == 0, result.output
    ids = [r["id"] for r in json.loads(result.stdout)]
    assert len(ids) == DEFAULT_LIMIT and max(ids) == DEFAULT_LIMIT + 2
    assert f"the newest {DEFAULT_LIMIT} master(s) listed" in result.stderr
    empty = runner.invoke(app, ["calib", "list", "--kind", "illumination", "--format", "csv"])
    assert empty.stdout.startswith("id,kind,night,version")


def test_master_records_are_read_without_catalogue_objects(
        catalogue_engine: Engine) -> None:
    _fill_masters(catalogue_engine, 20)
    seen: list[str] = []
    event.listen(catalogue_engine, "before_cursor_execute",
                 lambda _c, _cur, statement, *_a: seen.append(statement))
    with make_sessionmaker(catalogue_engine)() as session:
        streamed = list(iter_master_records(session, MasterFilter(), chunk=3))
        assert not session.identity_map  # no Master was made
    assert not any("masters.parameters" in s for s in seen)
    with make_sessionmaker(catalogue_engine)() as session:
        # the records the whole catalogue objects give, in the same order
        assert streamed == [master_record(m) for m in find_masters(session, MasterFilter())]
        page = list(iter_master_records(session, MasterFilter(after_id=streamed[4]["id"],
                                                              limit=3)))
        assert page == streamed[5:8]
        newest = list(iter_master_records(session, MasterFilter(
            newest_first=True, after_id=streamed[7]["id"])))
        assert newest == streamed[:7][::-1]
    # the CLI's record fields are the record's, in order (an empty CSV's header)
    assert tuple(streamed[0]) == _RECORD_COLUMNS


def test_quarantine_pages_follow_each_other_most_recent_first(runner: CliRunner,
                                                              tmp_path: Path) -> None:
    _catalogue(tmp_path, quarantined=15)
    listed = _all_pages(runner, ["quarantine"], 4)
    assert len(listed) == 14 and "/raw/bad-4.fits" not in {r["path"] for r in listed}
    order = [(r["last_seen"], r["id"]) for r in listed]
    assert order == sorted(order, reverse=True)
    assert len(_all_pages(runner, ["quarantine", "--all"], 5)) == 15
    oldest = runner.invoke(app, ["quarantine", "--oldest-first", "--limit", "0",
                                 "--format", "json"])
    assert json.loads(oldest.stdout) == listed[::-1]
    table = runner.invoke(app, ["quarantine", "--limit", "2"])
    assert "2 quarantined file(s)" in table.stdout
    assert "the newest 2 quarantined file(s) listed" in table.stderr


def test_quarantine_records_are_read_a_chunk_at_a_time(catalogue_engine: Engine) -> None:
    _fill_quarantine(catalogue_engine, 9)
    with make_sessionmaker(catalogue_engine)() as session:
        streamed = list(iter_quarantine_records(session, include_resolved=True, chunk=2))
        assert not session.identity_map
        assert [r["path"] for r in streamed] == [
            f"/raw/bad-{i}.fits" for i in (8, 7, 6, 5, 4, 3, 2, 1, 0)]
        assert next(r for r in streamed if r["path"] == "/raw/bad-4.fits")["resolved_at"]
        page = list(iter_quarantine_records(session, include_resolved=True,
                                            after_id=streamed[2]["id"], limit=3))
        assert page == streamed[3:6]
