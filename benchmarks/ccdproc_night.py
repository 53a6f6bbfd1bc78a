"""One simulated night reduced as ccdproc users do and as nightlog does, in one run.

The night of ``benchmarks/ccdred.py`` (14 raw FITS files of 2048 × 2112 uint16:
5 biases, 3 darks of 300 s, 3 flats of 5 s, 3 science frames of 300 s with cosmic
rays added) is reduced twice from the files (warm page cache), products kept in
memory:

* **ccdproc as the astropy CCD data reduction guide does it**: every calibration
  frame overscan-subtracted (median per row) and trimmed; ``ccdproc.combine`` of
  the biases (average, 5-σ clip with ``np.ma.median`` and ``mad_std``), of the
  bias-subtracted darks alike, of the bias- and dark-subtracted flats scaled by
  their inverse median; each science frame through ``ccdproc.ccd_process``
  (overscan, trim, uncertainty, bias, dark scaled by exposure, flat, gain to
  electrons) and ``ccdproc.cosmicray_lacosmic`` (its defaults but the camera's
  read noise and saturation, gain 1 on data in electrons);
* **nightlog**: ``make_master_bias``/``dark``/``flat`` reading the files through
  ``FrameFile`` (their default MAD-clipped average), then ``reduce_science`` of
  each science frame with cosmic rays on (its defaults), in electrons, with the
  masters' bit plane found once.

Target (issue #17): nightlog ≥ 3× faster end to end. The two reductions are
checked against each other: they differ by one factor, that of the flats'
normalisations (measured and predicted agree within 0.2 %), and after it the
reduced pixels flagged by neither agree within a tenth of their noise (median);
the share of ccdproc's cosmic-ray pixels that
nightlog flags too is printed.

Run from the repository root::

    python benchmarks/ccdproc_night.py               # one run of each
    python benchmarks/ccdproc_night.py --repeats 2
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ccdproc
import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.nddata import CCDData
from astropy.stats import mad_std

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))

from ccdred import BIASSEC, CENTRE, DATASEC, GAIN, NX, NY, READ_NOISE, simulate

from nightlog.reduction.bad_pixels import master_plane
from nightlog.reduction.cosmics import CosmicRaySettings
from nightlog.reduction.mask import MaskBit
from nightlog.reduction.masters import make_master_bias, make_master_dark, make_master_flat
from nightlog.reduction.overscan import subtract_overscan
from nightlog.reduction.science import OverscanParameters, ScienceParameters, reduce_science
from nightlog.reduction.trim import trim_image
from nightlog.store.images import FrameFile, read_image

SATURATION = 65535.0
Night = dict[str, list[tuple[Path, float]]]


def add_cosmic_rays(frames: Night, seed: int = 1) -> None:
    """Hit each science file with 2000 two-pixel cosmic rays (ADU), in place."""
    rng = np.random.default_rng(seed)
    for path, _ in frames["science"]:
        with fits.open(path, mode="update") as hdul:
            data = hdul[0].data.astype(np.float64)
            ys, xs = rng.integers(2, NY - 2, 2000), rng.integers(2, NX - 3, 2000)
            charge = rng.lognormal(np.log(1500), 0.7, 2000) / GAIN
            np.add.at(data, (ys, xs), 0.7 * charge)
            np.add.at(data, (ys, xs + 1), 0.3 * charge)
            hdul[0].data = np.clip(np.round(data), 0, SATURATION).astype(np.uint16)


def _read(path: Path) -> CCDData:
    return CCDData.read(path, unit="adu")


def ccdproc_night(frames: Night) -> tuple[list[tuple[CCDData, np.ndarray]], float]:
    """The astropy CCD guide's reduction with ccdproc; and the factor nightlog's
    frames should differ from it by (the flats' normalisations: ``flat_correct``
    divides by the flat over its mean, nightlog by the flat over its central median)."""
    oscan, trim = f"[{NX + 1}:{NX + 64},:]", f"[1:{NX},:]"
    clip: dict[str, Any] = {"method": "average", "sigma_clip": True,
                            "sigma_clip_low_thresh": 5, "sigma_clip_high_thresh": 5,
                            "sigma_clip_func": np.ma.median,
                            "sigma_clip_dev_func": mad_std, "mem_limit": 350e6}

    def ot(path: Path) -> CCDData:
        ccd = ccdproc.subtract_overscan(_read(path), fits_section=oscan, median=True,
                                        overscan_axis=1)
        return ccdproc.trim_image(ccd, fits_section=trim)

    bias = ccdproc.combine([ot(p) for p, _ in frames["bias"]], **clip)
    darks = [ccdproc.subtract_bias(ot(p), bias) for p, _ in frames["dark"]]
    dark = ccdproc.combine(darks, **clip)
    dark_time = frames["dark"][0][1] * u.s
    flats = [ccdproc.subtract_dark(ccdproc.subtract_bias(ot(p), bias), dark,
                                   dark_exposure=dark_time, data_exposure=t * u.s,
                                   scale=True) for p, t in frames["flat"]]
    flat = ccdproc.combine(flats, scale=lambda a: 1 / np.ma.median(a), **clip)
    out = []
    for path, exptime in frames["science"]:
        reduced = ccdproc.ccd_process(
            _read(path), oscan=oscan, trim=trim, error=True,
            gain=GAIN * u.electron / u.adu, readnoise=READ_NOISE * u.electron,
            master_bias=bias, dark_frame=dark, master_flat=flat,
            dark_exposure=dark_time, data_exposure=exptime * u.s, dark_scale=True,
            gain_corrected=False)
        cleaned = ccdproc.cosmicray_lacosmic(reduced, gain=1.0, readnoise=READ_NOISE,
                                             satlevel=SATURATION * GAIN, gain_apply=False)
        out.append((cleaned, np.asarray(cleaned.mask, dtype=bool)))
    expected = float(np.median(flat.data[CENTRE]) / np.mean(flat.data))
    return out, expected


def nightlog_night(frames: Night) -> list[tuple[CCDData, np.ndarray]]:
    """nightlog's library as a night uses it, cosmic rays on."""
    def ot(ccd: CCDData) -> CCDData:
        return trim_image(subtract_overscan(ccd, region=BIASSEC), DATASEC)

    def files(kind: str) -> list[FrameFile]:
        return [FrameFile(str(p)) for p, _ in frames[kind]]

    times = {kind: [t for _, t in frames[kind]] for kind in frames}
    bias = make_master_bias(files("bias"), prepare=ot).ccd
    dark = make_master_dark(files("dark"), times["dark"], bias=bias, prepare=ot).ccd
    flat = make_master_flat(files("flat"), bias=bias, dark=dark, exptimes=times["flat"],
                            prepare=ot).ccd
    params = ScienceParameters(gain=GAIN, read_noise=READ_NOISE, saturation=SATURATION,
                               overscan=OverscanParameters(region=BIASSEC),
                               cosmic_rays=CosmicRaySettings(), unit="electron")
    plane = master_plane(bias=bias, dark=dark, flat=flat, params=params)
    out = []
    for path, _ in frames["science"]:
        reduced = reduce_science(read_image(path), bias=bias, dark=dark, flat=flat,
                                 params=params, masters=plane)
        out.append((reduced.ccd, (reduced.bits & MaskBit.COSMIC_RAY) != 0))
    return out


def _best(func: Callable[[], Any], repeats: int) -> tuple[Any, float, float]:
    best: tuple[Any, float, float] = (None, np.inf, np.inf)
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        out = func()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        if wall < best[1]:
            best = (out, wall, cpu)
    return best


def compare(ours: list[tuple[CCDData, np.ndarray]],
            theirs: list[tuple[CCDData, np.ndarray]]) -> tuple[float, float, float]:
    """The factor between the two (the flats are normalised differently: ccdproc's
    ``flat_correct`` by the mean of the whole flat, nightlog by the median of its
    central half), the median |difference| / σ after it on pixels neither flags,
    and the share of ccdproc's cosmic-ray pixels nightlog flags too."""
    pulls, ratios, shared, total = [], [], 0, 0
    goods = []
    for (mine, _my_cr), (ref, ref_cr) in zip(ours, theirs, strict=True):
        good = ~(np.asarray(mine.mask, dtype=bool) | ref_cr)
        good &= np.isfinite(mine.data) & np.isfinite(ref.data) & (ref.data > 100)
        goods.append(good)
        ratios.append(float(np.median(mine.data[good] / ref.data[good])))
    factor = float(np.median(ratios))
    for (mine, my_cr), (ref, ref_cr), good in zip(ours, theirs, goods, strict=True):
        diff = np.abs(mine.data[good] - factor * ref.data[good])
        pulls.append(float(np.median(diff / mine.uncertainty.array[good])))
        shared += int(np.count_nonzero(my_cr & ref_cr))
        total += int(np.count_nonzero(ref_cr))
    return factor, max(pulls), shared / max(total, 1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1, help="runs; the best is reported")
    args = parser.parse_args(argv)
    print(f"machine: {os.cpu_count()} cores, load average "
          + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    with tempfile.TemporaryDirectory() as tmp:
        frames = simulate(Path(tmp))
        add_cosmic_rays(frames)
        (theirs, expected), t_wall, t_cpu = _best(lambda: ccdproc_night(frames),
                                                  args.repeats)
        ours, o_wall, o_cpu = _best(lambda: nightlog_night(frames), args.repeats)
    factor, pull, shared = compare(ours, theirs)
    assert abs(factor / expected - 1) < 2e-3, (
        f"the reductions differ by a factor {factor:.4f}, not the flats' {expected:.4f}")
    assert pull < 0.1, f"the reductions differ: median |Δ|/σ = {pull:.3f}"
    print(f"checked: nightlog = {factor:.4f} × ccdproc, the flats' normalisations predict "
          f"{expected:.4f} (central median against whole mean); after it, median "
          f"|Δ| / σ = {pull:.3f} on pixels neither flags (limit 0.1); "
          f"{100 * shared:.1f} % of ccdproc's cosmic-ray pixels flagged by nightlog too")
    print(f"\n{'':40s} {'wall s':>7s} {'CPU s':>7s}")
    print(f"{'ccdproc (astropy CCD guide)':40s} {t_wall:7.2f} {t_cpu:7.2f}")
    print(f"{'nightlog':40s} {o_wall:7.2f} {o_cpu:7.2f}")
    print(f"speed-up ccdproc / nightlog: {t_wall / o_wall:.2f} wall, {t_cpu / o_cpu:.2f} CPU "
          "(target ≥ 3)")


if __name__ == "__main__":
    main()
