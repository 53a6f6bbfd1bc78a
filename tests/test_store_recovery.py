"""The watch daemon and an archive that refuses writes for a while (a read-only
remount of a real tmpfs): the builds and quick-looks that failed are tried again
with the catalogue outage's backoff and all succeed once the archive is writable,
without a restart; the daemon says when it is."""

from __future__ import annotations

import errno
import logging
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from astropy.io import fits
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import OperationalError

from nightlog.catalogue.engine import create_engine, make_sessionmaker
from nightlog.catalogue.models import Master, Product
from nightlog.catalogue.schema import upgrade
from nightlog.coordinator.context import JobContext
from nightlog.coordinator.ingest import IngestContext
from nightlog.coordinator.masters import find_due
from nightlog.coordinator.retry import failure_cause
from nightlog.daemon.watch import Watcher, WatchOptions
from nightlog.errors import ArchiveFileExists, ArchiveNotWritable, UnreadableFileError
from nightlog.settings import load_settings
from nightlog.states import FailureCause
from nightlog.store import atomic
from nightlog.store.images import write_hdulist
from tests.factories import wait_for


def _mount(folder: Path, options: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs on {folder} (needs root): "
                    f"{result.stderr.strip() or result.returncode}")


def _remount(folder: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(folder)], check=True)




@pytest.fixture
def read_only_archive(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "archive"
    _mount(root, "size=64m,mode=0755")
    try:
        _remount(root, "ro")
        yield root
    finally:
        subprocess.run(["umount", "-l", str(root)], capture_output=True, check=False)


def _count(engine: Engine, model: type) -> int:
    with make_sessionmaker(engine)() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


@pytest.mark.parametrize("code", [errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EACCES])
def test_store_faults_are_told_by_the_exception(tmp_path: Path, code: int,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(*args: object, **kwargs: object) -> None:
        raise OSError(code, os.strerror(code))

    # Refused at the rename, whichever the writer uses (link for a new archive file).
    monkeypatch.setattr(atomic.os, "replace", refused)
    monkeypatch.setattr(atomic.os, "link", refused)
    for write in (lambda: write_hdulist(tmp_path / "m.fits", fits.HDUList([fits.PrimaryHDU()])),
                  lambda: atomic.write_atomically(tmp_path / "m.fits", lambda f: f.write(b"x"))):
        with pytest.raises(ArchiveNotWritable) as caught:
            write()
        assert failure_cause(caught.value) is FailureCause.ARCHIVE
        assert "cannot write" in str(caught.value) and os.strerror(code) in str(caught.value)
        assert not (tmp_path / "m.fits").exists()


def test_other_failures_are_not_the_archives() -> None:
    assert failure_cause(ArchiveFileExists("refusing to overwrite an archive file: /a")) \
        is FailureCause.WORK
    assert failure_cause(UnreadableFileError("/raw/x.fits is gone since it was catalogued")) \
        is FailureCause.WORK
    assert failure_cause(OperationalError("SELECT 1", {}, Exception("server closed"))) \
        is FailureCause.CATALOGUE


def test_a_read_only_archive_recovers_without_a_restart(
        lfc_night: Path, tmp_path: Path, read_only_archive: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    (tmp_path / "nightlog.toml").write_text('[archive]\nroot = "archive"\n')
    settings = load_settings(tmp_path / "nightlog.toml", env={}, cwd=tmp_path)
    engine = create_engine(f"sqlite:///{tmp_path / 'nightlog.sqlite'}")  # outside the archive
    upgrade(engine)
    ctx = JobContext.from_settings(settings)
    assert ctx.layout.root == read_only_archive
    opts = WatchOptions.from_settings(settings, [raw], settle=0.2, build_delay=0.3,
                                      quicklook=True, backoff_first=0.2, backoff_cap=1.0)
    watcher = Watcher(engine, IngestContext.from_settings(settings, incomplete_is_error=False),
                      ctx, opts)
    thread = threading.Thread(target=watcher.run, daemon=True)
    with caplog.at_level(logging.INFO, logger="nightlog.watch"):
        thread.start()
        assert watcher.ready_event.wait(20)
        try:
            shutil.copytree(lfc_night, raw / "night")
            wait_for(lambda: sum(1 for r in caplog.records
                                  if getattr(r, "event", "") == "store-retry") >= 5,
                      30, "builds refused by the read-only archive")
            assert _count(engine, Master) == 0 and _count(engine, Product) == 0
            _remount(read_only_archive, "rw")
            writable_at = time.time()

            def finished() -> bool:
                with make_sessionmaker(engine)() as s:
                    due = find_due(s, ctx)
                return not due and _count(engine, Product) == 3
            wait_for(finished, 30, "every master and quick-look after the fault")
            recovered = time.time() - writable_at
        finally:
            watcher.stop.set()
            thread.join(30)
    assert not thread.is_alive()
    masters, products = _count(engine, Master), _count(engine, Product)
    engine.dispose()
    retries = [r for r in caplog.records if getattr(r, "event", "") == "store-retry"]
    assert all("Read-only file system" in r.getMessage() for r in retries)
    assert max(getattr(r, "delay", 0) for r in retries) <= 1.0  # the backoff's cap
    back = [r for r in caplog.records if getattr(r, "event", "") == "store-recovered"]
    assert back and back[0].getMessage().startswith("archive writable again after ")
    assert products == 3 and watcher.stats.counts["quicklook reduced"] == 3
    assert watcher.stats.counts["quicklook failed"] == 0
    print(f"\nread-only recovery: {len(retries)} refused attempt(s) over "
          f"{writable_at - retries[0].created:.1f} s read-only; once writable: {masters} "
          f"masters and {products} quick-looks {recovered:.1f} s later, no restart")
