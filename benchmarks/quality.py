"""The quality step beside the reduction of the same full-size frame, as a ratio.

The raw LFC-size frame and its masters come from ``benchmarks/reduce_frame.py``
(4128 × 2048 data pixels, 1500 stars of 3--5 px FWHM, cosmic rays, hot pixels,
vignetting). Each run reduces it with ``reduce_science`` (overscan, trim, bias,
dark, flat, bad pixels, cosmic rays) and then measures its quality with
``measure_quality`` (sep background and extraction, Moffat fits of the point
sources), the same frame and the same process; the issue's target is a quality
step of at most 10 % of the reduction.

Run from the repository root::

    python benchmarks/quality.py                 # best of 2 runs
    python benchmarks/quality.py --repeats 3 --threads 1
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))

from reduce_frame import GAIN, READ_NOISE, SATURATION, make_frames

from nightlog.reduction.cosmics import CosmicRaySettings
from nightlog.reduction.quality import measure_quality
from nightlog.reduction.science import (
    OverscanParameters,
    ScienceParameters,
    reduce_science,
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="runs; the best is reported")
    parser.add_argument("--threads", type=int, default=None,
                        help="OpenMP threads for astroscrappy (default: runtime's)")
    args = parser.parse_args(argv)
    raw, bias, dark, flat = make_frames()
    params = ScienceParameters(
        gain=GAIN, read_noise=READ_NOISE, saturation=SATURATION,
        overscan=OverscanParameters(skip_columns=7),
        cosmic_rays=CosmicRaySettings(threads=args.threads))
    reduce_best = quality_best = float("inf")
    quality = None
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        reduced = reduce_science(raw, bias=bias, dark=dark, flat=flat, params=params)
        reduce_best = min(reduce_best, time.perf_counter() - t0)
        t0 = time.perf_counter()
        quality = measure_quality(reduced.ccd, bits=reduced.bits, gain=GAIN,
                                  pixel_scale_arcsec=0.182, airmass=1.2)
        quality_best = min(quality_best, time.perf_counter() - t0)
    assert quality is not None
    print(f"frame {raw.shape[0]} × {raw.shape[1]}: {quality.n_sources} sources, "
          f"{quality.n_psf_stars} fitted, FWHM {quality.fwhm_px:.2f} px "
          f"(stars drawn at 3-5 px), sky {quality.sky:.1f} ADU, "
          f"{quality.cosmic_ray_pixels} cosmic-ray pixels")
    print(f"{'reduce_science (the reduction)':40s} {reduce_best:7.3f} s")
    print(f"{'measure_quality (the quality step)':40s} {quality_best:7.3f} s")
    print(f"{'ratio quality / reduction':40s} {quality_best / reduce_best:7.3f}   "
          "(target ≤ 0.10)")


if __name__ == "__main__":
    main()
