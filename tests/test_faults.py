"""Faults of the disk and the archive while masters and products are written: a full
disk (an injected ``ENOSPC`` and a real size-limited tmpfs), a read-only archive, a
raw file deleted between ingest and reduction. Each must leave no partial file under
a final name and no catalogue row for it, name the path (and the free space), let the
rest of the night go on, and let the next run finish the work. SQLite and PostgreSQL
(the ``archive`` fixture, conftest.py)."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from nightlog.catalogue.engine import make_sessionmaker
from nightlog.catalogue.models import Frame, Master, Product, ReduceFailure
from nightlog.coordinator.context import JobContext
from nightlog.coordinator.masters import run_build
from nightlog.coordinator.reduce import run_reduce, science_frames
from nightlog.store import atomic


def _science(engine: Engine) -> list[int]:
    with make_sessionmaker(engine)() as s:
        return science_frames(s)


def _count(engine: Engine, model: type) -> int:
    with make_sessionmaker(engine)() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def _files(root: Path, folder: str) -> list[Path]:
    """Every file under ``root/folder``, temporary ones (hidden ``.part``) included."""
    return sorted(p for p in (root / folder).rglob("*") if p.is_file())


@pytest.fixture
def disk_full(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Path]]:
    """Every archive write fails with ``ENOSPC`` part-way (some bytes already written);
    yields the temporary files the writer had opened, to check they are gone."""
    opened: list[Path] = []
    real_fdopen = os.fdopen

    class _Full:
        def __init__(self, fh: object, name: Path) -> None:
            self._fh, self.name = fh, name

        def write(self, data: bytes) -> int:
            self._fh.write(bytes(data)[:100])  # type: ignore[attr-defined]
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __getattr__(self, attr: str) -> object:
            return getattr(self._fh, attr)

        def __enter__(self) -> _Full:
            return self

        def __exit__(self, *exc: object) -> None:
            self._fh.close()  # type: ignore[attr-defined]

    def fdopen(fd: int, mode: str = "r", *args: object, **kwargs: object) -> object:
        fh = real_fdopen(fd, mode, *args, **kwargs)  # type: ignore[call-overload]
        name = Path(os.readlink(f"/proc/self/fd/{fd}"))
        if not name.name.endswith(".part"):
            return fh
        opened.append(name)
        return _Full(fh, name)

    monkeypatch.setattr(atomic.os, "fdopen", fdopen)
    yield opened


def test_full_disk_while_building_masters(archive: tuple[Engine, JobContext],
                                          disk_full: list[Path],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    engine, ctx = archive
    outcomes = run_build(engine, ctx)
    failed = [o for o in outcomes if o.status == "failed"]
    assert [o.kind for o in failed][:1] == ["bias"]
    # Without a bias master the policy stops darks and flats (the others are skipped).
    assert all(o.status == "failed" or "needs a bias master" in o.reason for o in outcomes)
    assert disk_full, "the writer was never reached"
    for outcome in failed:
        # The path it could not write and the free space there, in one line.
        assert "cannot write " in outcome.reason and "/masters/" in outcome.reason
        assert "No space left on device" in outcome.reason
        assert "free space: " in outcome.reason and "MiB" in outcome.reason
    assert not any(p.exists() for p in disk_full)  # no temporary file left
    assert _files(ctx.layout.root, "masters") == []  # nothing under a final name
    assert _count(engine, Master) == 0

    monkeypatch.undo()  # space freed: the next run builds everything
    again = run_build(engine, ctx)
    assert sorted(o.kind for o in again if o.status == "built") == ["bias", "dark", "flat",
                                                                    "flat"]
    with make_sessionmaker(engine)() as s:
        paths = {Path(m.path) for m in s.scalars(select(Master))}
    assert set(_files(ctx.layout.root, "masters")) == paths


def test_full_disk_while_reducing(archive: tuple[Engine, JobContext],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    engine, ctx = archive
    assert all(o.status == "built" for o in run_build(engine, ctx))
    ids = _science(engine)
    with monkeypatch.context() as patch:
        opened: list[Path] = []

        def full(real: Any) -> Any:
            def rename(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
                if not str(src).endswith(".part"):
                    real(src, dst)
                    return
                opened.append(Path(src))
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return rename

        patch.setattr(atomic.os, "replace", full(os.replace))
        patch.setattr(atomic.os, "link", full(os.link))  # the no-clobber rename of products
        outcomes = run_reduce(engine, ctx, ids, workers=1, retries=1)
    assert [o.status for o in outcomes] == ["failed"] * len(ids)
    assert len(opened) == 2 * len(ids)  # each frame tried twice
    for outcome in outcomes:
        assert outcome.attempts == 2
        assert "/products/" in outcome.reason and "free space: " in outcome.reason
    assert not any(p.exists() for p in opened)
    assert _files(ctx.layout.root, "products") == []
    assert _count(engine, Product) == 0
    with make_sessionmaker(engine)() as s:
        failures = s.scalars(select(ReduceFailure)).all()
        assert sorted(f.frame_id for f in failures) == sorted(ids)
        assert all("No space left on device" in f.reason for f in failures)

    again = run_reduce(engine, ctx, ids, workers=1)
    assert [o.status for o in again] == ["reduced"] * len(ids)
    with make_sessionmaker(engine)() as s:
        assert all(f.resolved_at is not None for f in s.scalars(select(ReduceFailure)))
        paths = {Path(p.path) for p in s.scalars(select(Product))}
    assert set(_files(ctx.layout.root, "products")) == paths


def _mount_tmpfs(folder: Path, options: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs on {folder} (needs root): "
                    f"{result.stderr.strip() or result.returncode}")


def _umount(folder: Path) -> None:
    subprocess.run(["umount", "-l", str(folder)], capture_output=True, check=False)


@pytest.fixture
def small_products(archive: tuple[Engine, JobContext]) -> Iterator[Path]:
    """The archive's ``products`` folder on a real tmpfs too small for the night."""
    engine, ctx = archive
    assert all(o.status == "built" for o in run_build(engine, ctx))
    folder = ctx.layout.root / "products"
    _mount_tmpfs(folder, "size=1m,mode=0755")
    try:
        yield folder
    finally:
        _umount(folder)


def test_really_full_disk_while_reducing(archive: tuple[Engine, JobContext],
                                         small_products: Path) -> None:
    engine, ctx = archive
    ids = _science(engine)
    outcomes = run_reduce(engine, ctx, ids, workers=1, retries=0)
    reduced = [o for o in outcomes if o.status == "reduced"]
    failed = [o for o in outcomes if o.status == "failed"]
    assert failed, "1 MiB should not hold every product of the night"
    for outcome in failed:
        assert "No space left on device" in outcome.reason and "free space: " in outcome.reason
        assert "/products/" in outcome.reason
    with make_sessionmaker(engine)() as s:
        paths = {Path(p.path) for p in s.scalars(select(Product))}
    assert len(paths) == len(reduced)
    assert set(_files(ctx.layout.root, "products")) == paths  # no partial, no temp file

    # Space is made (the folder grows); the next run does only what is left.
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_products)], check=True)
    again = run_reduce(engine, ctx, ids, workers=1)
    assert sorted(o.status for o in again) == sorted(
        ["up-to-date"] * len(reduced) + ["reduced"] * len(failed))
    assert _count(engine, Product) == len(ids)


def test_read_only_archive(archive: tuple[Engine, JobContext]) -> None:
    engine, ctx = archive
    assert all(o.status == "built" for o in run_build(engine, ctx))
    ids = _science(engine)
    folder = ctx.layout.root / "products"
    _mount_tmpfs(folder, "size=16m,mode=0755")
    try:
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        outcomes = run_reduce(engine, ctx, ids, workers=1, retries=0)
        assert [o.status for o in outcomes] == ["failed"] * len(ids)
        for outcome in outcomes:
            assert "Read-only file system" in outcome.reason and str(folder) in outcome.reason
        assert _count(engine, Product) == 0
        with make_sessionmaker(engine)() as s:
            assert len(s.scalars(select(ReduceFailure)).all()) == len(ids)

        subprocess.run(["mount", "-o", "remount,rw", str(folder)], check=True)
        again = run_reduce(engine, ctx, ids, workers=1)
        assert [o.status for o in again] == ["reduced"] * len(ids)
    finally:
        _umount(folder)


def test_raw_file_deleted_after_ingest(archive: tuple[Engine, JobContext]) -> None:
    engine, ctx = archive
    assert all(o.status == "built" for o in run_build(engine, ctx))
    ids = _science(engine)
    with make_sessionmaker(engine)() as s:
        gone = s.get(Frame, ids[1])
        assert gone is not None
        gone_path = Path(gone.path)
    gone_path.unlink()
    outcomes = run_reduce(engine, ctx, ids, workers=1, retries=0)
    by_id = {o.frame_id: o for o in outcomes}
    assert by_id[ids[1]].status == "failed"
    reason = by_id[ids[1]].reason
    assert str(gone_path) in reason and "gone" in reason
    assert [by_id[i].status for i in ids if i != ids[1]] == ["reduced"] * (len(ids) - 1)
    with make_sessionmaker(engine)() as s:
        failure = s.scalars(select(ReduceFailure)).one()
        assert failure.frame_id == ids[1] and str(gone_path) in failure.reason


def test_write_error_message_names_path_and_space(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "sub" / "file.bin"

    def full(src: str, dst: str) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(atomic.os, "replace", full)
    with pytest.raises(atomic.StoreError) as info:
        atomic.write_atomically(target, lambda fh: fh.write(b"x" * 10))
    free_mib = shutil.disk_usage(tmp_path).free / 1024**2
    message = str(info.value)
    assert str(target) in message and "free space: " in message
    shown = float(message.split("free space: ")[1].split(" MiB")[0].replace(",", ""))
    assert abs(shown - free_mib) < 64  # the same disk, measured moments apart
    assert not target.exists() and list(target.parent.iterdir()) == []
