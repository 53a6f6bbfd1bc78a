"""Does growing L.A.Cosmic's detections into sharp, faint neighbours raise completeness?

An experiment, not part of nightlog: after :func:`detect_cosmic_rays` (nightlog's
call, the reference every row is compared with), each detection grows, twice, into its
3 × 3 neighbours whose excess over the local background of the cleaned image (5 × 5
median), in units of the propagated noise, exceeds ``t`` AND whose excess is more
than ``r`` times the fine structure there (median 3 minus median 7 of it, as
L.A.Cosmic's, in the same units): sharper than the PSF, so not a star's wing.

On the frames of ``benchmarks/cosmics_settings.py`` (the same simulator, truth and
scores) it prints, per L.A.Cosmic ``sigclip`` and growth: completeness, false flags
on clean pixels and on stars (ppm), CPU seconds per frame and their ratio to the
detection alone, measured in the same run; and the machine's load and cores.

Run from the repository root::

    python benchmarks/cosmics_growth.py                # 1024 × 1024, 2 seeds
    python benchmarks/cosmics_growth.py --sigclip 4.5 5.0 5.5
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace

import numpy as np
from astropy.nddata import CCDData
from scipy import ndimage

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))

from cosmics_settings import GAIN, READ_NOISE, SATURATION, Scene, make_scene

from nightlog.reduction.cosmics import CosmicRaySettings, detect_cosmic_rays


def grow(scene: Scene, cleaned: np.ndarray, mask: np.ndarray, t: float, r: float,
         steps: int = 2) -> np.ndarray:
    """``mask`` grown ``steps`` times into neighbours above ``t`` σ and ``r`` × the
    fine structure (see the module's docstring)."""
    noise = np.sqrt(scene.variance)
    background = ndimage.median_filter(cleaned, 5)
    excess = (scene.data - background) / noise
    median3 = ndimage.median_filter(scene.data, 3)
    fine = (median3 - ndimage.median_filter(median3, 7)) / noise
    eligible = (excess > t) & (excess / np.maximum(fine, 0.1) > r) & ~scene.bad
    out = mask.copy()
    for _ in range(steps):
        out |= ndimage.binary_dilation(out, np.ones((3, 3), bool)) & eligible
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024, help="frame side in pixels")
    parser.add_argument("--seeds", type=int, default=2, help="frames")
    parser.add_argument("--sigclip", type=float, nargs="+", default=[4.5, 5.0],
                        help="L.A.Cosmic sigclip values (σ)")
    parser.add_argument("--threads", type=int, default=1, help="OpenMP threads")
    args = parser.parse_args(argv)
    scenes = [make_scene(seed, (args.size, args.size)) for seed in range(args.seeds)]
    print(f"{args.seeds} frame(s) of {args.size} × {args.size}; "
          f"{sum(int(s.cr_truth.sum()) for s in scenes)} cosmic-ray pixels; "
          f"load {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    header = (f"{'setting':34s} {'complete':>9s} {'false ppm':>10s} {'stars ppm':>10s} "
              f"{'cpu s':>6s} {'ratio':>6s}")
    print(header)
    print("-" * len(header))
    growths = [None] + [(t, r) for t in (2.5, 3.0) for r in (1.5, 3.0)]
    for sigclip in args.sigclip:
        settings = replace(CosmicRaySettings(), sigclip=sigclip, threads=args.threads)
        rows: dict[str, list[tuple[float, ...]]] = {}
        for scene in scenes:
            start = time.process_time()
            flags, cleaned = detect_cosmic_rays(
                CCDData(scene.data, unit="adu"), gain=GAIN, read_noise=READ_NOISE,
                saturation=SATURATION, bad_pixels=scene.bad, variance=scene.variance,
                settings=settings)
            detect_cpu = time.process_time() - start
            for growth in growths:
                start = time.process_time()
                mask = flags if growth is None else grow(
                    scene, np.asarray(cleaned.data, dtype=np.float32), flags, *growth)
                cpu = detect_cpu + time.process_time() - start
                label = (f"sigclip={sigclip:g}" if growth is None
                         else f"sigclip={sigclip:g} + grow t={growth[0]:g} r={growth[1]:g}")
                rows.setdefault(label, []).append((
                    float((mask | scene.bad)[scene.cr_truth].mean()),
                    float(mask[scene.clean].mean()), float(mask[scene.stars].mean()),
                    cpu, detect_cpu))
        for label, values in rows.items():
            complete, false, stars, cpu, reference = np.mean(values, axis=0)
            print(f"{label:34s} {complete:9.4f} {false * 1e6:10.1f} {stars * 1e6:10.1f} "
                  f"{cpu:6.2f} {cpu / reference:6.2f}")


if __name__ == "__main__":
    main()
