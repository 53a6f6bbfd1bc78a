"""Seeded factories of raw files for tests: good frames and a corpus of bad ones;
and what the catalogue made of them."""

from __future__ import annotations

import gzip
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from sqlalchemy import Engine, select

from nightlog.catalogue.engine import make_sessionmaker
from nightlog.catalogue.models import Frame, QuarantinedFile
from nightlog.settings import Settings

GOOD_CARDS: dict[str, object] = {
    "INSTRUME": "TESTCAM",
    "DETECTOR": "CCD-1",
    "IMAGETYP": "LIGHT",
    "EXPTIME": 30.0,
    "FILTER": "R",
    "DATE-OBS": "2024-03-10T04:05:06.5",
    "XBINNING": 1,
    "YBINNING": 1,
    "OBJECT": "M 101",
}


def frame_hdu(seed: int = 0, shape: tuple[int, int] = (24, 32), *, level: float = 1000.0,
              noise: float = 10.0, **cards: object) -> fits.PrimaryHDU:
    """A small uint16 frame with a generic header (``cards`` override/add keywords;
    a value of ``None`` removes the keyword)."""
    rng = np.random.default_rng(seed)
    data = rng.normal(level, noise, shape).clip(0, 65535).astype(np.uint16)
    hdu = fits.PrimaryHDU(data)
    for key, value in {**GOOD_CARDS, **cards}.items():
        if value is None:
            hdu.header.remove(key, ignore_missing=True)
        else:
            hdu.header[key] = value
    return hdu


def write_frame(path: Path, seed: int = 0, *, shape: tuple[int, int] = (24, 32),
                level: float = 1000.0, noise: float = 10.0, **cards: object) -> Path:
    """Write a good small frame to ``path`` (``.gz`` and ``.fz`` honoured)."""
    hdu = frame_hdu(seed, shape, level=level, noise=noise, **cards)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.endswith(".fz"):
        comp = fits.CompImageHDU(hdu.data, header=hdu.header)
        fits.HDUList([fits.PrimaryHDU(), comp]).writeto(path)
    elif path.name.endswith(".gz"):
        plain = path.with_name(path.name[:-3])
        hdu.writeto(plain)
        path.write_bytes(gzip.compress(plain.read_bytes()))
        plain.unlink()
    else:
        hdu.writeto(path)
    return path


def bad_corpus(folder: Path) -> dict[str, str]:
    """Write one file per kind of bad input; return ``{file name: expected reason}``.

    The expected reason is a fragment the quarantine reason must contain.
    """
    folder.mkdir(parents=True, exist_ok=True)
    expected: dict[str, str] = {}

    (folder / "notes.fits").write_text("observing log, not an image\n" * 200)
    expected["notes.fits"] = "SIMPLE"

    full = write_frame(folder / "_full.fits", seed=1).read_bytes()
    (folder / "_full.fits").unlink()
    (folder / "truncated.fits").write_bytes(full[: len(full) - 2880 // 2 - 700])
    expected["truncated.fits"] = "shorter than the header declares"

    (folder / "headeronly.fits").write_bytes(full[:1000])
    expected["headeronly.fits"] = "inside the header"

    header = bytearray(full[:2880])
    header[0:80] = b"SIMPLE  =                    T / standard".ljust(80)
    bad = bytes(header).replace(b"BITPIX  =                   16",
                                b"BITPIX  =               banana")
    (folder / "badbitpix.fits").write_bytes(bad + full[2880:])
    expected["badbitpix.fits"] = "BITPIX"

    write_frame(folder / "nodate.fits", seed=2, **{"DATE-OBS": None})
    expected["nodate.fits"] = "DATE-OBS"

    write_frame(folder / "baddate.fits", seed=3, **{"DATE-OBS": "yesterday evening"})
    expected["baddate.fits"] = "DATE-OBS"

    write_frame(folder / "negexp.fits", seed=4, EXPTIME=-5.0)
    expected["negexp.fits"] = "EXPTIME"

    write_frame(folder / "badsec.fits", seed=5, BIASSEC="[30:40,1:24]")
    expected["badsec.fits"] = "BIASSEC"

    write_frame(folder / "year9999.fits", seed=6, **{"DATE-OBS": "9999-01-01T00:00:00"})
    expected["year9999.fits"] = "DATE-OBS"

    gz = gzip.compress(write_frame(folder / "_g.fits", seed=7).read_bytes())
    (folder / "_g.fits").unlink()
    (folder / "cut.fits.gz").write_bytes(gz[: len(gz) // 2])
    expected["cut.fits.gz"] = "gzip"
    return expected


def catalogued_frames(engine: Engine) -> list[Frame]:
    """Every frame row, in id order."""
    with make_sessionmaker(engine)() as s:
        return list(s.scalars(select(Frame).order_by(Frame.id)))


def quarantined_by_name(engine: Engine) -> dict[str, QuarantinedFile]:
    """The quarantine entries, by file name."""
    with make_sessionmaker(engine)() as s:
        return {Path(q.path).name: q for q in s.scalars(select(QuarantinedFile))}


def reduced_night(folder: Path, raw: Path, url: str | None = None) -> Settings:
    """``raw`` copied into ``folder / 'raw'``, ingested, its masters built and its science
    frames reduced; the settings of the archive in ``folder`` (its SQLite catalogue, or
    the database ``url``)."""
    import shutil

    from nightlog.catalogue.engine import create_engine
    from nightlog.catalogue.schema import upgrade
    from nightlog.coordinator.context import JobContext
    from nightlog.coordinator.ingest import IngestContext, discover, run_ingest
    from nightlog.coordinator.night import finish_night
    from nightlog.settings import load_settings

    shutil.copytree(raw, folder / "raw")
    env = {} if url is None else {"NIGHTLOG_DATABASE_URL": url}
    settings = load_settings(env=env, cwd=folder)
    engine = create_engine(settings.database_url)
    try:
        upgrade(engine)
        run_ingest(engine, discover([folder / "raw"], settings.ingest.patterns),
                   IngestContext.from_settings(settings))
        finish_night(engine, JobContext.from_settings(settings), workers=1, local=True)
    finally:
        engine.dispose()
    return settings


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` until it holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def archive_cli(where: Path, monkeypatch: Any) -> Callable[..., str]:
    """``nightlog`` run in the archive folder ``where`` (its ``nightlog.toml`` found from
    there, no environment override, wide tables): ``run(*args, code=0)`` returns the
    output and checks the exit status."""
    from typer.testing import CliRunner

    from nightlog.cli.app import app

    monkeypatch.chdir(where)
    monkeypatch.delenv("NIGHTLOG_CONFIG", raising=False)
    monkeypatch.delenv("NIGHTLOG_DATABASE_URL", raising=False)
    monkeypatch.setenv("COLUMNS", "250")
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == code, result.output
        return result.output

    return run
