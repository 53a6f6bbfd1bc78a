"""Ingest rate against the cost of merely reading the same files, in one run.

Two figures, each beside its reference measured here and now:

1. Full-size LFC frames (4128 × 2080 uint16, simulated): ``nightlog`` ingest rate
   (frames/s, into a fresh SQLite catalogue) against reading and SHA-256 hashing the
   same files. Target: ratio ≥ 0.7.
2. Many small files: ingest rate against a bare loop of
   ``astropy.io.fits.getheader`` over the same files (target ≥ 0.6), and ccdproc's
   ``ImageFileCollection`` on the same folder for comparison.

Each measurement runs on a warm page cache (every file is read once before timing),
so the figures compare CPU work, not the disk.

    python benchmarks/ingest.py                  # 20 full-size frames, 10,000 small files
    python benchmarks/ingest.py --full 5 --small 1000   # quicker
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from astropy.io import fits

from nightlog.catalogue.engine import create_engine
from nightlog.catalogue.schema import upgrade
from nightlog.coordinator.ingest import IngestContext, discover, run_ingest
from nightlog.settings import load_settings


def _warm(files: list[Path]) -> None:
    for f in files:
        with open(f, "rb") as fh:
            while fh.read(1 << 22):
                pass


def _read_and_hash(files: list[Path]) -> float:
    t = time.perf_counter()
    for f in files:
        digest = hashlib.sha256()
        with open(f, "rb", buffering=0) as fh:
            buf = bytearray(1 << 20)
            view = memoryview(buf)
            while n := fh.readinto(buf):
                digest.update(view[:n])
        digest.hexdigest()
    return time.perf_counter() - t


def _getheader_loop(files: list[Path]) -> float:
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for f in files:
            fits.getheader(f)
    return time.perf_counter() - t


def _ingest(folder: Path, work: Path) -> tuple[float, int]:
    settings = load_settings(env={}, cwd=work)
    engine = create_engine(f"sqlite:///{work / 'bench.sqlite'}")
    upgrade(engine)
    ctx = IngestContext.from_settings(settings)
    t = time.perf_counter()
    files = discover([folder], settings.ingest.patterns)
    summary = run_ingest(engine, files, ctx)
    elapsed = time.perf_counter() - t
    engine.dispose()
    added = summary.counts.get("added", 0)
    if added != len(files):
        print(f"  warning: {dict(summary.counts)}", file=sys.stderr)
    return elapsed, added


def _full_size(n: int, folder: Path) -> list[Path]:
    try:
        from nightlog.simulate import simulate_night

        night = simulate_night(folder, camera="lfc", scale=1.0, seed=1, n_bias=n, n_dark=0,
                               n_flat=0, n_science=0)
        files = [f for f in night.files if f.suffix == ".fits"][:n]
    except (ImportError, TypeError):
        files = []
    if len(files) < n:  # the simulator is not available: plain LFC-shaped frames
        rng = np.random.default_rng(1)
        files = []
        for i in range(n):
            data = rng.normal(1140, 5.5, (4128, 2080)).astype(np.uint16)
            hdu = fits.PrimaryHDU(data)
            hdu.header.update({"INSTRUME": "LFC", "IMAGETYP": "BIAS", "EXPTIME": 0.0,
                               "DATE-OBS": f"2016-01-15T23:{i % 60:02d}:00"})
            path = folder / f"ccd.{i + 1:03d}.0.fits"
            hdu.writeto(path)
            files.append(path)
    return files


def _small(n: int, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    hdu = fits.PrimaryHDU(np.full((16, 16), 1000, dtype=np.uint16))
    hdu.header.update({"INSTRUME": "TESTCAM", "IMAGETYP": "LIGHT", "EXPTIME": 10.0,
                       "FILTER": "R", "OBJECT": "field", "XBINNING": 1, "YBINNING": 1,
                       "DATE-OBS": "2024-03-10T04:00:00.000"})
    template = bytearray()
    hdu.writeto(folder / "_t.fits")
    template = bytearray((folder / "_t.fits").read_bytes())
    (folder / "_t.fits").unlink()
    marker = b"2024-03-10T04:00:00.000"
    at = template.index(marker)
    files = []
    for i in range(n):
        stamp = f"2024-03-10T{4 + i // 3600 % 8:02d}:{i // 60 % 60:02d}:{i % 60:02d}.{i % 1000:03d}"
        template[at : at + len(marker)] = stamp.encode()
        path = folder / f"f{i:05d}.fits"
        path.write_bytes(template)
        files.append(path)
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", type=int, default=20, help="full-size frames (0: skip)")
    parser.add_argument("--small", type=int, default=10_000, help="small files (0: skip)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="nightlog-bench-"))
    try:
        if args.full:
            files = _full_size(args.full, root / "full")
            _warm(files)
            ref = _read_and_hash(files)
            ours, added = _ingest(root / "full", root)
            size = sum(f.stat().st_size for f in files) / 1024**2
            print(f"full-size frames: {len(files)} files, {size:,.0f} MiB, {added} catalogued")
            print(f"  read + sha256      {len(files) / ref:8.2f} frames/s")
            print(f"  nightlog ingest    {len(files) / ours:8.2f} frames/s")
            print(f"  ratio              {ref / ours:8.2f}   (target >= 0.7)")
            (root / "bench.sqlite").unlink(missing_ok=True)
        if args.small:
            files = _small(args.small, root / "small")
            _warm(files)
            ref = _getheader_loop(files)
            ours, added = _ingest(root / "small", root)
            print(f"small files: {len(files)} files, {added} catalogued")
            print(f"  fits.getheader loop {len(files) / ref:8.0f} files/s")
            print(f"  nightlog ingest     {len(files) / ours:8.0f} files/s")
            print(f"  ratio               {ref / ours:8.2f}   (target >= 0.6)")
            try:
                from ccdproc import ImageFileCollection

                t = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    ImageFileCollection(str(root / "small"))
                icf = time.perf_counter() - t
                print(f"  ccdproc ImageFileCollection {len(files) / icf:8.0f} files/s "
                      f"(ratio {ref / icf:.2f})")
            except ImportError:
                pass
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
