"""Time the per-frame reduction steps at full LFC size against ccdproc.

Run from the repository root::

    python benchmarks/reduction_steps.py [--repeat N]

Each line prints nightlog's best time, ccdproc's best time in the same run on the
same inputs, and their ratio (below 1: nightlog is faster). ccdproc works in
float64 and nightlog in float32, which accounts for much of the difference.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import ccdproc
import numpy as np
from astropy import units as u
from astropy.nddata import CCDData, StdDevUncertainty

from nightlog.reduction.calibrate import flat_correct, subtract_bias, subtract_dark
from nightlog.reduction.overscan import subtract_overscan
from nightlog.reduction.trim import trim_image
from nightlog.reduction.uncertainty import create_uncertainty

SHAPE = (4128, 2080)  # Palomar LFC chip with overscan
OVERSCAN = "[2056:2080,1:4128]"  # full height: ccdproc needs the overscan on every row
DATASEC = "[1:2048,1:4128]"


def _best(func: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    repeat = parser.parse_args().repeat
    rng = np.random.default_rng(0)
    raw = CCDData(rng.normal(1140, 5, SHAPE).astype(np.uint16), unit="adu")
    raw64 = CCDData(raw.data.astype(np.float64), unit="adu")
    trimmed = trim_image(subtract_overscan(raw, region=OVERSCAN), DATASEC)
    frame = create_uncertainty(trimmed, gain=2.0, read_noise=11.0)
    frame64 = CCDData(frame.data.astype(np.float64), unit="adu",
                      uncertainty=StdDevUncertainty(frame.uncertainty.array.astype(np.float64)))
    small = frame.shape
    master = CCDData(rng.normal(0, 1, small).astype(np.float32), unit="adu",
                     uncertainty=StdDevUncertainty(np.full(small, 0.5, np.float32)))
    master64 = CCDData(master.data.astype(np.float64), unit="adu",
                       uncertainty=StdDevUncertainty(np.full(small, 0.5)))
    flat = CCDData(rng.normal(1, 0.01, small).astype(np.float32), unit="",
                   uncertainty=StdDevUncertainty(np.full(small, 0.001, np.float32)))
    flat64 = CCDData(flat.data.astype(np.float64), unit="",
                     uncertainty=StdDevUncertainty(np.full(small, 0.001)))
    cases: list[tuple[str, Callable[[], Any], Callable[[], Any]]] = [
        ("overscan median/row",
         lambda: subtract_overscan(raw, region=OVERSCAN),
         lambda: ccdproc.subtract_overscan(raw64, fits_section=OVERSCAN, median=True)),
        ("trim",
         lambda: trim_image(raw, DATASEC),
         lambda: ccdproc.trim_image(raw64, fits_section=DATASEC)),
        ("uncertainty",
         lambda: create_uncertainty(trimmed, gain=2.0, read_noise=11.0),
         lambda: ccdproc.create_deviation(frame64, gain=2 * u.electron / u.adu,
                                          readnoise=11 * u.electron, disregard_nan=True)),
        ("bias",
         lambda: subtract_bias(frame, master),
         lambda: ccdproc.subtract_bias(frame64, master64)),
        ("dark (scaled)",
         lambda: subtract_dark(frame, master, dark_exposure=60.0, data_exposure=300.0),
         lambda: ccdproc.subtract_dark(frame64, master64, dark_exposure=60 * u.s,
                                       data_exposure=300 * u.s, scale=True)),
        ("flat",
         lambda: flat_correct(frame, flat),
         lambda: ccdproc.flat_correct(frame64, flat64)),
    ]
    print(f"{'step':22s} {'nightlog s':>11s} {'ccdproc s':>10s} {'ratio':>6s}")
    for name, ours, theirs in cases:
        t_ours, t_theirs = _best(ours, repeat), _best(theirs, repeat)
        print(f"{name:22s} {t_ours:11.4f} {t_theirs:10.4f} {t_ours / t_theirs:6.2f}")


if __name__ == "__main__":
    main()
