"""Multi-amplifier (MEF) frames: ingest rate and one frame's reduction, each as a ratio.

Files in the LCO Sinistro layout (an empty primary HDU and four uint16 amplifier
extensions of ``n + 1`` rows by ``n + 32`` columns: data, then overscan; reversed
DETSEC for amplifiers 2-4), generated here with numpy.

1. **Ingest**: ``nightlog`` ingest rate (files/s into a fresh SQLite catalogue, the
   profile ``amplifiers = "all"``: every extension's header read and the amplifier
   set checked) against reading and SHA-256 hashing the same files. Target >= 0.7.
2. **Reduction**: one MEF frame read, its amplifiers assembled (overscan per row,
   trim, gain, placement) and reduced (bias, uncertainty, flat, bad pixels) against
   the same pixels written as one single-HDU frame (one overscan strip) read and
   reduced by the same :func:`reduce_science`. Target <= 1.2. Cosmic rays, the same
   work on the same pixels in both, are left out unless ``--cosmics``.

Warm page cache (every file read once before timing); best of ``--repeats``, the two
sides of each figure interleaved (the reductions after one untimed run of each, in
alternating order), so that both see the same load on a shared machine.

    python benchmarks/mef.py                   # 8 files, amplifiers of 2048 x 2048
    python benchmarks/mef.py --files 4 --n 1024 --repeats 2
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.nddata import CCDData, StdDevUncertainty

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from nightlog.catalogue.engine import create_engine
from nightlog.catalogue.schema import upgrade
from nightlog.coordinator.amplifier_frames import AmplifierFrameFile
from nightlog.coordinator.ingest import IngestContext, discover, run_ingest
from nightlog.header.amplifier_layout import amplifier_layout
from nightlog.header.amplifiers import ExtensionHeader
from nightlog.reduction.cosmics import CosmicRaySettings
from nightlog.reduction.science import OverscanParameters, ScienceParameters, reduce_science
from nightlog.settings import load_settings
from nightlog.store.images import read_image

OVER = 32
GAINS = (1.8, 2.1, 1.95, 2.3)
PROFILE = '[instruments.sinistro]\nmatch = { INSTRUME = "fa99" }\namplifiers = "all"\n'


def _sections(n: int, i: int) -> tuple[str, str]:
    detsec = [f"[1:{n},1:{n}]", f"[{2 * n}:{n + 1},1:{n}]",
              f"[{2 * n}:{n + 1},{2 * n}:{n + 1}]", f"[1:{n},{2 * n}:{n + 1}]"][i]
    datasec = f"[1:{n},1:{n}]" if i < 2 else f"[1:{n},2:{n + 1}]"
    return datasec, detsec


def write_mef(path: Path, n: int, rng: np.random.Generator, kind: str, level: float,
              minute: int) -> None:
    primary = fits.PrimaryHDU()
    primary.header.update({"INSTRUME": "fa99", "OBSTYPE": kind, "EXPTIME": 30.0,
                           "DATE-OBS": f"2026-11-30T03:{minute % 60:02d}:00",
                           "FILTER": "rp", "CCDSUM": "1 1"})
    hdus: list[fits.PrimaryHDU | fits.ImageHDU] = [primary]
    for i in range(4):
        data = rng.normal(1000.0 + level / GAINS[i], 4.0, (n + 1, n + OVER))
        data[:, n:] = rng.normal(1000.0, 4.0, (n + 1, OVER))
        ext = fits.ImageHDU(np.round(data).astype(np.uint16), name=f"AMP{i + 1}")
        datasec, detsec = _sections(n, i)
        ext.header.update({"DATASEC": datasec, "BIASSEC": f"[{n + 1}:{n + OVER},1:{n + 1}]",
                           "DETSEC": detsec, "GAIN": GAINS[i], "RDNOISE": 7.5,
                           "SATURATE": 65000.0})
        hdus.append(ext)
    fits.HDUList(hdus).writeto(path)


def _warm(files: list[Path]) -> None:
    for f in files:
        with open(f, "rb") as fh:
            while fh.read(1 << 22):
                pass


def _read_and_hash(files: list[Path]) -> float:
    t = time.perf_counter()
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    for f in files:
        digest = hashlib.sha256()
        with open(f, "rb", buffering=0) as fh:
            while k := fh.readinto(buf):
                digest.update(view[:k])
        digest.hexdigest()
    return time.perf_counter() - t


def _ingest(folder: Path, work: Path, run: int) -> float:
    (work / "nightlog.toml").write_text(PROFILE)
    settings = load_settings(env={}, cwd=work)
    engine = create_engine(f"sqlite:///{work / f'bench{run}.sqlite'}")
    upgrade(engine)
    ctx = IngestContext.from_settings(settings)
    t = time.perf_counter()
    summary = run_ingest(engine, discover([folder], settings.ingest.patterns), ctx)
    elapsed = time.perf_counter() - t
    engine.dispose()
    if summary.counts.get("added", 0) != len(list(folder.glob("*.fits"))):
        print(f"  warning: {dict(summary.counts)} {summary.problems[:1]}", file=sys.stderr)
    return elapsed


def _single_hdu(path: Path, mef: Path, n: int) -> None:
    """The MEF frame's pixels as one image: the assembled detector (ADU of amplifier 1's
    readout) with one overscan strip after it."""
    with fits.open(mef) as hdul:
        amps = [np.asarray(hdul[i + 1].data, dtype=np.float32) for i in range(4)]
    image = np.zeros((2 * n, 2 * n + OVER), dtype=np.uint16)
    image[:n, :n] = amps[0][:n, :n]
    image[:n, n:2 * n] = amps[1][:n, :n][:, ::-1]
    image[n:, n:2 * n] = amps[2][1:, :n][::-1, ::-1]
    image[n:, :n] = amps[3][1:, :n][::-1, :]
    image[:, 2 * n:] = np.vstack([amps[0][:n, n:], amps[3][1:, n:]])
    header = fits.Header({"INSTRUME": "fa99", "OBSTYPE": "OBJECT", "EXPTIME": 30.0})
    fits.PrimaryHDU(image, header).writeto(path)


def _reduction(folder: Path, n: int, repeats: int, cosmics: bool) -> tuple[float, float]:
    rng = np.random.default_rng(7)
    mef = folder / "sci.fits"
    write_mef(mef, n, rng, "OBJECT", 2000.0, 0)
    single = folder / "single.fits"
    _single_hdu(single, mef, n)
    with fits.open(mef) as hdul:
        exts = [ExtensionHeader(i, dict(hdul[i].header), hdul[i].data.shape)
                for i in range(1, 5)]
    layout = amplifier_layout({}, exts, None)
    shape = (2 * n, 2 * n)
    bias_e = CCDData(rng.normal(0.0, 1.0, shape).astype(np.float32), unit="electron",
                     uncertainty=StdDevUncertainty(np.full(shape, 1.0, np.float32)))
    bias_adu = CCDData(bias_e.data / np.float32(GAINS[0]), unit="adu",
                       uncertainty=StdDevUncertainty(np.full(shape, 0.5, np.float32)))
    flat = CCDData(rng.normal(1.0, 0.01, shape).astype(np.float32), unit="",
                   uncertainty=StdDevUncertainty(np.full(shape, 0.001, np.float32)))
    crs = CosmicRaySettings(enabled=cosmics)
    p_mef = ScienceParameters(gain=1.0, read_noise=7.5, saturation=None, exptime=30.0,
                              trim=f"[1:{2 * n},1:{2 * n}]", cosmic_rays=crs)
    p_one = ScienceParameters(gain=GAINS[0], read_noise=7.5, saturation=65000.0,
                              exptime=30.0, overscan=OverscanParameters(
                                  region=f"[{2 * n + 1}:{2 * n + OVER},1:{2 * n}]"),
                              trim=f"[1:{2 * n},1:{2 * n}]", cosmic_rays=crs)
    _warm([mef, single])

    def run_mef() -> float:
        t = time.perf_counter()
        reduce_science(AmplifierFrameFile(str(mef), layout)(), bias=bias_e, dark=None,
                       flat=flat, params=p_mef)
        return time.perf_counter() - t

    def run_one() -> float:
        t = time.perf_counter()
        reduce_science(read_image(single), bias=bias_adu, dark=None, flat=flat, params=p_one)
        return time.perf_counter() - t

    run_mef(), run_one()  # warm-up: first-touch memory and imports, not timed
    t_mef, t_one = [], []
    for r in range(repeats):  # alternating which goes first
        if r % 2:
            t_one.append(run_one())
            t_mef.append(run_mef())
        else:
            t_mef.append(run_mef())
            t_one.append(run_one())
    return min(t_mef), min(t_one)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--n", type=int, default=2048, help="data pixels per amplifier side")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cosmics", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        raw = root / "raw"
        raw.mkdir()
        rng = np.random.default_rng(1)
        for i in range(args.files):
            write_mef(raw / f"f{i:03d}.fits", args.n, rng, "BIAS", 0.0, i)
        files = sorted(raw.glob("*.fits"))
        size = sum(f.stat().st_size for f in files) / 1e6
        _warm(files)
        hashing = ingest = float("inf")
        for r in range(args.repeats):  # interleaved, so that both see the same load
            hashing = min(hashing, _read_and_hash(files))
            ingest = min(ingest, _ingest(raw, root, r))
        print(f"MEF ingest: {args.files} files of 4 amplifiers {args.n + 1}x{args.n + OVER} "
              f"({size / args.files:.1f} MB each)")
        print(f"  nightlog ingest     {args.files / ingest:8.2f} files/s")
        print(f"  read + SHA-256      {args.files / hashing:8.2f} files/s")
        print(f"  ratio (target >= 0.7): {hashing / ingest:.2f}")
        t_mef, t_one = _reduction(root, args.n, args.repeats, args.cosmics)
        print(f"One frame's reduction, {2 * args.n}x{2 * args.n} pixels"
              f"{' with' if args.cosmics else ' without'} cosmic rays")
        print(f"  MEF (read, assemble 4 amplifiers, reduce)  {t_mef:7.3f} s")
        print(f"  same pixels as one HDU (read, reduce)      {t_one:7.3f} s")
        print(f"  ratio (target <= 1.2): {t_mef / t_one:.2f}")


if __name__ == "__main__":
    main()
