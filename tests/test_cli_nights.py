"""``nightlog nights`` on an archive of many nights: the newest first, a limit that
says what it left out, and the nights summed per month or year, in every format."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path

from typer.testing import CliRunner

from nightlog.catalogue import frames as cf
from nightlog.catalogue.engine import create_engine, make_sessionmaker
from nightlog.catalogue.schema import upgrade
from nightlog.cli.app import app
from nightlog.cli.nights import DEFAULT_LIMIT
from nightlog.header.model import NormalizedHeader

FIRST = dt.date(2025, 11, 20)
#: 45 nights from 20 November to 3 January: three months, two years.
NIGHTS = [FIRST + dt.timedelta(days=i) for i in range(45)]


def _archive(folder: Path) -> dict[dt.date, int]:
    """Frames of every night (1 to 3 science frames and a bias) in ``folder``'s
    catalogue; the frames of each night."""
    engine = create_engine(f"sqlite:///{folder / 'nightlog.sqlite'}")
    upgrade(engine)
    made: dict[dt.date, int] = {}
    with make_sessionmaker(engine)() as session, session.begin():
        n = 0
        for i, night in enumerate(NIGHTS):
            for kind, exptime in [("bias", 0.0)] + [("science", 60.0)] * (1 + i % 3):
                n += 1
                when = dt.datetime.combine(night, dt.time(23), tzinfo=dt.UTC)
                norm = NormalizedHeader(profile="lfc", kind=kind, raw_type=kind.upper(),
                                        exptime=exptime, filter="V" if kind == "science"
                                        else None, obs_time=when + dt.timedelta(minutes=n),
                                        night=night, shape=(20, 30), instrument="LFC")
                facts = cf.FileFacts(path=f"/raw/{night}/{n}.fits", sha256=f"{n:064x}",
                                     size=1, mtime=when, hdu=0, header_json=[])
                cf.add_frame(session, facts, norm, software_version="test")
                made[night] = made.get(night, 0) + 1
    engine.dispose()
    return made


def test_the_newest_nights_come_first_and_the_limit_says_so(runner: CliRunner,
                                                            tmp_path: Path) -> None:
    made = _archive(tmp_path)
    result = runner.invoke(app, ["nights", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    nights = [r["night"] for r in rows]
    newest = sorted(made, reverse=True)[:DEFAULT_LIMIT]
    assert sorted(set(nights), reverse=True) == [n.isoformat() for n in newest]
    assert nights == sorted(nights, reverse=True)
    assert f"the newest {DEFAULT_LIMIT} night(s) listed" in result.stderr

    result = runner.invoke(app, ["nights", "--limit", "0", "--oldest-first", "--format",
                                 "csv"])
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    per_night: dict[str, int] = {}
    for r in rows:
        per_night[r["night"]] = per_night.get(r["night"], 0) + int(r["count"])
    assert per_night == {n.isoformat(): c for n, c in made.items()}
    assert [r["night"] for r in rows] == sorted(r["night"] for r in rows)
    assert "left out" not in result.stderr

    result = runner.invoke(app, ["nights", "--since", "2025-12-30", "--until", "2026-01-01"])
    assert result.exit_code == 0, result.output
    assert "3 night(s)" in result.stdout and "left out" not in result.stderr


def test_months_and_years_sum_the_nights(runner: CliRunner, tmp_path: Path) -> None:
    made = _archive(tmp_path)
    for by, width in (("month", 7), ("year", 4)):
        result = runner.invoke(app, ["nights", "--by", by, "--format", "json"])
        assert result.exit_code == 0, result.output
        rows = json.loads(result.stdout)
        expected: dict[tuple[str, str], int] = {}
        nights: dict[tuple[str, str], set[dt.date]] = {}
        for night, count in made.items():
            period = night.isoformat()[:width]
            expected[(period, "bias")] = expected.get((period, "bias"), 0) + 1
            expected[(period, "science")] = expected.get((period, "science"), 0) + count - 1
            for kind in ("bias", "science"):
                nights.setdefault((period, kind), set()).add(night)
        assert {(r[by], r["kind"]): r["count"] for r in rows} == expected
        assert {(r[by], r["kind"]): r["nights"] for r in rows} == {
            k: len(v) for k, v in nights.items()}
        assert [r[by] for r in rows] == sorted((r[by] for r in rows), reverse=True)
    result = runner.invoke(app, ["nights", "--by", "month", "--limit", "1"])
    assert "2026-01" in result.stdout and "2025-12" not in result.stdout
    assert "the newest 1 month(s) listed" in result.stderr
