"""Where the cosmic-ray detection misses, and where it flags what is no cosmic ray.

Runs :func:`detect_cosmic_rays` (nightlog's defaults, the reduction's bad pixels and
variance) on the frames of ``cosmics_settings.py`` and splits the injected cosmic-ray
pixels it leaves unmasked by what lies under them: the star's signal (in σ of the
sky), the charge of the pixel (in σ of its noise), a bad pixel beside it, how much of
its hit was found. The false flags are split the same way. A row's share is of all
cosmic-ray pixels (misses) or of all clean pixels (false flags, per million).

The "bound" line is what the same thresholds reach when the background is known
exactly: each pixel's residual is N(0, 1) plus its deposit in σ, seeds above
``seed_sigma``, grown into 8-neighbours above ``grow_sigma``, bad pixels left out. What
the detection leaves between its figures and the bound is the background estimate and
the decision rules, not the noise.

Run from the repository root::

    python benchmarks/cosmics_misses.py                      # 4 × 1024², one thread
    python benchmarks/cosmics_misses.py --shape 4128 2080 --seeds 1
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace

import numpy as np
from astropy.nddata import CCDData
from scipy import ndimage

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))

from cosmics_settings import GAIN, READ_NOISE, SATURATION, make_scene

from nightlog.reduction.cosmics import CosmicRaySettings, detect_cosmic_rays

SKY_SIGMA = float(np.sqrt(1500.0 + READ_NOISE**2))


def _near(mask: np.ndarray, radius: int) -> np.ndarray:
    return ndimage.binary_dilation(mask, np.ones((2 * radius + 1,) * 2, dtype=bool))


def _bound(scene: object, rng: np.random.Generator, seed_sigma: float,
           grow_sigma: float) -> np.ndarray:
    """Flags of a detector that knows the background (module docstring)."""
    residual = rng.normal(size=scene.data.shape) + scene.deposit_sigma  # type: ignore[attr-defined]
    bad = scene.bad  # type: ignore[attr-defined]
    flags = (residual > seed_sigma) & ~bad
    grow = (residual > grow_sigma) & ~bad
    for _ in range(8):
        more = ndimage.binary_dilation(flags, np.ones((3, 3), dtype=bool)) & grow
        if (more == flags).all():
            break
        flags = more | flags
    return flags


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--shape", type=int, nargs=2, metavar=("NY", "NX"), default=None)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-star-model", action="store_true",
                        help="without the star model (star_model=False)")
    parser.add_argument("--background-model", choices=("on", "off"), default=None,
                        help="background_model on or off (default: nightlog's default)")
    args = parser.parse_args(argv)
    shape = (args.size, args.size) if args.shape is None else tuple(args.shape)
    settings = CosmicRaySettings(threads=args.threads, star_model=not args.no_star_model)
    if args.background_model is not None:
        settings = replace(settings, background_model=args.background_model == "on")
    rows: dict[str, list[int]] = {}
    false_rows: dict[str, list[int]] = {}
    total = clean_total = 0
    bound_missed = bound_false = 0
    bound_rng = np.random.default_rng(1)

    def add(table: dict[str, list[int]], label: str, hit: np.ndarray, where: np.ndarray
            ) -> None:
        counts = table.setdefault(label, [0, 0])
        counts[0] += int(hit[where].sum())
        counts[1] += int(where.sum())

    for seed in range(args.first_seed, args.first_seed + args.seeds):
        scene = make_scene(seed, shape)
        flags, _ = detect_cosmic_rays(
            CCDData(scene.data, unit="adu"), gain=GAIN, read_noise=READ_NOISE,
            saturation=SATURATION, bad_pixels=scene.bad, variance=scene.variance,
            settings=settings)
        truth = scene.cr_truth
        missed = truth & ~(flags | scene.bad)
        bound = _bound(scene, bound_rng, settings.seed_sigma, settings.grow_sigma)
        bound_missed += int((truth & ~(bound | scene.bad)).sum())
        bound_false += int((bound & scene.clean).sum())
        total += int(truth.sum())
        star = scene.star_e / SKY_SIGMA
        near_bad = _near(scene.bad, 1) & ~scene.bad
        hits, count = ndimage.label(scene.deposit_sigma > 1, np.ones((3, 3), dtype=bool))
        found_share = np.zeros(count + 1)
        if count:
            index = np.arange(1, count + 1)
            found_share[1:] = (ndimage.sum(flags & truth, hits, index)
                               / np.maximum(ndimage.sum(truth, hits, index), 1))
        share = found_share[hits]
        add(rows, "all", missed, truth)
        for low, high in ((0, 5), (5, 20), (20, 100), (100, np.inf)):
            add(rows, f"star {low}-{high} σ sky", missed, truth & (star >= low) & (star < high))
        for low, high in ((5, 7), (7, 10), (10, 20), (20, np.inf)):
            add(rows, f"charge {low}-{high} σ", missed,
                truth & (scene.deposit_sigma >= low) & (scene.deposit_sigma < high))
        add(rows, "beside a bad pixel", missed, truth & near_bad)
        add(rows, "hit wholly missed", missed, truth & (share == 0))
        add(rows, "hit partly found", missed, truth & (share > 0))

        clean = scene.clean
        clean_total += int(clean.sum())
        add(false_rows, "all", flags, clean)
        for low, high in ((0, 5), (5, 20), (20, 100), (100, np.inf)):
            add(false_rows, f"star {low}-{high} σ sky", flags,
                clean & (star >= low) & (star < high))
        add(false_rows, "beside a bad pixel", flags, clean & near_bad)
        add(false_rows, "beside a cosmic ray (2 px)", flags, clean & _near(truth, 2))

    print(f"{args.seeds} frame(s) of {shape[1]} × {shape[0]}: {total} cosmic-ray pixels, "
          f"{clean_total} clean pixels")
    print(f"nightlog: complete {1 - rows['all'][0] / max(total, 1):.4f}, false "
          f"{1e6 * false_rows['all'][0] / max(clean_total, 1):.1f} ppm; bound (background "
          f"known): complete {1 - bound_missed / max(total, 1):.4f}, false "
          f"{1e6 * bound_false / max(clean_total, 1):.1f} ppm")
    print(f"{'misses':28s} {'missed':>7s} {'of':>8s} {'rate':>7s} {'share of all':>13s}")
    for label, (miss, where) in rows.items():
        print(f"{label:28s} {miss:7d} {where:8d} {miss / max(where, 1):7.4f} "
              f"{miss / max(total, 1):13.4f}")
    print(f"\n{'false flags':28s} {'flagged':>7s} {'of':>9s} {'ppm here':>9s} {'ppm of all':>11s}")
    for label, (flag, where) in false_rows.items():
        print(f"{label:28s} {flag:7d} {where:9d} {1e6 * flag / max(where, 1):9.1f} "
              f"{1e6 * flag / max(clean_total, 1):11.1f}")


if __name__ == "__main__":
    main()
