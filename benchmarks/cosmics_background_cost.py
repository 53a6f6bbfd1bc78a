"""What the background model costs: the whole cosmic-ray step on one full frame, one
thread, with and without ``background_model``, in alternating pairs (CPU seconds).

Run from the repository root::

    python benchmarks/cosmics_background_cost.py --pairs 4
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace

import numpy as np
from astropy.nddata import CCDData

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))

from cosmics_settings import GAIN, READ_NOISE, SATURATION, make_scene

from nightlog.reduction.cosmics import CosmicRaySettings, detect_cosmic_rays
from nightlog.reduction.cosmics_background import refine_on_background


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=2, metavar=("NY", "NX"),
                        default=(2080, 4128))
    parser.add_argument("--pairs", type=int, default=4)
    args = parser.parse_args(argv)
    scene = make_scene(0, tuple(args.shape))
    ccd = CCDData(scene.data, unit="adu")
    cpu: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(args.pairs):
        for on in (False, True):
            settings = replace(CosmicRaySettings(threads=1), background_model=on)
            start = time.process_time()
            detect_cosmic_rays(ccd, gain=GAIN, read_noise=READ_NOISE, saturation=SATURATION,
                               bad_pixels=scene.bad, variance=scene.variance,
                               settings=settings)
            cpu[on].append(time.process_time() - start)
    alone = []
    flagged = np.zeros(scene.data.shape, dtype=bool)
    for _ in range(args.pairs):
        start = time.process_time()
        refine_on_background(scene.data, scene.variance, scene.bad, flagged,
                             seed_sigma=4.5, grow_sigma=2.5)
        alone.append(time.process_time() - start)
    print(f"{args.shape[1]} × {args.shape[0]}, one thread, {args.pairs} pairs, CPU s")
    for on in (False, True):
        print(f"background_model={on!s:5s}: " + " ".join(f"{t:.2f}" for t in cpu[on])
              + f"  (median {np.median(cpu[on]):.2f})")
    extra = np.array(cpu[True]) - np.array(cpu[False])
    print("difference per pair: " + " ".join(f"{t:+.2f}" for t in extra))
    print("refine_on_background alone: " + " ".join(f"{t:.3f}" for t in alone))


if __name__ == "__main__":
    main()
