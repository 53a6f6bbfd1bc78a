"""``nightlog frames`` on a long archive: the newest first, a page at a time with a
note that says how to read the next one, and JSON or CSV written as the rows are
read, from the record's columns alone (no stored header, no catalogue objects)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path

from sqlalchemy import Engine, event
from typer.testing import CliRunner

from nightlog.catalogue import frames as cf
from nightlog.catalogue.engine import create_engine, make_sessionmaker
from nightlog.catalogue.listing import frame_rows, iter_frame_records
from nightlog.catalogue.queries import FrameFilter, find_frames
from nightlog.catalogue.records import frame_record
from nightlog.catalogue.schema import upgrade
from nightlog.cli.app import app
from nightlog.cli.frames import DEFAULT_LIMIT
from nightlog.header.model import NormalizedHeader

START = dt.datetime(2026, 3, 1, 23, tzinfo=dt.UTC)


def _add(session: object, n: int, when: dt.datetime, kind: str = "science") -> None:
    norm = NormalizedHeader(profile="lfc", kind=kind, raw_type=kind.upper(), exptime=60.0,
                            filter="V", obs_time=when, night=when.date(), shape=(20, 30),
                            instrument="LFC")
    facts = cf.FileFacts(path=f"/raw/{n}.fits", sha256=f"{n:064x}", size=1, mtime=when,
                         hdu=0, header_json=[["OBJECT", f"target {n}", ""]] * 20)
    cf.add_frame(session, facts, norm, software_version="test")  # type: ignore[arg-type]


def _fill(engine: Engine, n: int) -> None:
    """``n`` frames, two at each time (ties are broken by id), a bias among them."""
    with make_sessionmaker(engine)() as session, session.begin():
        for i in range(n):
            _add(session, i, START + dt.timedelta(minutes=i // 2),
                 "bias" if i == 3 else "science")


def _catalogue(folder: Path, n: int) -> None:
    engine = create_engine(f"sqlite:///{folder / 'nightlog.sqlite'}")
    upgrade(engine)
    _fill(engine, n)
    engine.dispose()


def test_pages_follow_each_other_newest_first_and_the_note_says_how(
        runner: CliRunner, tmp_path: Path) -> None:
    _catalogue(tmp_path, 25)
    listed: list[dict[str, object]] = []
    after: list[str] = []
    while True:
        result = runner.invoke(app, ["frames", "--limit", "10", *after, "--format", "json"])
        assert result.exit_code == 0, result.output
        page = json.loads(result.stdout)
        listed += page
        if "left out" not in result.stderr:
            break
        assert len(page) == 10
        assert f"--after {page[-1]['id']} lists the next ones" in result.stderr
        after = ["--after", str(page[-1]["id"])]
    assert len(listed) == 25 and len({r["id"] for r in listed}) == 25  # no gap, no repeat
    order = [(r["obs_time"], r["id"]) for r in listed]
    assert order == sorted(order, reverse=True)

    everything = runner.invoke(app, ["frames", "--limit", "0", "--oldest-first",
                                     "--format", "json"])
    assert "left out" not in everything.stderr
    assert json.loads(everything.stdout) == listed[::-1]
    science = runner.invoke(app, ["frames", "--kind", "science", "--format", "csv"])
    assert [int(r["id"]) for r in csv.DictReader(io.StringIO(science.stdout))] == [
        r["id"] for r in listed if r["kind"] == "science"]


def test_the_default_lists_the_newest_and_says_what_it_left_out(
        runner: CliRunner, tmp_path: Path) -> None:
    _catalogue(tmp_path, DEFAULT_LIMIT + 2)
    result = runner.invoke(app, ["frames", "--format", "json"])
    assert result.exit_code == 0, result.output
    ids = [r["id"] for r in json.loads(result.stdout)]
    assert len(ids) == DEFAULT_LIMIT and max(ids) == DEFAULT_LIMIT + 2  # the newest
    assert f"the newest {DEFAULT_LIMIT} frame(s) listed; more are left out" in result.stderr
    assert "--limit 0 every one" in result.stderr


def test_streamed_json_is_the_listing_as_it_always_was(runner: CliRunner,
                                                       tmp_path: Path) -> None:
    # Written a row at a time, byte for byte what one json.dumps of the list gave.
    _catalogue(tmp_path, 5)
    engine = create_engine(f"sqlite:///{tmp_path / 'nightlog.sqlite'}")
    with make_sessionmaker(engine)() as session:
        records = [frame_record(f) for f in find_frames(session, FrameFilter(
            newest_first=True))]
    engine.dispose()
    result = runner.invoke(app, ["frames", "--format", "json"])
    assert result.stdout == json.dumps(records, ensure_ascii=False, indent=1) + "\n"
    empty = runner.invoke(app, ["frames", "--kind", "dark", "--format", "json"])
    assert empty.stdout == "[]\n"
    header = runner.invoke(app, ["frames", "--kind", "dark", "--format", "csv"])
    assert header.stdout.startswith("id,night,ut,kind")


def test_records_are_read_without_headers_or_catalogue_objects(
        catalogue_engine: Engine) -> None:
    _fill(catalogue_engine, 30)
    seen: list[str] = []
    event.listen(catalogue_engine, "before_cursor_execute",
                 lambda _c, _cur, statement, *_a: seen.append(statement))
    with make_sessionmaker(catalogue_engine)() as session:
        streamed = list(iter_frame_records(session, FrameFilter(), chunk=7))
        assert not session.identity_map  # no Frame was made
    assert not any("frames.header" in s for s in seen)
    with make_sessionmaker(catalogue_engine)() as session:
        assert streamed == [frame_record(f) for f in find_frames(session, FrameFilter())]
        assert frame_rows(session, FrameFilter(limit=5)) == streamed[:5]
        # A page after a frame whose time it shares with the next: the tie is kept.
        page = frame_rows(session, FrameFilter(after_id=streamed[10]["id"], limit=3))
        assert page == streamed[11:14]
        newest = frame_rows(session, FrameFilter(newest_first=True,
                                                 after_id=streamed[11]["id"]))
        assert newest == streamed[:11][::-1]
