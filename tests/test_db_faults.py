"""The catalogue lost mid-run: a SQLite file locked by another process, PostgreSQL
connections terminated by the server. Masters and reductions wait with bounded
retries and backoff, then finish, with no duplicated or half-written rows; a lock
held for too long stops the run after one round of retries with a clear error, and
the next run finishes."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select, text

from nightlog.catalogue.engine import create_engine, make_sessionmaker, sqlite_path
from nightlog.catalogue.models import (
    Frame,
    Master,
    MasterInput,
    Product,
    ProductMaster,
    ReduceFailure,
)
from nightlog.coordinator.context import JobContext
from nightlog.coordinator.masters import run_build
from nightlog.coordinator.reduce import (
    ReduceOutcome,
    ReduceStopped,
    run_reduce,
    science_frames,
)
from nightlog.coordinator.retry import Backoff, CatalogueUnreachable
from nightlog.errors import CatalogueError

FAST = Backoff(attempts=6, first=0.2, cap=1.0)  # about 3.4 s of waiting in all


def _science(engine: Engine) -> list[int]:
    with make_sessionmaker(engine)() as s:
        return science_frames(s)


def _retries(caplog: pytest.LogCaptureFixture) -> int:
    return sum(getattr(r, "event", "") == "db-retry" for r in caplog.records)


def _consistent(engine: Engine, root: Path) -> None:
    """One current product per frame, each with its masters; masters with their inputs;
    every file in the archive named by exactly one row."""
    with make_sessionmaker(engine)() as s:
        products = s.scalars(select(Product)).all()
        current = [p.frame_id for p in products if p.status == "current"]
        assert len(current) == len(set(current))
        for p in products:
            links = s.scalar(select(func.count()).select_from(ProductMaster)
                             .where(ProductMaster.product_id == p.id))
            assert links == 3, p.path  # bias, dark, flat: never half a record
        masters = s.scalars(select(Master)).all()
        versions = [(m.group_key, m.night, m.version) for m in masters]
        assert len(versions) == len(set(versions))
        for m in masters:
            n = s.scalar(select(func.count()).select_from(MasterInput)
                         .where(MasterInput.master_id == m.id))
            assert n and n >= m.n_frames
        paths = sorted([Path(p.path) for p in products] + [Path(m.path) for m in masters])
    on_disk = sorted(p for folder in ("masters", "products")
                     for p in (root / folder).rglob("*") if p.is_file())
    assert on_disk == paths


@pytest.fixture
def impatient(archive: tuple[Engine, JobContext]) -> Iterator[tuple[Engine, JobContext]]:
    """The archive through an engine whose SQLite statements give up on a lock after
    50 ms (so the retries, not the busy timeout, do the waiting), and fast backoff."""
    engine, ctx = archive
    path = sqlite_path(engine.url.render_as_string(hide_password=False))
    assert path is not None
    quick = create_engine(f"sqlite:///{path}", busy_timeout_ms=50)
    try:
        yield quick, dataclasses.replace(ctx, db_backoff=FAST)
    finally:
        quick.dispose()


class _Locker:
    """Another process's view of the SQLite file: ``BEGIN EXCLUSIVE``, held until
    released (at the end, or once nightlog has retried against it)."""

    def __init__(self, engine: Engine) -> None:
        path = sqlite_path(engine.url.render_as_string(hide_password=False))
        self.conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self.held = False
        self._lock = threading.Lock()
        self._handler: logging.Handler | None = None

    def hold(self, *, until_retried: bool = False) -> None:
        """Take the lock; with ``until_retried``, release it once nightlog logs a
        retry against it (however long the machine takes to get there), or after a
        minute at the latest, so a test never waits on a clock."""
        self.conn.execute("BEGIN EXCLUSIVE")
        self.held = True
        if until_retried:
            locker = self

            class _OnRetry(logging.Handler):
                def emit(self, record: logging.LogRecord) -> None:
                    if getattr(record, "event", "") == "db-retry":
                        threading.Timer(0.1, locker.release).start()

            self._handler = _OnRetry(logging.WARNING)
            logging.getLogger("nightlog").addHandler(self._handler)
            threading.Timer(60.0, self.release).start()

    def release(self) -> None:
        with self._lock:
            if self.held:
                self.held = False
                self.conn.execute("COMMIT")
            if self._handler is not None:
                logging.getLogger("nightlog").removeHandler(self._handler)
                self._handler = None

    def close(self) -> None:
        self.release()
        self.conn.close()


sqlite_only = pytest.mark.parametrize("catalogue_url", ["sqlite"], indirect=True)


@sqlite_only
def test_sqlite_locked_while_building(impatient: tuple[Engine, JobContext],
                                      caplog: pytest.LogCaptureFixture) -> None:
    engine, ctx = impatient
    locker = _Locker(engine)
    caplog.set_level(logging.WARNING, logger="nightlog")
    try:
        locker.hold(until_retried=True)
        built = run_build(engine, ctx)
    finally:
        locker.close()
    assert sorted(o.kind for o in built if o.status == "built") == ["bias", "dark", "flat",
                                                                    "flat"]
    assert _retries(caplog) >= 1
    _consistent(engine, ctx.layout.root)


@sqlite_only
def test_sqlite_locked_while_recording_products(impatient: tuple[Engine, JobContext],
                                                caplog: pytest.LogCaptureFixture) -> None:
    engine, ctx = impatient
    assert all(o.status == "built" for o in run_build(engine, ctx))
    ids = _science(engine)
    locker = _Locker(engine)
    caplog.set_level(logging.WARNING, logger="nightlog")

    def lock_after_first(outcome: ReduceOutcome) -> None:
        if not locker.held and outcome.frame_id == ids[0]:
            locker.hold(until_retried=True)

    try:
        outcomes = run_reduce(engine, ctx, ids, workers=1, progress=lock_after_first)
    finally:
        locker.close()
    assert [o.status for o in outcomes] == ["reduced"] * len(ids)
    assert _retries(caplog) >= 1
    _consistent(engine, ctx.layout.root)


@sqlite_only
@pytest.mark.parametrize("workers", [1, 2])
def test_sqlite_locked_too_long_stops_the_run_with_a_clear_error(
        impatient: tuple[Engine, JobContext], workers: int) -> None:
    """One round of retries, then the run stops (not a round per frame): nothing is
    recorded, no product is left on disk, and the same run finishes the night later."""
    engine, base = impatient
    ctx = dataclasses.replace(base, db_backoff=Backoff(attempts=3, first=0.1, cap=0.2))
    assert all(o.status == "built" for o in run_build(engine, ctx))
    ids = _science(engine)
    assert len(ids) >= 3
    locker = _Locker(engine)
    planned: list[int] = []

    def lock_after_first(outcome: ReduceOutcome) -> None:
        planned.append(outcome.frame_id)
        if not locker.held:
            locker.hold()

    try:
        with pytest.raises(ReduceStopped) as stopped:
            run_reduce(engine, ctx, ids, workers=workers, retries=0, progress=lock_after_first)
    finally:
        locker.close()
    message = str(stopped.value)
    assert "unreachable after 3 attempt(s)" in message
    assert "database is locked" in message
    assert "run the same command again" in message
    assert isinstance(stopped.value, CatalogueUnreachable)
    assert [o.status for o in stopped.value.outcomes] == ["reduced"]
    assert stopped.value.unfinished == len(ids) - 1
    _consistent(engine, ctx.layout.root)  # what was made and not recorded is deleted

    again = run_reduce(engine, ctx, ids, workers=1)
    assert sorted(o.status for o in again) == ["reduced"] * (len(ids) - 1) + ["up-to-date"]
    _consistent(engine, ctx.layout.root)


@sqlite_only
def test_reduce_command_stops_on_a_locked_catalogue_with_one_line(
        impatient: tuple[Engine, JobContext], tmp_path: Path) -> None:
    """The command prints what it did, one error line, and exits with the catalogue's
    code; it gives up after one round of retries, not one per frame."""
    engine, _ = impatient
    path = sqlite_path(engine.url.render_as_string(hide_password=False))
    assert path is not None
    assert all(o.status == "built" for o in run_build(*impatient))
    locker = _Locker(engine)
    (tmp_path / "nightlog.toml").write_text(
        f'[archive]\nroot = "{impatient[1].layout.root}"\n'
        f'[database]\nurl = "sqlite:///{path}"\nbusy_timeout_seconds = 0.05\nretries = 3\n',
        encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "NIGHTLOG_DATABASE_URL"}
    try:
        locker.hold()
        start = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "nightlog", "reduce", "--workers", "1", "--no-build",
             *[str(i) for i in _science(engine)]],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False)
        took = time.monotonic() - start
    finally:
        locker.close()
    assert done.returncode == CatalogueError.exit_code, done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    assert "database is locked" in errors[0] and "not reduced" in errors[0]
    assert "Traceback" not in done.stderr
    assert "unreachable after 3 attempt(s)" in errors[0]
    assert took < 60, f"{took:.0f} s: a round of retries per frame?"


def _terminate_on(engine: Engine, admin: Engine, table: str, times: int) -> list[int]:
    """Have the server terminate the session that inserts into ``table``, as it does
    so, ``times`` times (as a restart would, mid-transaction)."""
    killed: list[int] = []

    def before(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if len(killed) < times and statement.lstrip().upper().startswith(
                f"INSERT INTO {table.upper()} "):
            pid = conn.connection.dbapi_connection.info.backend_pid
            with admin.begin() as a:
                a.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            killed.append(pid)

    event.listen(engine, "before_cursor_execute", before)
    return killed


@pytest.mark.postgres
@pytest.mark.parametrize("catalogue_url", ["postgres"], indirect=True)
def test_postgres_sessions_terminated_mid_run(archive: tuple[Engine, JobContext],
                                              caplog: pytest.LogCaptureFixture) -> None:
    engine, base = archive
    ctx = dataclasses.replace(base, db_backoff=FAST)
    admin = create_engine(str(engine.url.render_as_string(hide_password=False)))
    caplog.set_level(logging.WARNING, logger="nightlog")
    try:
        killed = _terminate_on(engine, admin, "masters", times=2)
        built = run_build(engine, ctx)
        assert len(killed) == 2
        assert sorted(o.kind for o in built if o.status == "built") == ["bias", "dark",
                                                                        "flat", "flat"]
        killed = _terminate_on(engine, admin, "products", times=2)
        ids = _science(engine)
        outcomes = run_reduce(engine, ctx, ids, workers=1)
        assert len(killed) == 2
        assert [o.status for o in outcomes] == ["reduced"] * len(ids)
    finally:
        admin.dispose()
    assert _retries(caplog) >= 4
    _consistent(engine, ctx.layout.root)
    with make_sessionmaker(engine)() as s:
        assert s.scalar(select(func.count()).select_from(ReduceFailure)) == 0


def _reduce_process(cwd: Path, night: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NIGHTLOG_")}
    return subprocess.Popen([sys.executable, "-m", "nightlog", "reduce", "--night", night,
                             "--workers", "1", "--no-build"], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


@pytest.mark.postgres
@pytest.mark.parametrize("catalogue_url", ["postgres"], indirect=True)
def test_two_reduce_runs_of_one_night(archive: tuple[Engine, JobContext],
                                      tmp_path: Path) -> None:
    """Two ``nightlog reduce`` of the same night started together on one PostgreSQL
    catalogue: each frame is reduced once, no product is recorded or left on disk
    twice."""
    engine, ctx = archive
    assert all(o.status == "built" for o in run_build(engine, ctx))
    ids = _science(engine)
    url = engine.url.render_as_string(hide_password=False)
    (tmp_path / "nightlog.toml").write_text(
        f'[archive]\nroot = "."\n\n[database]\nurl = "{url}"\n')
    with make_sessionmaker(engine)() as s:
        night = str(s.scalar(select(func.max(Frame.night))))
    first, second = _reduce_process(tmp_path, night), _reduce_process(tmp_path, night)
    outputs = [p.communicate(timeout=240)[0] for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], outputs
    with make_sessionmaker(engine)() as s:
        products = s.scalars(select(Product)).all()
        assert sorted(p.frame_id for p in products) == sorted(ids), outputs
        assert all(p.status == "current" for p in products)
        keys = [(p.frame_id, p.inputs_key) for p in products]
        assert len(keys) == len(set(keys))
        assert s.scalar(select(func.count()).select_from(ReduceFailure)) == 0
    _consistent(engine, ctx.layout.root)  # no orphan product file
    # The work was shared, not done twice: the frames reduced by the two runs add up
    # to the night (a frame met while the other run held it was put off, then found
    # up to date).
    reduced = [int(m) for out in outputs
               for m in re.findall(r"│\s*reduced\s*│\s*(\d+)", out)]
    assert sum(reduced) == len(ids), outputs


@pytest.mark.parametrize("catalogue_url", ["sqlite"], indirect=True)
def test_product_written_meanwhile_by_another_run(archive: tuple[Engine, JobContext]) -> None:
    """The race of two runs, in one process: another run writes and records the
    frame's product between this run's plan and its write. This run writes beside
    it (never over it), finds the product recorded and deletes its own file."""
    from nightlog.coordinator.reduce_job import reduce_job

    engine, ctx = archive
    assert all(o.status == "built" for o in run_build(engine, ctx))
    ids = _science(engine)
    beside: list[tuple[str, str]] = []

    def other_run_first(job: Any) -> Any:
        if job.frame_id == ids[0] and not beside:
            assert run_reduce(engine, ctx, [job.frame_id], workers=1)[0].status == "reduced"
            assert Path(job.target).exists()
            made = reduce_job(job)
            beside.append((job.target, made.path))
            return made
        return reduce_job(job)

    outcomes = run_reduce(engine, ctx, ids, workers=1, work=other_run_first)
    assert [o.status for o in outcomes] == ["up-to-date"] + ["reduced"] * (len(ids) - 1)
    (target, written), = beside
    assert written != target and not Path(written).exists() and Path(target).exists()
    with make_sessionmaker(engine)() as s:
        assert s.scalars(select(Product.path).where(Product.frame_id == ids[0])).all() == [
            target]
    _consistent(engine, ctx.layout.root)


@pytest.mark.postgres
@pytest.mark.parametrize("catalogue_url", ["postgres"], indirect=True)
def test_a_frame_another_run_is_reducing_is_put_off(archive: tuple[Engine, JobContext]
                                                    ) -> None:
    """One run is slow on a frame; a second run of the night started meanwhile leaves
    that frame to it (never reduces it itself), reduces the others, and finds it up
    to date once the first run has recorded it."""
    from nightlog.coordinator.reduce_job import reduce_job

    engine, ctx = archive
    assert all(o.status == "built" for o in run_build(engine, ctx))
    ids = _science(engine)
    started = threading.Event()

    def slow(job: Any) -> Any:
        started.set()
        time.sleep(2.0)
        return reduce_job(job)

    first: list[ReduceOutcome] = []
    other = threading.Thread(target=lambda: first.extend(
        run_reduce(engine, ctx, [ids[0]], workers=1, work=slow)))
    other.start()
    assert started.wait(30)
    worked_on: list[int] = []

    def counted(job: Any) -> Any:
        worked_on.append(job.frame_id)
        return reduce_job(job)

    outcomes = run_reduce(engine, ctx, ids, workers=1, work=counted)
    other.join(30)
    assert [o.status for o in first] == ["reduced"]
    assert sorted(worked_on) == sorted(ids[1:])  # the frame held by the other run: not
    by_id = {o.frame_id: o for o in outcomes}
    assert by_id[ids[0]].status == "up-to-date"
    assert by_id[ids[0]].product_id == first[0].product_id
    assert [by_id[i].status for i in ids[1:]] == ["reduced"] * (len(ids) - 1)
    _consistent(engine, ctx.layout.root)


def test_the_catalogue_refuses_a_second_current_product(archive: tuple[Engine, JobContext]
                                                        ) -> None:
    """Whatever records products, a frame never has two current ones (unique partial
    index, migration 0005); replaced ones are kept as many as there are."""
    import datetime as dt

    from sqlalchemy.exc import IntegrityError

    engine, ctx = archive
    assert all(o.status == "built" for o in run_build(engine, ctx))
    ids = _science(engine)[:1]
    run_reduce(engine, ctx, ids, workers=1)
    run_reduce(engine, ctx, ids, workers=1, force=True)  # the first one is now replaced

    def copy(p: Product, status: str) -> Product:
        return Product(frame_id=p.frame_id, kind=p.kind, status=status,
                       path=p.path + f".{status}", sha256=p.sha256, size=p.size,
                       raw_sha256=p.raw_sha256, inputs_key=p.inputs_key,
                       parameters=p.parameters, missing_steps=[], stats={},
                       created_at=dt.datetime.now(dt.UTC),
                       software_version=p.software_version)

    make = make_sessionmaker(engine)
    with make() as s:
        products = s.scalars(select(Product).order_by(Product.id)).all()
        assert [p.status for p in products] == ["replaced", "current"]
        s.add(copy(products[1], "replaced"))
        s.commit()
    with make() as s, pytest.raises(IntegrityError):
        s.add(copy(products[1], "current"))
        s.commit()


def _refuse_object(engine: Engine, name: str) -> None:
    """A rule of the site's own in the database: no frame row with OBJECT ``name``."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse_object BEFORE INSERT ON frames "
                f"WHEN NEW.object_name = '{name}' "
                "BEGIN SELECT RAISE(ABORT, 'refused by the site rule'); END")
        else:
            conn.exec_driver_sql("ALTER TABLE frames ADD CONSTRAINT refuse_object "
                                 f"CHECK (object_name IS DISTINCT FROM '{name}')")


def test_a_row_the_catalogue_refuses_is_quarantined_with_the_reason(
        catalogue_engine: Engine, tmp_path: Path) -> None:
    """Not an outage: the file is recorded with why, the others go in, and it is not
    reported as worth retrying."""
    from nightlog.catalogue.models import QuarantinedFile
    from nightlog.coordinator.ingest import IngestContext, IngestResult, run_ingest
    from nightlog.settings import load_settings
    from tests.factories import write_frame

    _refuse_object(catalogue_engine, "REFUSED")
    paths = [write_frame(tmp_path / f"f{i}.fits", seed=i, OBJECT=name)
             for i, name in enumerate(["M31", "REFUSED", "M33"])]
    results: list[IngestResult] = []
    ctx = IngestContext.from_settings(load_settings(env={}, cwd=tmp_path))
    summary = run_ingest(catalogue_engine, paths, ctx, progress=results.append)
    assert dict(summary.counts) == {"added": 2, "quarantined": 1}
    (refused,) = [r for r in results if r.outcome == "quarantined"]
    assert refused.path == str(paths[1]) and not refused.transient
    assert refused.reason is not None
    assert refused.reason.startswith("the catalogue refused its row: IntegrityError")
    with make_sessionmaker(catalogue_engine)() as s:
        (row,) = s.scalars(select(QuarantinedFile)).all()
        assert (row.path, row.reason, row.error) == (str(paths[1]), refused.reason,
                                                     "IntegrityError")
        assert s.scalar(select(func.count()).select_from(Frame)) == 2


def test_a_product_whose_file_is_gone_is_made_again(archive: tuple[Engine, JobContext]) -> None:
    """A current product row naming a missing file (deleted by hand, or a commit
    whose answer was lost after the run gave the file up) is not "up to date"."""
    engine, ctx = archive
    assert all(o.status == "built" for o in run_build(engine, ctx))
    ids = _science(engine)
    first = run_reduce(engine, ctx, ids)
    assert [o.status for o in first] == ["reduced"] * len(ids)
    with make_sessionmaker(engine)() as s:
        gone = s.get(Product, first[0].product_id)
        assert gone is not None
        Path(gone.path).unlink()
    again = run_reduce(engine, ctx, ids)
    assert [o.status for o in again] == ["reduced"] + ["up-to-date"] * (len(ids) - 1)
    with make_sessionmaker(engine)() as s:
        old = s.get(Product, first[0].product_id)
        assert old is not None and old.status == "replaced"
        assert old.replaced_by_id == again[0].product_id
        new = s.get(Product, again[0].product_id)
        assert new is not None and Path(new.path).exists()


class _PrivateServer:
    """A PostgreSQL server of this test's own (initdb in a temporary folder, a Unix
    socket there, no TCP), so that it can really be stopped and started again
    without touching the server other tests share."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        self.dir = Path(tempfile.mkdtemp(prefix="nightlog-pg-"))
        self.dir.chmod(0o777)  # the server runs as 'postgres' when this runs as root
        self.as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self._run("initdb", "-D", str(self.dir / "data"), "-A", "trust", "-U", "postgres",
                  "-E", "UTF8", "--no-sync")
        self.url = f"postgresql://postgres@/postgres?host={self.dir}&port=54329"

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run([*self.as_owner, str(self.bin / tool), *args], check=True,
                       capture_output=True, timeout=120)

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-l", str(self.dir / "log"), "-w",
                  "-o", f"-p 54329 -k {self.dir} -c listen_addresses='' -c fsync=off",
                  "start")

    def stop(self) -> None:
        """A fast shutdown: every session is terminated, as in a restart."""
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop")

    def close(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def private_server() -> Iterator[_PrivateServer]:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    pg_ctl = Path(found[-1]) if found else Path(shutil.which("pg_ctl") or "/nonexistent")
    if not pg_ctl.exists() or (os.geteuid() == 0 and shutil.which("runuser") is None):
        if os.environ.get("NIGHTLOG_REQUIRE_POSTGRES") == "1":
            pytest.fail("PostgreSQL's server programs (initdb, pg_ctl) are needed in CI")
        pytest.skip("PostgreSQL's server programs (initdb, pg_ctl) are not installed")
    server = _PrivateServer(pg_ctl.parent)
    try:
        server.start()
        yield server
    finally:
        server.close()


def test_a_real_postgres_restart_mid_reduction(private_server: _PrivateServer,
                                               lfc_night: Path, tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    """The server stopped (fast shutdown) after the first frame and started again 2 s
    later: the run rides it out and records every frame once. Stopped for longer than
    the retries: the run stops with a clear error and the next one finishes."""
    from nightlog.catalogue.schema import upgrade
    from nightlog.coordinator.ingest import IngestContext, discover, run_ingest
    from nightlog.settings import load_settings

    engine = create_engine(private_server.url)
    try:
        upgrade(engine)
        raw = tmp_path / "raw"
        shutil.copytree(lfc_night, raw)
        settings = load_settings(env={}, cwd=tmp_path)
        run_ingest(engine, discover([raw], settings.ingest.patterns),
                   IngestContext.from_settings(settings))
        ctx = dataclasses.replace(JobContext.from_settings(settings),
                                  db_backoff=Backoff(attempts=10, first=0.3, cap=2.0))
        assert all(o.status == "built" for o in run_build(engine, ctx))
        ids = _science(engine)
        restarts: list[threading.Thread] = []
        retried = threading.Event()

        class _OnRetry(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                if getattr(record, "event", "") == "db-retry":
                    retried.set()

        def start_after_a_retry() -> None:
            # Back once the run has met the stopped server (at most 20 s: a run that
            # never retried then fails the assertion below), not after a fixed delay
            # that a slow frame on a loaded machine outlasts.
            retried.wait(20.0)
            time.sleep(1.0)
            private_server.start()

        def restart_after_first(outcome: ReduceOutcome) -> None:
            if not restarts:
                private_server.stop()
                restarts.append(threading.Thread(target=start_after_a_retry))
                restarts[0].start()

        caplog.set_level(logging.WARNING, logger="nightlog")
        on_retry = _OnRetry(level=logging.WARNING)
        logging.getLogger("nightlog").addHandler(on_retry)
        try:
            outcomes = run_reduce(engine, ctx, ids, workers=1, progress=restart_after_first)
        finally:
            logging.getLogger("nightlog").removeHandler(on_retry)
        restarts[0].join()
        assert [o.status for o in outcomes] == ["reduced"] * len(ids)
        assert _retries(caplog) >= 1
        _consistent(engine, ctx.layout.root)

        # Down for longer than the retries: stopped, then finished by the next run.
        impatient = dataclasses.replace(ctx, db_backoff=Backoff(attempts=3, first=0.2,
                                                                cap=0.4))
        private_server.stop()
        try:
            with pytest.raises(ReduceStopped, match="unreachable after 3 attempt"):
                run_reduce(engine, impatient, ids, workers=1, force=True)
        finally:
            private_server.start()
        again = run_reduce(engine, ctx, ids, workers=1)
        assert [o.status for o in again] == ["up-to-date"] * len(ids)
        _consistent(engine, ctx.layout.root)
    finally:
        engine.dispose()
