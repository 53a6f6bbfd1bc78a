"""Temporaries of archive writes: owned by name, swept once their writer is gone,
never while another process writes them; a ``kill -9`` during writes, again and
again, leaves no ``.part`` file behind and loses or duplicates no frame."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from nightlog.catalogue.engine import create_engine, make_sessionmaker
from nightlog.catalogue.models import Frame, Master, Product
from nightlog.coordinator.context import JobContext
from nightlog.coordinator.masters import run_build
from nightlog.coordinator.reduce import run_reduce, science_frames
from nightlog.store.atomic import atomic_write
from nightlog.store.temporaries import (
    DEFAULT_GRACE_SECONDS,
    TemporaryOwner,
    host_label,
    is_temporary,
    sweep_temporaries,
    temporary_owner,
)
from tests.factories import wait_for

REPO = Path(__file__).resolve().parents[1]

# A process writing an archive file through atomic_write, slowly: it prints once its
# temporary exists, then keeps writing for a minute (it is killed long before).
SLOW_WRITER = r"""
import sys, time
from pathlib import Path
from nightlog.store.atomic import atomic_write
with atomic_write(Path(sys.argv[1])) as fh:
    fh.write(b"\0" * 100_000); fh.flush()
    print("writing", flush=True)
    for _ in range(600):
        fh.write(b"\0" * 1000); fh.flush(); time.sleep(0.1)
"""


def _parts(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.part"))


def _start_writer(final: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", SLOW_WRITER, str(final)], env=env,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "writing"
    return proc


def _kill(proc: subprocess.Popen[str]) -> None:
    proc.kill()
    assert proc.wait(10) == -signal.SIGKILL
    if proc.stdout is not None:
        proc.stdout.close()




# -- names and rules ---------------------------------------------------------------------


def test_temporaries_name_their_writer(tmp_path: Path) -> None:
    final = tmp_path / "products" / "frame_final_1.fits"
    with atomic_write(final) as fh:
        (tmp,) = _parts(tmp_path)
        fh.write(b"data")
        assert is_temporary(tmp.name) and tmp.name.startswith(".frame_final_1.fits.")
        assert temporary_owner(tmp.name) == TemporaryOwner(host_label(socket.gethostname()),
                                                           os.getpid())
    assert final.read_bytes() == b"data" and _parts(tmp_path) == []
    assert not is_temporary("frame.fits") and not is_temporary(".frame.fits")


def test_a_temporary_being_written_is_never_swept(tmp_path: Path) -> None:
    writer = _start_writer(tmp_path / "masters" / "bias_v1.fits")
    try:
        (tmp,) = _parts(tmp_path)
        old = time.time() - 10 * DEFAULT_GRACE_SECONDS
        os.utime(tmp, (old, old))  # old, yet held open by a live process
        report = sweep_temporaries(tmp_path, before=time.time())
        assert report.removed == [] and report.kept[0][1] == "open for writing"
        assert tmp.exists()
    finally:
        _kill(writer)
    report = sweep_temporaries(tmp_path, before=time.time())  # its writer is dead now
    assert report.removed == [tmp] and report.freed_bytes >= 100_000
    assert _parts(tmp_path) == []


def test_temporaries_of_other_hosts_and_earlier_versions(tmp_path: Path) -> None:
    now = time.time()
    old, recent = now - 2 * DEFAULT_GRACE_SECONDS, now - 5
    files = {
        "remote_old": (".a.fits.nltmp-otherhost-4242-abc12345.part", old),
        "remote_recent": (".b.fits.nltmp-otherhost-4243-abc12345.part", recent),
        "remote_live": (".c.fits.nltmp-otherhost-4244-abc12345.part", old),
        "legacy_old": (".d.fits.k2j3h4g5.part", old),
        "legacy_recent": (".e.fits.k2j3h4g6.part", recent),
        "not_ours": (".f.fits.partial", old),
    }
    for name, mtime in files.values():
        (tmp_path / name).write_bytes(b"x")
        os.utime(tmp_path / name, (mtime, mtime))
    report = sweep_temporaries(
        tmp_path, live_elsewhere=lambda o: (o.host, o.pid) == ("otherhost", 4244))
    removed = {p.name for p in report.removed}
    assert removed == {files["remote_old"][0], files["legacy_old"][0]}
    kept = dict((p.name, why) for p, why in report.kept)
    assert kept[files["remote_live"][0]] == "its writer (otherhost pid 4244) is a live run"
    assert kept[files["remote_recent"][0]].startswith("recent")
    assert kept[files["legacy_recent"][0]].startswith("recent")
    assert (tmp_path / files["not_ours"][0]).exists()


@pytest.mark.parametrize("catalogue_url", ["sqlite"], indirect=True)  # files, not rows
def test_reduce_sweeps_what_killed_writers_left(archive: tuple[Engine, JobContext]) -> None:
    engine, ctx = archive
    products = ctx.layout.root / "products" / "lfc"
    for i in range(3):
        _kill(_start_writer(products / f"frame{i}_final_9.fits"))
    assert len(_parts(ctx.layout.root)) == 3
    assert all(o.status == "built" for o in run_build(engine, ctx, sweep=False))
    assert len(_parts(ctx.layout.root)) == 3  # run_reduce is the one that sweeps here
    with make_sessionmaker(engine)() as s:
        ids = science_frames(s)
    outcomes = run_reduce(engine, ctx, ids, workers=1)
    assert [o.status for o in outcomes] == ["reduced"] * len(ids)
    assert _parts(ctx.layout.root) == []


# -- kill -9 of the daemon during writes, in a loop -----------------------------------------


def _spawn(root: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("NIGHTLOG_DATABASE_URL", None)
    with open(log, "ab") as err:
        return subprocess.Popen([sys.executable, "-m", "nightlog", "--config",
                                 str(root / "nightlog.toml"), "watch", "--log-format", "json"],
                                cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=err)


@pytest.mark.slow
def test_kill_9_during_writes_leaves_no_temporary_and_no_frame_lost(lfc_night: Path,
                                                                     tmp_path: Path) -> None:
    """Each round: the daemon builds masters and quick-looks of a part of the night,
    and an archive write of another process is under way; both are killed with
    SIGKILL at once. The next start sweeps the temporaries of the dead writers and
    finishes the work. At the end: no ``.part`` file, every frame once, one
    quick-look per science frame."""
    raw = tmp_path / "raw"
    raw.mkdir()
    (tmp_path / "nightlog.toml").write_text(
        '[watch]\ndirectories = ["raw"]\nsettle_seconds = 0.2\nbuild_delay_seconds = 0.3\n'
        "heartbeat_seconds = 0.5\nquicklook = true\n")
    log = tmp_path / "watch.log"
    files = sorted(lfc_night.rglob("*.fits"))
    rounds = 6
    kills = left_after_kill = 0
    for i in range(rounds):
        daemon = _spawn(tmp_path, log)
        wait_for(lambda n=i + 1: log.exists() and log.read_text().count('"catch-up"') >= n,
                  30, "the daemon to start")
        assert _parts(tmp_path) == [], f"round {i}: a temporary survived the start"
        for path in files[i::rounds]:
            target = raw / path.relative_to(lfc_night)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target)
        writer = _start_writer(tmp_path / "masters" / f"round{i}" / "bias_v1.fits")
        time.sleep(0.3 + 0.25 * i)  # mid-burst, builds or quick-looks under way
        daemon.kill()
        _kill(writer)
        assert daemon.wait(10) == -signal.SIGKILL
        kills += 2
        left_after_kill += len(_parts(tmp_path))
    assert left_after_kill >= rounds  # every round left at least the writer's temporary
    daemon = _spawn(tmp_path, log)
    engine = create_engine(f"sqlite:///{tmp_path / 'nightlog.sqlite'}")
    try:
        # Started (signal handlers set, temporaries swept) before the work is looked at:
        # the catalogue may already hold it all.
        wait_for(lambda: log.read_text().count('"catch-up"') >= rounds + 1, 30,
                  "the last start")
        assert _parts(tmp_path) == []
        def done() -> bool:
            with make_sessionmaker(engine)() as s:
                science = s.scalar(select(func.count()).select_from(Frame).where(
                    Frame.kind == "science"))
                products = s.scalar(select(func.count()).select_from(Product))
            return science == 3 and products == 3
        wait_for(done, 90, "every quick-look")
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(30) == 0
    with make_sessionmaker(engine)() as s:
        frames = list(s.scalars(select(Frame)))
        n_masters = s.scalar(select(func.count()).select_from(Master))
        per_frame = list(s.execute(select(Product.frame_id, func.count()).group_by(
            Product.frame_id)))
    engine.dispose()
    expected = {str(raw / p.relative_to(lfc_night)) for p in files}
    assert sorted(f.path for f in frames) == sorted(expected)  # none lost, none twice
    assert all(n == 1 for _, n in per_frame) and len(per_frame) == 3
    assert n_masters >= 4
    assert _parts(tmp_path) == []
    print(f"\nkill-during-write: {kills} kills over {rounds} rounds, {left_after_kill} .part "
          f"file(s) found after the kills, 0 left after the restarts; {len(frames)} frames "
          f"of {len(expected)}, none twice; {n_masters} masters, 3 quick-looks")


@pytest.mark.parametrize("catalogue_url", ["sqlite"], indirect=True)  # files, not rows
def test_calib_build_sweeps_what_killed_writers_left(archive: tuple[Engine, JobContext]
                                                     ) -> None:
    engine, ctx = archive
    masters = ctx.layout.root / "masters" / "lfc" / "bias"
    for i in range(2):
        _kill(_start_writer(masters / f"bias_{i}_v1.fits"))
    assert len(_parts(ctx.layout.root)) == 2
    assert all(o.status == "built" for o in run_build(engine, ctx))
    assert _parts(ctx.layout.root) == []
