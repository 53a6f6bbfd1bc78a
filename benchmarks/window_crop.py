"""Time cutting full-frame masters to a subarray frame's window, against ccdproc.

Run from the repository root::

    python benchmarks/window_crop.py [--size 4096] [--window 1024] [--repeat 5]

A master of ``--size`` x ``--size`` float32 pixels with uncertainty, mask and bit
plane is cut to a ``--window`` square by :func:`nightlog.reduction.window.crop_to_window`
and by ccdproc's ``trim_image`` on the same input (``CCDData`` slicing, which copies
data, uncertainty and mask), best of ``--repeat``. A last line times reducing the
window (:func:`~nightlog.reduction.science.reduce_science` with the three full masters
and their crops: bad pixels are still found on the whole masters) beside reducing the
full frame: what a window saves.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import ccdproc
import numpy as np
from astropy.nddata import CCDData, StdDevUncertainty

from nightlog.reduction.science import ScienceParameters, reduce_science
from nightlog.reduction.window import crop_to_window


def _best(func: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def _master(rng: np.random.Generator, size: int, level: float, unit: str) -> CCDData:
    flags = (rng.random((size, size)) < 0.001).astype(np.uint16)
    return CCDData(rng.normal(level, 0.01 * level + 1, (size, size)).astype(np.float32),
                   unit=unit, uncertainty=StdDevUncertainty(
                       np.full((size, size), 0.5, dtype=np.float32)),
                   mask=flags != 0, flags=flags)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--window", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    size, win = args.size, args.window
    y0 = x0 = (size - win) // 3
    crop = (y0, y0 + win, x0, x0 + win)
    bias = _master(rng, size, 1000.0, "adu")
    dark = _master(rng, size, 0.05, "adu")
    dark.header["EXPTIME"] = 1.0
    flat = _master(rng, size, 1.0, "")
    t_ours = _best(lambda: crop_to_window(bias, crop), args.repeat)
    t_ref = _best(lambda: ccdproc.trim_image(bias[y0:y0 + win, x0:x0 + win]), args.repeat)
    print(f"{'step':26s} {'nightlog s':>11s} {'reference s':>12s} {'ratio':>6s}")
    print(f"{'crop one master':26s} {t_ours:11.4f} {t_ref:12.4f} {t_ours / t_ref:6.2f}"
          "   (reference: ccdproc.trim_image)")

    raw_full = rng.normal(1400.0, 20.0, (size, size)).astype(np.float32)
    full = CCDData(raw_full, unit="adu")
    window = CCDData(np.ascontiguousarray(raw_full[y0:y0 + win, x0:x0 + win]), unit="adu")
    params = ScienceParameters(gain=2.0, read_noise=5.0, saturation=65535.0, exptime=30.0,
                               overscan=None, trim=None)

    def reduce_window() -> None:
        reduce_science(window, bias=bias, dark=dark, flat=flat, params=params,
                       crops={"bias": crop, "dark": crop, "flat": crop})

    def reduce_full() -> None:
        reduce_science(full, bias=bias, dark=dark, flat=flat, params=params)

    t_win = _best(reduce_window, max(1, args.repeat // 2))
    t_full = _best(reduce_full, 1)
    print(f"{'reduce window (crop incl.)':26s} {t_win:11.4f} {t_full:12.4f} "
          f"{t_win / t_full:6.2f}   (reference: the full frame; pixel ratio "
          f"{win * win / size / size:.3f})")


if __name__ == "__main__":
    main()
