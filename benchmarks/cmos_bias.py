"""A CMOS master bias with its per-pixel read-noise map, against the plain master bias
and against numpy's per-pixel standard deviation of the same stack, in one run.

Bias frames of a 12-bit CMOS sensor stored in 16 bits (values x16, an offset pattern,
a few random-telegraph pixels) are written to FITS files; then, each the median of
``--repeat`` runs:

1. ``make_master_bias(files)``: the plain master (the reference of the pipeline);
2. ``make_master_bias(files, noise_map=True, ...)``: the master and its map (the
   frames are read a second time, one at a time);
3. numpy: every frame read into one cube, ``np.std(cube, axis=0, ddof=1)``
   (the hand-written reference of the map alone; it holds the whole stack in memory).

Printed: seconds of each, the map's extra time as a ratio of the plain build, and the
map alone against numpy's. Run from the repository root::

    python benchmarks/cmos_bias.py                  # 9 frames of 2822 x 4144 / 2
    python benchmarks/cmos_bias.py --scale 1        # the full ASI294MC frame
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from astropy.io import fits

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from nightlog.reduction.masters import make_master_bias
from nightlog.store.images import FrameFile, read_image


def write_biases(folder: Path, n: int, shape: tuple[int, int]) -> list[Path]:
    rng = np.random.default_rng(1)
    pedestal = 48 + rng.normal(0, 2.0, shape[1])[None, :] + rng.normal(0, 1.5, shape)
    rtn = rng.random(shape) < 1e-4
    paths = []
    for i in range(n):
        native = pedestal + rng.normal(0, 0.9, shape) + 4.0 * (rtn & (rng.random(shape) < 0.5))
        data = (np.clip(np.round(native), 0, 4095) * 16).astype(np.uint16)
        path = folder / f"bias_{i:03d}.fits"
        fits.PrimaryHDU(data).writeto(path)
        paths.append(path)
    return paths


def timed(action: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=9)
    parser.add_argument("--scale", type=float, default=0.5)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    shape = (round(2822 * args.scale), round(4144 * args.scale))
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_biases(Path(tmp), args.frames, shape)

        def plain() -> object:
            return make_master_bias([FrameFile(str(p), 0) for p in paths])

        def with_map() -> object:
            return make_master_bias([FrameFile(str(p), 0) for p in paths], noise_map=True,
                                    quantisation_step=16.0)

        def numpy_std() -> object:
            cube = np.stack([np.asarray(read_image(str(p), 0).data, dtype=np.float32)
                             for p in paths])
            return np.std(cube, axis=0, ddof=1)

        t_plain = timed(plain, args.repeat)
        t_map = timed(with_map, args.repeat)
        t_numpy = timed(numpy_std, args.repeat)
    print(f"{args.frames} bias frames of {shape[0]} x {shape[1]}, median of {args.repeat}")
    print(f"plain master bias            {t_plain:8.3f} s")
    print(f"master bias with its map     {t_map:8.3f} s   ratio to plain {t_map / t_plain:5.2f}")
    print(f"the map alone (difference)   {t_map - t_plain:8.3f} s")
    print(f"numpy std of the stack       {t_numpy:8.3f} s   map alone / numpy "
          f"{(t_map - t_plain) / t_numpy:5.2f}")


if __name__ == "__main__":
    main()
