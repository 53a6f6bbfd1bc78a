"""Every way a file gets written, against the real watch daemon: a writer process
writes a frame in its pattern while the daemon (a real watchdog observer, the real
loop) follows the folder. Each pattern must give exactly one frame row, catalogued
after the writer's last byte, holding the final bytes (the checksum of the file as
the writer left it), on SQLite and PostgreSQL.

Patterns: a direct write; write-then-rename; slow pieces; pre-allocated to the full
length then filled with pauses longer than the settle time (the writer holding the
file open, and a writer that closes and reopens it between pieces, as a copy from
another machine looks); truncated (closed half-written), then finished.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from nightlog.catalogue.engine import make_sessionmaker
from nightlog.catalogue.models import Frame, QuarantinedFile
from nightlog.daemon.watch import Watcher, WatchOptions
from nightlog.settings import load_settings
from nightlog.store.completeness import ends_in_zero_block
from nightlog.store.open_writers import open_for_writing
from nightlog.store.settle import SettleTracker
from tests.factories import frame_hdu, wait_for
from tests.test_watch import _daemon as watch_daemon

SETTLE = 0.3
PAUSE = 1.0  # longer than the settle time: each pause used to give a frame row

# The writer: argv = pattern, target path, source of the final bytes. It prints the
# wall-clock time just after its last write is closed (renamed, for "rename").
WRITER = r"""
import os, sys, time
pattern, target, source = sys.argv[1:4]
data = open(source, "rb").read()
pieces = [data[i * len(data) // 5:(i + 1) * len(data) // 5] for i in range(5)]
pause = float(sys.argv[4])
if pattern == "direct":
    with open(target, "wb") as fh:
        fh.write(data)
elif pattern == "rename":
    tmp = os.path.join(os.path.dirname(target), "." + os.path.basename(target) + ".part")
    with open(tmp, "wb") as fh:
        for piece in pieces:
            fh.write(piece); fh.flush(); time.sleep(pause / 4)
    os.rename(tmp, target)
elif pattern == "slow-pieces":
    with open(target, "wb") as fh:
        for piece in pieces:
            fh.write(piece); fh.flush(); time.sleep(pause)
elif pattern == "preallocated":  # fallocate, then fill, holding the file open
    fd = os.open(target, os.O_WRONLY | os.O_CREAT, 0o644)
    os.posix_fallocate(fd, 0, len(data))
    offset = 0
    for piece in pieces:
        time.sleep(pause)
        os.pwrite(fd, piece, offset); offset += len(piece)
    os.close(fd)
elif pattern == "preallocated-reopened":  # the same, closing the file between pieces
    with open(target, "wb") as fh:
        fh.truncate(len(data))
    offset = 0
    for piece in pieces:
        time.sleep(pause)
        with open(target, "r+b") as fh:
            fh.seek(offset); fh.write(piece)
        offset += len(piece)
elif pattern == "truncated-then-finished":
    half = len(data) // 2
    with open(target, "wb") as fh:
        fh.write(data[:half])
    time.sleep(3 * pause)
    with open(target, "ab") as fh:
        fh.write(data[half:])
print(repr(time.time()), flush=True)
"""

PATTERNS = ["direct", "rename", "slow-pieces", "preallocated", "preallocated-reopened",
            "truncated-then-finished"]


def _frame_bytes(seed: int) -> bytes:
    buf = io.BytesIO()
    frame_hdu(seed, (100, 720)).writeto(buf)  # 144,000 bytes of data, 50 blocks
    return buf.getvalue()


def _frames(engine: Engine) -> list[Frame]:
    with make_sessionmaker(engine)() as s:
        return list(s.scalars(select(Frame).order_by(Frame.id)))


def _quarantined(engine: Engine) -> list[str]:
    with make_sessionmaker(engine)() as s:
        return list(s.scalars(select(QuarantinedFile.path)))




@contextmanager
def _daemon(engine: Engine, root: Path, folder: Path, **options: Any) -> Iterator[Watcher]:
    """The daemon of ``tests/test_watch.py`` on an archive at ``root``, its own settings."""
    (root / "nightlog.toml").write_text("")
    settings = load_settings(root / "nightlog.toml", env={}, cwd=root)
    with watch_daemon(engine, settings, [folder], **options) as watcher:
        yield watcher


@pytest.mark.parametrize("pattern", PATTERNS)
def test_each_writer_pattern_gives_one_row_of_the_final_bytes(
        catalogue_engine: Engine, tmp_path: Path, pattern: str) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    data = _frame_bytes(7)
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    target = raw / "frame.fits"
    with _daemon(catalogue_engine, tmp_path, raw, settle=SETTLE, zero_tail=4 * PAUSE,
                 build_delay=3600.0, build_max_delay=3600.0) as watcher:
        started = time.time()
        writer = subprocess.run([sys.executable, "-c", WRITER, pattern, str(target),
                                 str(source), str(PAUSE)],
                                check=True, capture_output=True, text=True, timeout=60)
        finished = float(writer.stdout.strip())
        wait_for(lambda: len(_frames(catalogue_engine)) >= 1, 15, "the frame")
        time.sleep(SETTLE + 0.5)  # a second row would come now
        waits = (watcher.tracker.writer_waits, watcher.tracker.zero_waits)
    rows = _frames(catalogue_engine)
    assert len(rows) == 1, [(r.size, r.sha256) for r in rows]
    (row,) = rows
    assert row.path == str(target) and row.is_latest
    assert row.sha256 == hashlib.sha256(data).hexdigest() == hashlib.sha256(
        target.read_bytes()).hexdigest()
    assert row.size == len(data)
    ingested = row.ingested_at.timestamp()
    assert ingested >= finished  # never before the writer's last byte
    assert _quarantined(catalogue_engine) == []
    if pattern == "preallocated":
        assert waits[0] >= 1  # the writer holding it was waited for
    if pattern == "preallocated-reopened":
        assert waits[1] >= 1  # no writer to see between pieces: the zero tail held it
    backend = catalogue_engine.dialect.name
    print(f"\nwriter-pattern {backend:10s} {pattern:24s} rows=1 writing={finished - started:5.2f}s "
          f"catalogued {ingested - finished:5.2f}s after the last write "
          f"(writer waits {waits[0]}, zero-tail waits {waits[1]})")


# -- the pieces alone ---------------------------------------------------------------------


def test_a_file_held_open_for_writing_is_seen_and_released(tmp_path: Path) -> None:
    path = tmp_path / "a.fits"
    path.write_bytes(b"x")
    reader = open(path, "rb")  # noqa: SIM115 - held open on purpose
    try:
        assert open_for_writing([str(path)]) == set()  # a reader is not a writer
        with subprocess.Popen([sys.executable, "-c",
                               "import sys,time; f=open(sys.argv[1],'ab'); print(1, flush=True);"
                               " time.sleep(30)", str(path)], stdout=subprocess.PIPE) as proc:
            try:
                assert proc.stdout is not None and proc.stdout.readline()
                assert open_for_writing([str(path), str(tmp_path / "other")]) == {str(path)}
            finally:
                proc.kill()
        assert open_for_writing([str(path)]) == set()
    finally:
        reader.close()


HOLDER = ("import sys, time\nf = open(sys.argv[1], 'r+b')\nprint(1, flush=True)\n"
          "time.sleep(60)\n")


@pytest.mark.parametrize("zeros", [False, True])
def test_a_writer_that_never_closes_a_finished_file(tmp_path: Path, zeros: bool) -> None:
    """A camera program that keeps its descriptor open after the last write: the file
    is taken once unchanged for the zero-tail time, unless it still ends in zeros
    (then it is a pre-allocated file being filled, and waits while held)."""
    hdu = frame_hdu(4, (100, 720))
    hdu.data = hdu.data.astype("float32")
    if zeros:
        hdu.data[-2:, :] = 0
    path = tmp_path / "held.fits"
    hdu.writeto(path)
    now = [time.time()]
    tracker = SettleTracker(0.5, clock=lambda: now[0], zero_tail=5.0)
    with subprocess.Popen([sys.executable, "-c", HOLDER, str(path)],
                          stdout=subprocess.PIPE) as proc:
        try:
            assert proc.stdout is not None and proc.stdout.readline()
            tracker.touch(str(path))
            now[0] += 1.0
            assert tracker.ready() == [] and tracker.writer_waits == 1
            now[0] += 5.0  # unchanged for longer than the zero-tail time, still held
            assert tracker.ready() == ([] if zeros else [str(path)])
        finally:
            proc.kill()


def test_data_ending_in_zeros_is_held_for_the_zero_tail_time_then_taken(tmp_path: Path) -> None:
    """The documented rule for legitimate zero data: taken late, never lost."""
    hdu = frame_hdu(3, (100, 720))
    hdu.data = hdu.data.astype("float32")  # stored as is (uint16 stores 0 as -32768)
    hdu.data[-2:, :] = 0  # the last 1,440 pixels: more than one block of zeros
    path = tmp_path / "zeros.fits"
    hdu.writeto(path)
    assert ends_in_zero_block(str(path))
    now = [time.time()]
    tracker = SettleTracker(1.0, clock=lambda: now[0], zero_tail=60.0)
    tracker.touch(str(path), closed=True)  # a close event does not shorten the wait
    assert tracker.ready() == []
    assert tracker.next_due() == pytest.approx(60.0)
    now[0] += 59.0
    assert tracker.ready() == []
    now[0] += 1.5
    assert tracker.ready() == [str(path)]
    hdu.data[-1, -1] = 1  # one non-zero pixel in the last block: taken at once
    path.unlink()
    hdu.writeto(path)
    assert not ends_in_zero_block(str(path))
    tracker.touch(str(path), closed=True)
    assert tracker.ready() == [str(path)]


def test_the_zero_tail_time_is_a_setting(tmp_path: Path) -> None:
    (tmp_path / "nightlog.toml").write_text("[watch]\nzero_tail_seconds = 5\n")
    settings = load_settings(tmp_path / "nightlog.toml", env={}, cwd=tmp_path)
    assert WatchOptions.from_settings(settings, [tmp_path]).zero_tail == 5.0
    assert dt.timedelta(seconds=settings.watch.zero_tail_seconds) == dt.timedelta(seconds=5)
