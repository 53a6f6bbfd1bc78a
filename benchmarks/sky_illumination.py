"""Benchmark: nightlog's night-sky illumination model against the lecture's recipe.

Makes ``--frames`` flat-fielded science frames of LFC size (4128 x 2048 after the
trim, or ``--scale`` of it): a uniform sky seen through a 4 % illumination error,
stars dithered between frames, Poisson noise. Then, each in a fresh subprocess so
that its peak memory can be measured:

* nightlog ``night_sky_illumination(frames)`` (sources masked per frame on a local
  sky and grown, frames scaled by their sky, a clipped median, the 2-D polynomial);
* the lecture's recipe in plain numpy/astropy: each frame divided by its median, the
  stack masked above 3 sigma of the frame (``sigma_clip`` per frame), then
  ``sigma_clip(stack, cenfunc='median', axis=0)`` and ``numpy.ma.median``, and a
  ``Polynomial2D`` fitted by ``LinearLSQFitter`` to every sky pixel (no blocks).

It prints the time and peak resident memory growth of each, their ratio, how far
each model is from the true error, the machine's load and its cores.

Usage::

    python benchmarks/sky_illumination.py                  # 6 full-size frames
    python benchmarks/sky_illumination.py --scale 0.25     # quick run
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

LFC_SHAPE = (4128, 2048)
ROOT = Path(__file__).resolve().parent.parent


def _error(shape: tuple[int, int]) -> np.ndarray:
    y, x = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    err = 1 + 0.04 * (x / (shape[1] - 1) - 0.5) + 0.02 * (y / (shape[0] - 1) - 0.5)
    return (err / err.mean()).astype(np.float32)


def _simulate(folder: Path, n: int, shape: tuple[int, int], seed: int = 14) -> None:
    rng = np.random.default_rng(seed)
    ny, nx = shape
    err = _error(shape)
    n_stars = max(20, int(2000 * ny * nx / (LFC_SHAPE[0] * LFC_SHAPE[1])))
    sx, sy = rng.uniform(0, nx, n_stars), rng.uniform(0, ny, n_stars)
    flux = rng.lognormal(9.0, 1.0, n_stars)
    r = np.arange(-7, 8)
    psf = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * 1.8**2))
    psf /= psf.sum()
    for i in range(n):
        light = np.full(shape, 1500.0 * (1 + 0.05 * i), np.float32)
        for a, b, f in zip((sx + 40 * i) % (nx - 16) + 8, (sy + 25 * i) % (ny - 16) + 8, flux,
                           strict=True):
            ia, ib = int(a), int(b)
            light[ib - 7:ib + 8, ia - 7:ia + 8] += np.float32(f) * psf
        np.save(folder / f"frame{i:02d}.npy", rng.poisson(light * err).astype(np.float32))
    np.save(folder / "error.npy", err)


def _ours(folder: Path) -> np.ndarray:
    from astropy.nddata import CCDData

    from nightlog.reduction.sky_illumination import SkyFlatOptions, night_sky_illumination

    files = sorted(folder.glob("frame*.npy"))
    frames = [CCDData(np.load(f), unit="electron") for f in files]
    made = night_sky_illumination(frames, options=SkyFlatOptions(min_frames=len(frames)))
    return np.asarray(made.model.data)


def _lecture(folder: Path) -> np.ndarray:
    from astropy.modeling import fitting, models
    from astropy.stats import sigma_clip

    files = sorted(folder.glob("frame*.npy"))
    stack = []
    for f in files:
        data = np.load(f)
        data = data / np.median(data)
        stack.append(np.ma.masked_array(data, mask=sigma_clip(data, sigma=3.0).mask))
    masked = np.ma.stack(stack)
    combined = np.ma.median(sigma_clip(masked, sigma=3.0, cenfunc="median", axis=0), axis=0)
    ny, nx = combined.shape
    y, x = np.mgrid[0:ny, 0:nx]
    good = ~np.ma.getmaskarray(combined)
    sx, sy = 2.0 / (nx - 1), 2.0 / (ny - 1)
    fitted = fitting.LinearLSQFitter()(models.Polynomial2D(2), x[good] * sx - 1,
                                       y[good] * sy - 1, combined.data[good])
    model = fitted(x * sx - 1, y * sy - 1)
    return model / model.mean()


def _child(which: str, folder: Path) -> None:
    # Imports are not timed: both sides load astropy's modules first.
    import astropy.modeling.fitting
    import astropy.nddata
    import astropy.stats  # noqa: F401

    import nightlog.reduction.sky_illumination  # noqa: F401

    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    start = time.perf_counter()
    model = _ours(folder) if which == "nightlog" else _lecture(folder)
    elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    err = np.load(folder / "error.npy")
    print(json.dumps({"seconds": elapsed, "peak_bytes": peak - baseline,
                      "max_error": float(np.max(np.abs(model - err)))}))


def _run(which: str, folder: Path) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, __file__, "--child", which, str(folder)],
                         check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=6)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], Path(args.child[1]))
        return
    shape = (round(LFC_SHAPE[0] * args.scale), round(LFC_SHAPE[1] * args.scale))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _simulate(folder, args.frames, shape)
        load = os.getloadavg()
        ours, theirs = _run("nightlog", folder), _run("lecture", folder)
    print(f"{args.frames} frames of {shape[0]} x {shape[1]} float32; "
          f"load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores")
    print(f"{'':10} {'seconds':>8} {'peak MiB':>9} {'max |model - truth|':>20}")
    for name, r in (("nightlog", ours), ("lecture", theirs)):
        print(f"{name:10} {r['seconds']:>8.2f} {r['peak_bytes'] / 2**20:>9.0f} "
              f"{r['max_error']:>20.5f}")
    print(f"time ratio lecture / nightlog: {theirs['seconds'] / ours['seconds']:.2f}; "
          f"memory ratio: {theirs['peak_bytes'] / max(ours['peak_bytes'], 1):.2f}")


if __name__ == "__main__":
    main()
