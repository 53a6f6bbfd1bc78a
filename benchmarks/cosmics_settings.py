"""What astroscrappy's settings cost and buy on frames with known cosmic rays.

Builds reduced LFC-like frames (sky, Moffat stars of 3--5 px FWHM, some saturated,
vignetted flat, hot pixels whose dark residual survives dark subtraction) with
injected cosmic rays of known footprint, runs :func:`detect_cosmic_rays` with one
setting changed at a time, and prints per setting:

* seconds per frame, wall clock and CPU (best of three; the CPU time is the steadier
  figure on a shared machine), and the ratio of CPU time to astroscrappy's own
  defaults measured in the same run,
* completeness: fraction of injected cosmic-ray pixels (deposit > 5 σ of the pixel's
  noise) that end up masked -- flagged, or already a known bad pixel (a hit on a hot
  pixel is masked by its HOT bit) -- and, as "found", the fraction flagged,
* false-flag fractions of clean pixels (not within one pixel of any deposit
  > 1 σ): all, on stars (star signal > 5 σ of the sky), on hot-pixel residuals,
  and in the vignetted corners (flat < 0.6).

Run from the repository root::

    python benchmarks/cosmics_settings.py --threads 1   # 1024 × 1024, 2 seeds
    python benchmarks/cosmics_settings.py --size 2048 --seeds 1
    python benchmarks/cosmics_settings.py --only chosen --seeds 4 --threads 1
    python benchmarks/cosmics_settings.py --shape 4128 2080 --seeds 1 --only chosen
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, replace

import numpy as np
from astropy.nddata import CCDData

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from nightlog.reduction.cosmics import CosmicRaySettings, detect_cosmic_rays
from nightlog.threads import openmp_threads

GAIN = 2.0  # e-/ADU (LFC chip 0, camera specification)
READ_NOISE = 11.0  # e-
SATURATION = 65535.0 - 1140.0  # ADU above the bias level
EXPTIME = 300.0  # s
SKY_E = 1500.0  # e- per pixel in EXPTIME


@dataclass
class Scene:
    """A reduced frame with what went into it."""

    data: np.ndarray  # ADU, float32, bias/dark/flat corrected
    variance: np.ndarray  # ADU², propagated
    bad: np.ndarray  # bool: hot pixels found in the master dark, saturated raw pixels
    cr_truth: np.ndarray  # bool: cosmic-ray pixels to recover
    clean: np.ndarray  # bool: pixels nothing touched
    stars: np.ndarray  # bool: clean pixels on stars
    hot: np.ndarray  # bool: hot pixels (clean of cosmic rays)
    vignetted: np.ndarray  # bool: clean pixels where the flat is below 0.6
    star_e: np.ndarray | None = None  # e-: each pixel's star signal (after the flat)
    deposit_sigma: np.ndarray | None = None  # each pixel's cosmic-ray charge ÷ its noise


def _moffat_stars(rng: np.random.Generator, shape: tuple[int, int], count: int) -> np.ndarray:
    """Stars in electrons: Moffat β = 3, FWHM 3--5 px, fluxes log-uniform 1e3--5e6 e-."""
    ny, nx = shape
    image = np.zeros(shape)
    beta = 3.0
    for _ in range(count):
        fwhm = rng.uniform(3.0, 5.0)
        alpha = fwhm / (2 * np.sqrt(2 ** (1 / beta) - 1))
        flux = 10 ** rng.uniform(3, 6.7)
        x0, y0 = rng.uniform(0, nx), rng.uniform(0, ny)
        half = int(8 * fwhm)
        ys = slice(max(0, int(y0) - half), min(ny, int(y0) + half + 1))
        xs = slice(max(0, int(x0) - half), min(nx, int(x0) + half + 1))
        yy, xx = np.mgrid[ys, xs]
        r2 = ((xx + 0.5 - x0) ** 2 + (yy + 0.5 - y0) ** 2) / alpha**2
        image[ys, xs] += flux * (beta - 1) / (np.pi * alpha**2) * (1 + r2) ** -beta
    return image


def cosmic_ray_deposits(rng: np.random.Generator, shape: tuple[int, int],
                        count: int) -> np.ndarray:
    """Charge (e-) of ``count`` cosmic-ray hits on a thinned CCD.

    Total charge per hit is log-normal (median 1500 e-, σ_ln 0.7, 10 % of hits ×5:
    a Landau-like tail); the track crosses a 1.2-pixel-thick depletion layer at a
    zenith angle from the cos² muon distribution, so most hits cover 1--3 pixels and a
    few are short streaks; charge diffuses by σ = 0.35 px.
    """
    ny, nx = shape
    deposit = np.zeros(shape)
    totals = rng.lognormal(np.log(1500.0), 0.7, count)
    totals[rng.random(count) < 0.1] *= 5
    # cos²θ on [0, π/2): accept-reject.
    theta = np.empty(count)
    filled = 0
    while filled < count:
        t = rng.uniform(0, np.pi / 2, 4 * count)
        keep = t[rng.random(t.size) < np.cos(t) ** 2][: count - filled]
        theta[filled:filled + keep.size] = keep
        filled += keep.size
    lengths = np.minimum(1.2 * np.tan(theta), 12.0)
    phis = rng.uniform(0, 2 * np.pi, count)
    # Hits start inside the frame's outer 14 pixels: astroscrappy does not search the
    # outermost pixels, a limitation this study is not about.
    x0 = rng.uniform(14, nx - 14, count)
    y0 = rng.uniform(14, ny - 14, count)
    for total, length, phi, x, y in zip(totals, lengths, phis, x0, y0, strict=True):
        n = max(20, int(40 * length))
        s = rng.uniform(0, 1, n) * length
        xs = x + s * np.cos(phi) + rng.normal(0, 0.35, n)
        ys = y + s * np.sin(phi) + rng.normal(0, 0.35, n)
        inside = (xs >= 0) & (xs < nx) & (ys >= 0) & (ys < ny)
        np.add.at(deposit, (ys[inside].astype(int), xs[inside].astype(int)), total / n)
    return deposit


def _vignetting(shape: tuple[int, int]) -> np.ndarray:
    """Normalised flat: 1 in the centre falling to ~0.35 in the corners."""
    ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    r = np.hypot((xx - nx / 2) / (nx / 2), (yy - ny / 2) / (ny / 2)) / np.sqrt(2)
    return 1.0 - 0.65 * np.clip((r - 0.55) / 0.45, 0, 1) ** 2


def make_scene(seed: int, shape: tuple[int, int], cr_per_mpix: float = 600.0) -> Scene:
    """A reduced frame with known cosmic rays, stars, hot pixels and vignetting."""
    rng = np.random.default_rng(seed)
    npix = shape[0] * shape[1]
    flat = _vignetting(shape) * rng.normal(1.0, 0.01, shape)
    stars = _moffat_stars(rng, shape, int(300 * npix / 1e6))
    dark_rate = np.full(shape, 0.002)
    hot = rng.random(shape) < 1e-3
    dark_rate[hot] = 10 ** rng.uniform(0, 1.7, hot.sum())  # 1--50 e-/s
    cosmic = cosmic_ray_deposits(rng, shape, int(cr_per_mpix * npix / 1e6))

    # This exposure: dark current 3 % above the master's (temperature drift), so hot
    # pixels leave a residual on top of their Poisson noise.
    signal = (SKY_E + stars) * flat + 1.03 * dark_rate * EXPTIME
    electrons = rng.poisson(signal).astype(float) + cosmic
    electrons += rng.normal(0, READ_NOISE, shape)
    raw_adu = electrons / GAIN
    saturated = raw_adu >= SATURATION
    raw_adu = np.minimum(raw_adu, SATURATION)

    # Masters: dark rate from ten 300 s darks, flat good to 0.2 %.
    ndark = 10
    dark_sigma = np.sqrt(dark_rate * EXPTIME + READ_NOISE**2) / np.sqrt(ndark) / EXPTIME
    master_dark = dark_rate + rng.normal(0, 1, shape) * dark_sigma  # e-/s
    master_flat = flat * rng.normal(1.0, 0.002, shape)

    dark_adu = master_dark * EXPTIME / GAIN
    counts = raw_adu - dark_adu
    data = (counts / master_flat).astype(np.float32)
    var_counts = (np.maximum(counts, 0) / GAIN + (READ_NOISE / GAIN) ** 2
                  + (dark_sigma * EXPTIME / GAIN) ** 2)
    variance = (var_counts / master_flat**2 + (data * 0.002) ** 2).astype(np.float32)

    # Bad pixels as the reduction finds them: hot in the master dark (5 σ above the
    # typical dark, in electrons per exposure), plus raw saturation.
    typical = np.median(master_dark)
    found_hot = (master_dark - typical) * EXPTIME > 5 * np.sqrt(SKY_E + READ_NOISE**2)
    bad = found_hot | saturated

    pixel_sigma = np.sqrt((SKY_E + stars) * flat + dark_rate * EXPTIME + READ_NOISE**2)
    cr_truth = (cosmic > 5 * pixel_sigma) & ~saturated
    touched = cosmic > pixel_sigma
    grown = touched.copy()
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            grown |= np.roll(np.roll(touched, dy, 0), dx, 1)
    clean = ~grown & ~saturated
    sky_sigma = np.sqrt(SKY_E + READ_NOISE**2)
    return Scene(
        data=data,
        variance=variance,
        bad=bad,
        cr_truth=cr_truth,
        clean=clean,
        stars=clean & (stars * flat > 5 * sky_sigma),
        hot=clean & hot & (dark_rate * EXPTIME > 5 * sky_sigma),
        vignetted=clean & (flat < 0.6),
        star_e=(stars * flat).astype(np.float32),
        deposit_sigma=(cosmic / pixel_sigma).astype(np.float32),
    )


@dataclass
class Score:
    seconds: float
    cpu: float
    completeness: float
    found: float
    false_all: float
    false_stars: float
    false_hot: float
    false_vignetted: float


Informed = tuple[bool, bool]  # (pass bad pixels as inmask, pass variance as invar)
NAIVE: Informed = (False, False)
INFORMED: Informed = (True, True)


def score(scene: Scene, settings: CosmicRaySettings, informed: Informed,
          repeats: int = 3) -> Score:
    """Run detection on ``scene``; time is the best of ``repeats`` (the machine is shared)."""
    ccd = CCDData(scene.data, unit="adu")
    seconds = cpu = np.inf
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        flags, _ = detect_cosmic_rays(
            ccd, gain=GAIN, read_noise=READ_NOISE, saturation=SATURATION,
            bad_pixels=scene.bad if informed[0] else None,
            variance=scene.variance if informed[1] else None,
            settings=settings,
        )
        seconds = min(seconds, time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - start_cpu)

    def rate(where: np.ndarray) -> float:
        return float(flags[where].mean()) if where.any() else float("nan")

    masked = (flags | scene.bad)[scene.cr_truth].mean()
    return Score(seconds, cpu, float(masked), rate(scene.cr_truth), rate(scene.clean),
                 rate(scene.stars), rate(scene.hot), rate(scene.vignetted))


def _average(scores: list[Score]) -> Score:
    fields = Score.__dataclass_fields__
    return Score(**{name: float(np.nanmean([getattr(s, name) for s in scores]))
                    for name in fields})


# astroscrappy's own defaults, the reference every row is compared with.
# The rows varying astroscrappy's settings leave nightlog's second look out.
ASTROSCRAPPY_DEFAULTS = CosmicRaySettings(niter=4, sepmed=True, cleantype="meanmask",
                                          fsmode="median", sigclip=4.5, objlim=5.0,
                                          refine=False)


def variants() -> list[tuple[str, CosmicRaySettings, Informed]]:
    """Label, settings, informed? -- one change at a time from astroscrappy's defaults."""
    base = ASTROSCRAPPY_DEFAULTS
    rows: list[tuple[str, CosmicRaySettings, Informed]] = [
        ("astroscrappy defaults, naive call", base, NAIVE),
        ("astroscrappy defaults, + inmask", base, (True, False)),
        ("astroscrappy defaults, + invar", base, (False, True)),
        ("astroscrappy defaults, + inmask + invar", base, INFORMED),
    ]
    rows += [(f"niter={n}", replace(base, niter=n), INFORMED) for n in (1, 2, 3)]
    rows += [("sepmed=False", replace(base, sepmed=False), INFORMED)]
    rows += [(f"cleantype={c}", replace(base, cleantype=c), INFORMED)
             for c in ("median", "medmask", "idw")]
    rows += [("fsmode=convolve (gauss 4 px)",
              replace(base, fsmode="convolve", psffwhm=4.0, psfsize=9), INFORMED)]
    rows += [(f"sigclip={s}", replace(base, sigclip=s), INFORMED) for s in (3.5, 4.0, 5.0, 6.0)]
    rows += [(f"objlim={o}", replace(base, objlim=o), INFORMED) for o in (2.0, 3.0, 8.0)]
    rows += [("niter=2, sepmed=False", replace(base, niter=2, sepmed=False), INFORMED)]
    rows += [("niter=2, sigclip=4.0", replace(base, niter=2, sigclip=4.0), INFORMED)]
    rows += [("niter=1, sigclip=4.0", replace(base, niter=1, sigclip=4.0), INFORMED)]
    chosen = CosmicRaySettings()
    rows += [("chosen: nightlog defaults", chosen, INFORMED)]
    rows += [("chosen, naive call", chosen, NAIVE)]
    rows += [("chosen, refine=False (L.A.Cosmic alone)", replace(chosen, refine=False),
              INFORMED)]
    rows += [("chosen, star_model=False", replace(chosen, star_model=False), INFORMED)]
    rows += [(f"chosen, seed_sigma={t}", replace(chosen, seed_sigma=t), INFORMED)
             for t in (4.0, 5.0)]
    rows += [(f"chosen, grow_sigma={t}", replace(chosen, grow_sigma=t), INFORMED)
             for t in (2.0, 3.0)]
    rows += [(f"chosen, psf_contrast={r}", replace(chosen, psf_contrast=r), INFORMED)
             for r in (1.1, 1.6)]
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024, help="frame side in pixels")
    parser.add_argument("--seeds", type=int, default=2, help="frames per setting")
    parser.add_argument("--shape", type=int, nargs=2, metavar=("NY", "NX"), default=None,
                        help="frame shape instead of --size (full LFC frame: 4128 2080)")
    parser.add_argument("--threads", type=int, default=None,
                        help="OpenMP threads for every row (default: runtime's)")
    parser.add_argument("--only", default=None,
                        help="run only the rows whose label contains this text (the "
                             "reference row always runs)")
    parser.add_argument("--repeats", type=int, default=3, help="timings per frame (best)")
    args = parser.parse_args(argv)

    one, five, fifteen = os.getloadavg()
    print(f"load {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores")
    shape = (args.size, args.size) if args.shape is None else tuple(args.shape)
    scenes = [make_scene(seed, shape) for seed in range(args.seeds)]
    truth = sum(int(s.cr_truth.sum()) for s in scenes)
    print(f"{args.seeds} frame(s) of {shape[1]} × {shape[0]}; {truth} cosmic-ray pixels, "
          f"{sum(int(s.hot.sum()) for s in scenes)} hot pixels, "
          f"{sum(int(s.stars.sum()) for s in scenes)} star pixels")
    header = (f"{'setting':42s} {'s/frame':>8s} {'cpu s':>6s} {'ratio':>6s} {'complete':>9s} "
              f"{'found':>6s} {'false all':>10s} {'stars':>8s} {'hot':>8s} {'vignet':>8s}")
    print(header)
    print("-" * len(header))
    reference: Score | None = None
    for index, (label, settings, informed) in enumerate(variants()):
        if index and args.only is not None and args.only not in label:
            continue
        settings = replace(settings, threads=args.threads)
        result = _average([score(scene, settings, informed, args.repeats)
                           for scene in scenes])
        if reference is None:
            reference = result
        print(f"{label:42s} {result.seconds:8.2f} {result.cpu:6.2f} "
              f"{result.cpu / reference.cpu:6.2f} "
              f"{result.completeness:9.4f} {result.found:6.3f} {result.false_all:10.2e} "
              f"{result.false_stars:8.2e} {result.false_hot:8.2e} "
              f"{result.false_vignetted:8.2e}")

    print(f"load {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print("\nOpenMP threads (chosen settings, first frame):")
    for threads in (1, 2):
        with openmp_threads(threads):
            result = score(scenes[0], CosmicRaySettings(), INFORMED)
        print(f"  threads={threads}: {result.seconds:.2f} s")


if __name__ == "__main__":
    main()
