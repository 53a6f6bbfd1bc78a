"""``nightlog status``: a running daemon is seen through its heartbeat, a stopped or
killed one is not; tonight's counts come from the catalogue."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from nightlog.catalogue.engine import create_engine, make_sessionmaker
from nightlog.catalogue.models import Daemon
from nightlog.catalogue.schema import upgrade
from nightlog.cli.app import app
from tests.factories import wait_for, write_frame
from tests.test_watch import _daemon, _settings


def _status(runner: CliRunner, *args: str) -> dict[str, object]:
    result = runner.invoke(app, ["status", "--format", "json", *args])
    assert result.exit_code == 0, result.output
    doc: dict[str, object] = json.loads(result.stdout)
    return doc


def test_status_follows_the_daemon(runner: CliRunner, tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    settings = _settings(tmp_path, settle_seconds=0.2, heartbeat_seconds=0.5)
    engine = create_engine(settings.database_url)
    upgrade(engine)
    assert "no watch daemon" in runner.invoke(app, ["status"]).stdout
    with _daemon(engine, settings, [raw]):
        write_frame(raw / "bias.fits", seed=1, IMAGETYP="BIAS", EXPTIME=0.0, FILTER=None)
        for i in range(2):
            write_frame(raw / f"sci{i}.fits", seed=2 + i)
        (raw / "bad.fits").write_text("not FITS")

        def _seen() -> bool:
            (d,) = _status(runner)["daemons"]  # type: ignore[misc]
            return bool(d["counts"].get("added") == 3)

        wait_for(_seen, 30, "the heartbeat to report three frames")
        doc = _status(runner)
        assert doc["running"] is True
        (d,) = doc["daemons"]  # type: ignore[misc]
        assert d["directories"] == [str(raw)] and d["backlog"] == 0
        assert d["stopped_at"] is None and d["last_action"].startswith("ingested")
        assert doc["night"] == {"night": "2024-03-09", "frames": {"bias": 1, "science": 2},
                                "masters": {}, "products": {}, "quarantined": 1,
                                "problems": {}}
        table = runner.invoke(app, ["status"]).stdout
        assert "running" in table and "frames: bias 1, science 2" in table
        assert runner.invoke(app, ["status", "--require-running"]).exit_code == 0
    doc = _status(runner)
    assert doc["running"] is False
    assert "stopped" in runner.invoke(app, ["status"]).stdout
    assert runner.invoke(app, ["status", "--require-running"]).exit_code == 1
    # A daemon that died without stopping is told apart by its old heartbeat.
    with make_sessionmaker(engine)() as s, s.begin():
        row = s.scalars(select(Daemon)).one()
        row.stopped_at = None
        row.heartbeat_at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    assert "dead (no heartbeat)" in runner.invoke(app, ["status"]).stdout
    engine.dispose()


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_daemon_logs_are_text_or_json_lines(fmt: str, capsys: pytest.CaptureFixture[str]
                                            ) -> None:
    import logging

    from nightlog.cli.logs import LogFormat, configure_logging

    logger = logging.getLogger("nightlog")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    try:
        configure_logging(LogFormat(fmt))
        logging.getLogger("nightlog.watch").warning(
            "quarantined %s: %s", "/raw/a b.fits", "not FITS",
            extra={"event": "ingest", "path": "/raw/a b.fits", "frame_id": None})
    finally:
        logger.handlers[:] = saved[0]
        logger.setLevel(saved[1])
        logger.propagate = saved[2]
    (line,) = capsys.readouterr().err.splitlines()
    if fmt == "json":
        record = json.loads(line)
        assert record["level"] == "warning" and record["logger"] == "nightlog.watch"
        assert record["message"] == "quarantined /raw/a b.fits: not FITS"
        assert (record["event"], record["path"], record["frame_id"]) == (
            "ingest", "/raw/a b.fits", None)
        assert dt.datetime.fromisoformat(record["time"]).tzinfo is not None
    else:
        assert line.endswith("WARNING quarantined /raw/a b.fits: not FITS")
