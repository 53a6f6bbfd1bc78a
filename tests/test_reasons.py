"""Reasons a user reads: each says what is wrong with the file, not something
near it. Values that overflow are quoted as written (not as ``inf``); an empty file,
a header cut short and a header without its END card are told apart; a copy of a
catalogued file is a ``duplicate`` whose reason is logged and listed by ``nightlog
quarantine``; ``SIMPLE = F`` is not FITS."""

from __future__ import annotations

import io
import logging
import shutil
import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from nightlog.catalogue.engine import make_sessionmaker
from nightlog.catalogue.models import Frame, QuarantinedFile
from nightlog.cli.app import app
from nightlog.coordinator.context import JobContext
from nightlog.coordinator.ingest import IngestContext, discover, run_ingest
from nightlog.daemon.watch import Watcher, WatchOptions
from nightlog.errors import IncompleteFileError, NotFitsError
from nightlog.settings import load_settings
from nightlog.store.raw import read_raw_file
from tests.factories import frame_hdu
from tests.test_hostile_input import write_raw

PATTERNS = ("*.fits",)


def _good() -> bytes:
    buf = io.BytesIO()
    frame_hdu(1).writeto(buf)
    return buf.getvalue()


def _without_end(data: bytes) -> bytes:
    i = data.index(b"END" + b" " * 77)
    return data[:i] + b" " * 80 + data[i + 80:]


def _quarantine(engine: Engine) -> dict[str, QuarantinedFile]:
    with make_sessionmaker(engine)() as s:
        return {Path(q.path).name: q for q in s.scalars(select(QuarantinedFile))}


def _ctx(tmp_path: Path) -> IngestContext:
    return IngestContext.from_settings(load_settings(env={}, cwd=tmp_path))


def test_an_overflowing_value_is_quoted_as_written(catalogue_engine: Engine,
                                                   tmp_path: Path) -> None:
    write_raw(tmp_path / "raw" / "huge.fits", EXPTIME=b"1E400".rjust(20))
    run_ingest(catalogue_engine, discover([tmp_path / "raw"], PATTERNS), _ctx(tmp_path))
    reason = _quarantine(catalogue_engine)["huge.fits"].reason
    assert reason == "EXPTIME=1E400: too large for a number (beyond ±1.8E308)"
    assert "inf" not in reason


@pytest.mark.parametrize(("name", "data", "error", "reason"), [
    ("empty", b"", IncompleteFileError, "file is empty (0 bytes)"),
    ("cut-in-header", _good()[:1000], IncompleteFileError,
     "file ends inside the header of the HDU at byte 0, before its END card "
     "(1,000 bytes of cards)"),
    ("header-without-end", _without_end(_good())[:2880], IncompleteFileError,
     "no END card: the header of the HDU at byte 0 runs to the end of the file "
     "(2,880 bytes of cards)"),
    ("data-after-a-header-without-end", _without_end(_good()), NotFitsError,
     "no END card in the header of the HDU at byte 0: its block at byte 2,880 holds data, "
     "not cards"),
    ("zeros-after-a-header-without-end", _without_end(_good())[:2880] + b"\0" * 2880,
     IncompleteFileError, "no END card yet: the header of the HDU at byte 0 is followed by "
     "zero bytes from byte 2,880 (pre-allocated, still being written?)"),
    ("simple-f", _good().replace(b"SIMPLE  =                    T",
                                 b"SIMPLE  =                    F"), NotFitsError,
     "SIMPLE = F: the file does not declare itself standard FITS (SIMPLE = T)"),
])
def test_broken_structures_are_told_apart(tmp_path: Path, name: str, data: bytes,
                                          error: type[Exception], reason: str) -> None:
    path = tmp_path / f"{name}.fits"
    path.write_bytes(data)
    with pytest.raises(error) as got:
        read_raw_file(path)
    assert str(got.value) == reason


def test_simple_f_is_quarantined_not_catalogued(catalogue_engine: Engine,
                                                tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "nonstandard.fits").write_bytes(
        _good().replace(b"SIMPLE  =                    T", b"SIMPLE  =                    F"))
    summary = run_ingest(catalogue_engine, discover([raw], PATTERNS), _ctx(tmp_path))
    assert dict(summary.counts) == {"quarantined": 1}
    assert _quarantine(catalogue_engine)["nonstandard.fits"].reason.startswith("SIMPLE = F")


def test_a_copy_is_a_duplicate_with_its_reason_logged_and_listed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "a.fits").write_bytes(_good())
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NIGHTLOG_CONFIG", raising=False)
    monkeypatch.delenv("NIGHTLOG_DATABASE_URL", raising=False)
    (tmp_path / "nightlog.toml").write_text("")
    settings = load_settings(env={}, cwd=tmp_path)
    runner = CliRunner()
    assert runner.invoke(app, ["ingest", str(raw)]).exit_code == 0
    shutil.copy(raw / "a.fits", raw / "a-copy.fits")

    from nightlog.catalogue.engine import create_engine

    engine = create_engine(settings.database_url)
    opts = WatchOptions.from_settings(settings, [raw], settle=0.1)
    watcher = Watcher(engine, IngestContext.from_settings(settings, incomplete_is_error=False),
                      JobContext.from_settings(settings), opts)
    thread = threading.Thread(target=watcher.run, daemon=True)
    with caplog.at_level(logging.INFO, logger="nightlog.watch"):
        thread.start()
        assert watcher.ready_event.wait(20)
        watcher.stop.set()
        thread.join(20)
    with make_sessionmaker(engine)() as s:
        (frame,) = s.scalars(select(Frame))
    engine.dispose()
    expected = (f"same bytes as frame {frame.id} at {raw / 'a.fits'}: a copy, "
                "not catalogued")
    lines = [r for r in caplog.records if getattr(r, "outcome", "") == "duplicate"]
    assert [r.getMessage() for r in lines] == [f"duplicate {raw / 'a-copy.fits'}: {expected}"]
    assert lines[0].reason == expected
    listed = runner.invoke(app, ["quarantine", "--format", "json"])
    assert listed.exit_code == 0
    assert str(raw / "a-copy.fits") in listed.output
    assert expected in listed.output and '"Duplicate"' in listed.output
