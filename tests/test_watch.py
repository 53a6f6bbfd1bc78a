"""The watch daemon with a real watchdog observer on temporary folders: slow writers,
atomic renames, bursts, restarts with a backlog, ``kill -9`` mid-burst, catalogue
outages and two daemons on one PostgreSQL catalogue. Each test asserts the exact
catalogue afterwards: every file once, with the checksum of its final bytes."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, select
from sqlalchemy.exc import OperationalError

from nightlog.catalogue.engine import create_engine, make_sessionmaker
from nightlog.catalogue.models import Daemon, Frame, Master, Product, QuarantinedFile
from nightlog.catalogue.schema import upgrade
from nightlog.coordinator.context import JobContext
from nightlog.coordinator.ingest import IngestContext, discover, run_ingest
from nightlog.coordinator.kept_masters import kept_masters
from nightlog.coordinator.masters import run_build
from nightlog.coordinator.reduce import run_reduce
from nightlog.daemon.live_work import LiveWork
from nightlog.daemon.watch import Watcher, WatchOptions
from nightlog.settings import Settings, load_settings
from nightlog.store.settle import SettleTracker
from tests.factories import frame_hdu, wait_for, write_frame

REPO = Path(__file__).resolve().parents[1]


# -- helpers ----------------------------------------------------------------------------


def _settings(root: Path, **watch: Any) -> Settings:
    lines = ["[watch]"] + [f"{k} = {str(v).lower() if isinstance(v, bool) else v}"
                           for k, v in watch.items()]
    (root / "nightlog.toml").write_text("\n".join(lines) + "\n")
    return load_settings(root / "nightlog.toml", env={}, cwd=root)


def _frame_bytes(seed: int, shape: tuple[int, int] = (24, 32), **cards: object) -> bytes:
    import io

    buf = io.BytesIO()
    frame_hdu(seed, shape, **cards).writeto(buf)
    return buf.getvalue()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _expected(folder: Path) -> dict[str, str]:
    return {str(p): _sha(p) for p in sorted(folder.rglob("*.fits"))
            if not any(part.startswith(".") for part in p.relative_to(folder).parts)}


def _catalogue(engine: Engine) -> tuple[dict[str, str], int]:
    """Latest frames as {path: sha256}, and the number of frame rows."""
    with make_sessionmaker(engine)() as s:
        rows = list(s.scalars(select(Frame)))
    return {f.path: f.sha256 for f in rows if f.is_latest}, len(rows)


def _quarantine(engine: Engine) -> dict[str, str]:
    with make_sessionmaker(engine)() as s:
        return {q.path: q.reason for q in s.scalars(select(QuarantinedFile))}




@contextmanager
def _daemon(engine: Engine, settings: Settings, folders: list[Path], **options: Any
            ) -> Iterator[Watcher]:
    """A watcher running in a thread; stopped (and joined) on exit."""
    opts = WatchOptions.from_settings(settings, folders, **options)
    watcher = Watcher(engine, IngestContext.from_settings(settings, incomplete_is_error=False),
                      JobContext.from_settings(settings), opts)
    errors: list[BaseException] = []

    def _run() -> None:
        try:
            watcher.run()
        except BaseException as exc:  # reported by the test
            errors.append(exc)

    thread = threading.Thread(target=_run, daemon=True)
    thread.start()
    assert watcher.ready_event.wait(20), "the daemon did not finish its catch-up"
    try:
        yield watcher
        assert thread.is_alive() and not errors, errors
    finally:
        watcher.stop.set()
        thread.join(30)
    assert not thread.is_alive()
    assert not errors, errors


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine(f"sqlite:///{tmp_path / 'nightlog.sqlite'}")
    upgrade(engine)
    yield engine
    engine.dispose()


# -- the settle tracker alone -----------------------------------------------------------


def test_tracker_waits_for_quiet_and_for_the_declared_length(tmp_path: Path) -> None:
    now = [1000.0]
    tracker = SettleTracker(2.0, clock=lambda: now[0])
    full = _frame_bytes(1, (60, 60))
    path = tmp_path / "a.fits"
    path.write_bytes(full[:4000])
    os.utime(path, (now[0], now[0]))
    tracker.touch(str(path))
    assert tracker.ready() == [] and tracker.next_due() == 2.0
    now[0] += 2.5  # quiet for the settle time, but shorter than declared: held
    assert tracker.ready() == [] and tracker.settling == 0 and len(tracker) == 1
    path.write_bytes(full)
    os.utime(path, (now[0], now[0]))
    assert tracker.ready() == []  # changed: a new quiet period starts
    now[0] += 1.0
    assert tracker.ready() == []
    now[0] += 1.0
    assert tracker.ready() == [str(path)] and len(tracker) == 0
    # A closed file that is complete is taken at once; one found by a scan whose
    # modification time is old needs no further wait.
    tracker.touch(str(path), closed=True)
    assert tracker.ready() == [str(path)]
    os.utime(path, (now[0] - 60, now[0] - 60))
    tracker.touch(str(path), from_mtime=True)
    assert tracker.ready() == [str(path)]


# -- a real observer ---------------------------------------------------------------------


def test_slow_writers_are_taken_only_when_complete(sqlite_engine: Engine,
                                                   tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    settings = _settings(tmp_path, settle_seconds=0.3)
    one_open = _frame_bytes(1, (80, 90))   # written through one open file, in pieces
    reopened = _frame_bytes(2, (80, 90))   # appended piece by piece (open, write, close)
    seen_early: list[dict[str, str]] = []
    with _daemon(sqlite_engine, settings, [raw]):
        a, b = raw / "slow.fits", raw / "appended.fits"
        pieces = 6
        step = len(one_open) // pieces + 1
        with open(a, "wb") as fh:
            for i in range(pieces):
                fh.write(one_open[i * step:(i + 1) * step])
                fh.flush()
                with open(b, "ab") as gh:
                    gh.write(reopened[i * step:(i + 1) * step])
                time.sleep(0.5)  # longer than the settle time: stable but incomplete
                seen_early.append(_catalogue(sqlite_engine)[0])
        wait_for(lambda: len(_catalogue(sqlite_engine)[0]) == 2, 10, "both files")
    assert all(not s for s in seen_early[:-1])
    assert _catalogue(sqlite_engine) == (_expected(raw), 2)
    assert _quarantine(sqlite_engine) == {}


def test_a_file_left_truncated_is_quarantined_then_taken_once_complete(
        sqlite_engine: Engine, tmp_path: Path) -> None:
    """A writer that died half-way: the file is recorded with its reason after
    ``incomplete_timeout_seconds`` (not held silently for ever); finished later, it
    is ingested and its quarantine entry resolved."""
    raw = tmp_path / "raw"
    raw.mkdir()
    settings = _settings(tmp_path, settle_seconds=0.2, incomplete_timeout_seconds=1.0)
    whole = _frame_bytes(4, (80, 90))
    cut = len(whole) // 2
    with _daemon(sqlite_engine, settings, [raw]) as watcher:
        (raw / "cut.fits").write_bytes(whole[:cut])
        wait_for(lambda: len(_quarantine(sqlite_engine)) == 1, 10, "the truncated file")
        assert _catalogue(sqlite_engine)[0] == {}
        (reason,) = _quarantine(sqlite_engine).values()
        assert "declare" in reason or "short" in reason, reason
        assert watcher.stats.counts["quarantined"] == 1
        with open(raw / "cut.fits", "ab") as fh:  # the copy resumed and finished
            fh.write(whole[cut:])
        wait_for(lambda: len(_catalogue(sqlite_engine)[0]) == 1, 10, "the whole file")
    with make_sessionmaker(sqlite_engine)() as s:
        (entry,) = s.scalars(select(QuarantinedFile)).all()
        assert entry.resolved_at is not None
    assert _catalogue(sqlite_engine) == (_expected(raw), 1)


def test_renamed_moved_and_bad_files(sqlite_engine: Engine, tmp_path: Path) -> None:
    raw, outside = tmp_path / "raw", tmp_path / "elsewhere"
    (raw / "night" / "deep").mkdir(parents=True)
    outside.mkdir()
    settings = _settings(tmp_path, settle_seconds=0.3)
    with _daemon(sqlite_engine, settings, [raw]) as watcher:
        # Written under a hidden name in the watched folder, then renamed.
        tmp = raw / "night" / ".incoming-a.fits.part"
        tmp.write_bytes(_frame_bytes(1))
        os.rename(tmp, raw / "night" / "a.fits")
        # Written elsewhere, then moved in.
        (outside / "b.fits").write_bytes(_frame_bytes(2))
        os.rename(outside / "b.fits", raw / "night" / "deep" / "b.fits")
        # A folder of frames moved in whole.
        (outside / "batch").mkdir()
        for i in range(3):
            (outside / "batch" / f"c{i}.fits").write_bytes(_frame_bytes(10 + i))
        os.rename(outside / "batch", raw / "batch")
        # Not a FITS file at all: recorded with its reason, and the daemon goes on.
        (raw / "notes.fits").write_text("observing log, not an image\n" * 200)
        (raw / "late.fits").write_bytes(_frame_bytes(3))
        wait_for(lambda: len(_catalogue(sqlite_engine)[0]) == 6
                  and len(_quarantine(sqlite_engine)) == 1, 10, "six frames, one bad file")
        assert watcher.stats.counts["quarantined"] == 1
    expected = _expected(raw)
    del expected[str(raw / "notes.fits")]
    assert _catalogue(sqlite_engine) == (expected, 6)
    (reason,) = _quarantine(sqlite_engine).values()
    assert "SIMPLE" in reason


def test_a_burst_of_500_small_files(sqlite_engine: Engine, tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    blobs = [_frame_bytes(i, (8, 8)) for i in range(500)]
    settings = _settings(tmp_path, settle_seconds=0.3)
    with _daemon(sqlite_engine, settings, [raw]):
        for i, blob in enumerate(blobs):
            (raw / f"burst_{i:03d}.fits").write_bytes(blob)
        wait_for(lambda: len(_catalogue(sqlite_engine)[0]) == 500, 40, "500 frames")
    assert _catalogue(sqlite_engine) == (_expected(raw), 500)
    assert _quarantine(sqlite_engine) == {}


def test_a_burst_of_biases_builds_one_master(sqlite_engine: Engine, tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    settings = _settings(tmp_path, settle_seconds=0.2, build_delay_seconds=1.5)
    # The frames are written beforehand and renamed into the watched folder, as a
    # camera's software lands them: the burst lasts its 20 × 20 ms however slowly a
    # loaded machine writes FITS files.
    staging = tmp_path / "staging"
    staging.mkdir()
    for i in range(20):
        write_frame(staging / f"bias_{i:02d}.fits", seed=i, IMAGETYP="BIAS", EXPTIME=0.0,
                    FILTER=None, **{"DATE-OBS": f"2024-03-10T01:{i:02d}:00"})
    with _daemon(sqlite_engine, settings, [raw]) as watcher:
        for i in range(20):
            os.rename(staging / f"bias_{i:02d}.fits", raw / f"bias_{i:02d}.fits")
            time.sleep(0.02)
        wait_for(lambda: watcher.stats.counts["master built"] == 1, 20, "the master")
        time.sleep(2.0)  # nothing more is built once the burst is over
        assert watcher.stats.counts["master built"] == 1
    with make_sessionmaker(sqlite_engine)() as s:
        masters = list(s.scalars(select(Master)))
    assert [(m.kind, m.version, m.n_frames) for m in masters] == [("bias", 1, 20)]
    assert _catalogue(sqlite_engine) == (_expected(raw), 20)


def test_restart_catches_up_the_backlog_first(sqlite_engine: Engine, tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    settings = _settings(tmp_path, settle_seconds=0.4)
    with _daemon(sqlite_engine, settings, [raw]):
        for i in range(3):
            (raw / f"early_{i}.fits").write_bytes(_frame_bytes(i))
        wait_for(lambda: len(_catalogue(sqlite_engine)[0]) == 3, 10, "three frames")
    # While no daemon runs: new files, one rewritten, one moved into a subfolder.
    for i in range(40):
        (raw / "down" / f"f{i // 10}").mkdir(parents=True, exist_ok=True)
        (raw / "down" / f"f{i // 10}" / f"backlog_{i:02d}.fits").write_bytes(
            _frame_bytes(100 + i))
    (raw / "early_0.fits").write_bytes(_frame_bytes(999))
    os.rename(raw / "early_1.fits", raw / "down" / "early_1.fits")
    with _daemon(sqlite_engine, settings, [raw]) as watcher:
        (raw / "after_start.fits").write_bytes(_frame_bytes(500))
        wait_for(lambda: str(raw / "after_start.fits") in _catalogue(sqlite_engine)[0],
                  10, "the file written after the start")
        counts = dict(watcher.stats.counts)
    assert counts == {"added": 41, "new-version": 1, "moved": 1, "unchanged": 1}
    latest, rows = _catalogue(sqlite_engine)
    assert latest == _expected(raw) and rows == 3 + 40 + 1 + 1
    with make_sessionmaker(sqlite_engine)() as s:
        ids = {f.path: f.id for f in s.scalars(select(Frame))}
    assert max(i for p, i in ids.items() if "backlog_" in p) < ids[str(raw / "after_start.fits")]


class _Outage:
    """Makes every statement of an engine fail as a lost connection while ``down``."""

    def __init__(self, engine: Engine) -> None:
        self.down = False
        self.refused = 0
        event.listen(engine, "before_cursor_execute", self._check)

    def _check(self, *_args: Any) -> None:
        if self.down:
            self.refused += 1
            raise OperationalError("SELECT", {}, ConnectionError("server closed the "
                                                                 "connection unexpectedly"))


def test_an_unreachable_catalogue_is_waited_for(sqlite_engine: Engine, tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    settings = _settings(tmp_path, settle_seconds=0.2, heartbeat_seconds=0.5)
    outage = _Outage(sqlite_engine)
    reader = create_engine(str(sqlite_engine.url))
    with caplog.at_level(logging.INFO, logger="nightlog.watch"), \
            _daemon(sqlite_engine, settings, [raw], backoff_first=0.1, backoff_cap=0.4):
        outage.down = True
        (raw / "during.fits").write_bytes(_frame_bytes(1))
        time.sleep(2.0)
        assert _catalogue(reader)[0] == {}
        outage.down = False
        (raw / "after.fits").write_bytes(_frame_bytes(2))
        wait_for(lambda: len(_catalogue(reader)[0]) == 2, 10, "both frames")
    assert outage.refused >= 4
    retries = [r for r in caplog.records if getattr(r, "event", "") == "db-retry"]
    assert len(retries) >= 3
    assert max(getattr(r, "delay", 0) for r in retries) == 0.4  # capped
    back = [r for r in caplog.records if getattr(r, "event", "") == "db-recovered"]
    assert back and back[0].getMessage().startswith("catalogue reachable again after ")
    assert _catalogue(reader) == (_expected(raw), 2)
    reader.dispose()


def test_a_row_the_catalogue_refuses_is_quarantined_not_retried(
        sqlite_engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A refusal (not an outage) is recorded with its reason once; the daemon does not
    take the file again and again, and the other files go in."""
    raw = tmp_path / "raw"
    raw.mkdir()
    with sqlite_engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TRIGGER refuse_object BEFORE INSERT ON frames "
            "WHEN NEW.object_name = 'REFUSED' "
            "BEGIN SELECT RAISE(ABORT, 'refused by the site rule'); END")
    settings = _settings(tmp_path, settle_seconds=0.2)
    with caplog.at_level(logging.INFO, logger="nightlog.watch"), \
            _daemon(sqlite_engine, settings, [raw], rescan=0.5) as watcher:
        (raw / "a.fits").write_bytes(_frame_bytes(1, OBJECT="M31"))
        (raw / "refused.fits").write_bytes(_frame_bytes(2, OBJECT="REFUSED"))
        (raw / "b.fits").write_bytes(_frame_bytes(3, OBJECT="M33"))
        wait_for(lambda: len(_catalogue(sqlite_engine)[0]) == 2
                  and len(_quarantine(sqlite_engine)) == 1, 10, "two frames, one refused")
        time.sleep(2.0)  # settle periods and rescans: it must not be taken again
        assert watcher.stats.counts["quarantined"] == 1
        assert watcher.stats.counts["failed"] == 0
    reason = _quarantine(sqlite_engine)[str(raw / "refused.fits")]
    assert reason.startswith("the catalogue refused its row: IntegrityError")
    assert not [r for r in caplog.records if r.getMessage().startswith("will retry")]


def test_quicklooks_with_live_masters_then_the_morning_replaces_them(
        sqlite_engine: Engine, lfc_night: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    settings = _settings(tmp_path, settle_seconds=0.2, build_delay_seconds=0.3,
                         quicklook=True)
    reads = kept_masters().reads
    at_quicklook: list[int] = []
    quicklook = LiveWork.quicklook

    def counted(self: LiveWork) -> None:
        at_quicklook.append(kept_masters().reads - reads)
        quicklook(self)

    monkeypatch.setattr(LiveWork, "quicklook", counted)
    with _daemon(sqlite_engine, settings, [raw]) as watcher:
        shutil.copytree(lfc_night, raw / "night1")
        wait_for(lambda: watcher.stats.counts["quicklook reduced"] == 3, 60, "3 quick-looks")
    with make_sessionmaker(sqlite_engine)() as s:
        science = list(s.scalars(select(Frame).where(Frame.kind == "science")))
        products = list(s.scalars(select(Product)))
        masters = list(s.scalars(select(Master)))
    assert len(science) == 3 and len(products) == 3
    assert {p.frame_id for p in products} == {f.id for f in science}
    assert all(p.kind == "quicklook" and p.parameters["live"] is True for p in products)
    assert {m.kind for m in masters} == {"bias", "dark", "flat"}
    assert all(m.version == 1 for m in masters)
    # Each master read once, ahead, by the daemon that built it: no quick-look read one.
    assert at_quicklook == [len(masters)] * 3
    assert kept_masters().reads - reads == len(masters)
    assert _catalogue(sqlite_engine) == (_expected(raw), len(_expected(raw)))
    # The morning run replaces each quick-look with a final product.
    outcomes = run_reduce(sqlite_engine, JobContext.from_settings(settings),
                          [f.id for f in science], kind="final")
    assert {o.status for o in outcomes} == {"reduced"}
    with make_sessionmaker(sqlite_engine)() as s:
        status = {(p.kind, p.status) for p in s.scalars(select(Product))}
    assert status == {("quicklook", "replaced"), ("final", "current")}


# -- the daemon as a process -------------------------------------------------------------


def _spawn(root: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("NIGHTLOG_DATABASE_URL", None)
    with open(log, "ab") as err:  # the child keeps its own descriptor
        return subprocess.Popen([sys.executable, "-m", "nightlog", "--config",
                                 str(root / "nightlog.toml"), "watch", "--log-format", "json"],
                                cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=err)


def _wait_started(log: Path, starts: int) -> None:
    wait_for(lambda: log.exists() and log.read_text().count('"catch-up"') >= starts, 30,
              "the daemon to start")


def _writer(folder: Path, blobs: list[bytes]) -> threading.Thread:
    def _write() -> None:
        for i, blob in enumerate(blobs):
            (folder / f"frame_{i:03d}.fits").write_bytes(blob)
            time.sleep(0.008)

    thread = threading.Thread(target=_write)
    thread.start()
    return thread


@pytest.mark.parametrize("kill_after", [0.2, 0.7, 1.2])
def test_kill_9_mid_burst_loses_and_duplicates_nothing(tmp_path: Path,
                                                       kill_after: float) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    _settings(tmp_path, directories='["raw"]', settle_seconds=0.2, heartbeat_seconds=0.5)
    log = tmp_path / "watch.log"
    blobs = [_frame_bytes(1000 + i, (16, 16)) for i in range(200)]
    daemon = _spawn(tmp_path, log)
    _wait_started(log, 1)
    writer = _writer(raw, blobs)
    time.sleep(kill_after)
    assert writer.is_alive()  # mid-burst
    daemon.kill()
    assert daemon.wait(10) == -signal.SIGKILL
    writer.join()
    engine = create_engine(f"sqlite:///{tmp_path / 'nightlog.sqlite'}")
    daemon = _spawn(tmp_path, log)
    try:
        _wait_started(log, 2)
        wait_for(lambda: len(_catalogue(engine)[0]) == 200, 30, "every frame")
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(20) == 0
    assert _catalogue(engine) == (_expected(raw), 200)
    assert _quarantine(engine) == {}
    with make_sessionmaker(engine)() as s:
        runs = list(s.scalars(select(Daemon).order_by(Daemon.id)))
    assert [r.stopped_at is None for r in runs] == [True, False]  # killed, then stopped
    engine.dispose()


def test_sigterm_finishes_the_chunk_and_exits_0(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    _settings(tmp_path, directories='["raw"]', settle_seconds=0.2)
    log = tmp_path / "watch.log"
    daemon = _spawn(tmp_path, log)
    _wait_started(log, 1)
    writer = _writer(raw, [_frame_bytes(i, (16, 16)) for i in range(100)])
    time.sleep(0.4)
    daemon.send_signal(signal.SIGINT)
    assert daemon.wait(20) == 0
    writer.join()
    engine = create_engine(f"sqlite:///{tmp_path / 'nightlog.sqlite'}")
    latest, rows = _catalogue(engine)
    assert rows == len(latest) and set(latest) <= set(_expected(raw))
    assert all(_expected(raw)[p] == sha for p, sha in latest.items())
    with make_sessionmaker(engine)() as s:
        (run,) = s.scalars(select(Daemon))
    assert run.stopped_at is not None and run.counts.get("added", 0) == len(latest)
    engine.dispose()


# -- two daemons, one PostgreSQL catalogue ---------------------------------------------------


@pytest.mark.postgres
def test_two_daemons_share_one_postgres_catalogue(pg_schema_url: str, lfc_night: Path,
                                                  tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    settings = _settings(tmp_path, settle_seconds=0.2, build_delay_seconds=0.3)
    engines = [create_engine(pg_schema_url), create_engine(pg_schema_url)]
    upgrade(engines[0])
    with _daemon(engines[0], settings, [raw]) as one, \
            _daemon(engines[1], settings, [raw]) as two:
        shutil.copytree(lfc_night, raw / "night1")
        expected = _expected(raw)
        wait_for(lambda: len(_catalogue(engines[0])[0]) == len(expected), 30, "all frames")
        wait_for(lambda: not one.live.build_armed and not two.live.build_armed
                  and one.tracker.settling == 0 and two.tracker.settling == 0, 60,
                  "both daemons to finish building")
        built = one.stats.counts["master built"] + two.stats.counts["master built"]
    assert _catalogue(engines[0]) == (expected, len(expected))
    with make_sessionmaker(engines[0])() as s:
        masters = list(s.scalars(select(Master)))
        groups = {(m.group_key, m.night) for m in masters}
    assert len(masters) == len(groups) == built  # one master per group, none twice
    assert all(m.version == 1 and Path(m.path).is_file() for m in masters)
    # The same masters as one batch job over the same files builds, one by one.
    reference = create_engine(f"sqlite:///{tmp_path / 'reference.sqlite'}")
    upgrade(reference)
    run_ingest(reference, discover([raw], settings.ingest.patterns),
               IngestContext.from_settings(settings))
    ref_settings = load_settings(env={}, cwd=tmp_path / "ref")
    run_build(reference, JobContext.from_settings(ref_settings))
    with make_sessionmaker(reference)() as s:
        expected_masters = {(m.kind, m.group_key, m.night, m.n_frames)
                            for m in s.scalars(select(Master))}
    assert {(m.kind, m.group_key, m.night, m.n_frames) for m in masters} == expected_masters
    assert {m.kind for m in masters} == {"bias", "dark", "flat"}
    reference.dispose()
    for engine in engines:
        engine.dispose()


def test_a_build_interrupted_before_its_commit_is_redone(sqlite_engine: Engine,
                                                         tmp_path: Path) -> None:
    from nightlog.coordinator.masters import find_due
    from nightlog.daemon.live_builds import build_due, build_lock

    raw = tmp_path / "raw"
    for i in range(5):
        write_frame(raw / f"bias_{i}.fits", seed=i, IMAGETYP="BIAS", EXPTIME=0.0, FILTER=None,
                    **{"DATE-OBS": f"2024-03-10T01:0{i}:00"})
    settings = _settings(tmp_path)
    run_ingest(sqlite_engine, discover([raw], settings.ingest.patterns),
               IngestContext.from_settings(settings))
    ctx = JobContext.from_settings(settings)
    with make_sessionmaker(sqlite_engine)() as s:
        first = s.scalars(select(Frame).order_by(Frame.obs_time)).first()
        assert first is not None
        (due,) = find_due(s, ctx)
        path = ctx.layout.master_path(instrument=first.instrument, kind="bias",
                                      night=due.night, group_key=due.group.key, version=1)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"left by a build killed before its commit")
    lock = tmp_path / "build.lock"
    with build_lock(sqlite_engine, lock) as got:
        assert got
        assert build_due(sqlite_engine, ctx, lock) is None  # another holder: left to it
    (outcome,) = build_due(sqlite_engine, ctx, lock) or []
    assert outcome.status == "built" and outcome.version == 1
    with make_sessionmaker(sqlite_engine)() as s:
        (master,) = s.scalars(select(Master))
    assert master.path == str(path) and _sha(path) == master.sha256


@pytest.mark.parametrize(("table", "fragment"), [
    ("settle_seconds = -1", "settle_seconds"),
    ("quicklook = 1", "quicklook"),
    ("build_delay_seconds = 30\nbuild_max_delay_seconds = 10", "build_max_delay_seconds"),
    ("settle = 2", "unknown key"),
])
def test_watch_settings_are_checked(tmp_path: Path, table: str, fragment: str) -> None:
    from nightlog.errors import ConfigurationError

    (tmp_path / "nightlog.toml").write_text(f"[watch]\n{table}\n")
    with pytest.raises(ConfigurationError, match=fragment):
        load_settings(tmp_path / "nightlog.toml", env={}, cwd=tmp_path)
    settings = _settings(tmp_path, settle_seconds=0.5, quicklook=True, polling=True)
    w = settings.watch
    assert (w.settle_seconds, w.quicklook, w.polling, w.build_delay_seconds) == (
        0.5, True, True, 5.0)


def test_files_no_event_announced_are_found_by_the_rescan(sqlite_engine: Engine,
                                                          tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "before.fits").write_bytes(_frame_bytes(1))
    settings = _settings(tmp_path, settle_seconds=0.2)
    with _daemon(sqlite_engine, settings, [raw], rescan=0.5) as watcher:
        assert watcher._events is not None
        watcher._events.stop()  # as if the kernel's event queue had overflowed
        (raw / "unannounced.fits").write_bytes(_frame_bytes(2))
        wait_for(lambda: len(_catalogue(sqlite_engine)[0]) == 2, 10, "the rescan")
        time.sleep(1.2)  # later rescans take nothing twice
        assert watcher.stats.counts == {"added": 2}
    assert _catalogue(sqlite_engine) == (_expected(raw), 2)


def test_the_morning_reduction_runs_from_the_daemon(sqlite_engine: Engine, tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    import datetime as dt

    from nightlog.daemon.live_builds import build_lock

    now = dt.datetime.now(dt.UTC)
    night = now.date() - dt.timedelta(days=1)  # the night that ended (UTC: no site set)
    raw = tmp_path / "raw"
    for i in range(2):
        write_frame(raw / f"sci{i}.fits", seed=i, **{"DATE-OBS": f"{night}T23:0{i}:00"})
    write_frame(raw / "older.fits", seed=9, **{"DATE-OBS": f"{night - dt.timedelta(3)}T23:00:00"})
    at = (now - dt.timedelta(minutes=2)).strftime("%H:%M")
    (tmp_path / "nightlog.toml").write_text(
        '[watch]\nsettle_seconds = 0.2\nbuild_delay_seconds = 0.5\n'
        f'[reduction]\nmorning_at = "{at}"\nworkers = 1\n'
        '[calibration.on_missing]\nbias = "skip"\ndark = "skip"\nflat = "skip"\n')
    settings = load_settings(tmp_path / "nightlog.toml", env={}, cwd=tmp_path)
    with _daemon(sqlite_engine, settings, [raw]) as watcher, \
            caplog.at_level(logging.INFO, logger="nightlog.watch"):
        with build_lock(sqlite_engine, watcher._lock_file) as got:  # another daemon's turn
            assert got
            wait_for(lambda: any(getattr(r, "event", "") == "morning-busy"
                                  for r in caplog.records), 10, "the daemon to wait its turn")
            assert watcher.stats.counts == {"added": 3}
        wait_for(lambda: "morning" in watcher.stats.last_action, 30, "the morning run")
        time.sleep(0.5)  # once a morning: not again
        counts = dict(watcher.stats.counts)
        assert watcher._next_morning is not None and watcher._next_morning > now
    assert counts == {"added": 3, "morning reduced": 2}
    with make_sessionmaker(sqlite_engine)() as s:
        products = list(s.scalars(select(Product)))
        frames = {f.id: f for f in s.scalars(select(Frame))}
    assert sorted(Path(frames[p.frame_id].path).name for p in products) == ["sci0.fits",
                                                                             "sci1.fits"]
    assert {(p.kind, p.status) for p in products} == {("final", "current")}
