"""The MAD clip's spread, merged from the sorted run's halves, against sorting.

A run of sorted values has deviations from its median that fall towards the
middle from below and rise above it; the merge reads the median deviation from
the two halves. It must give what sorting every deviation gives, to the bit
(ties, integer ADU, short and long stacks, runs trimmed by min/max), and the
combination must give the same master either way.
"""

from __future__ import annotations

import numpy as np
import pytest

from nightlog.reduction import rejection
from nightlog.reduction._sorted_columns import sort_columns, uniform_run_mad
from nightlog.reduction.rejection import ClipSpec, combine_tile


def _sorted(n: int, kind: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(1000.0, 5.0, (n, 501)).astype(np.float32)
    if kind == "integer":
        x = np.round(x)
    elif kind == "coarse":  # many ties
        x = np.round(x / 8.0) * 8.0
    x[:, :3] = 7.0  # every value tied
    return sort_columns(np.ascontiguousarray(x))


def _by_sorting(x: np.ndarray, start: int, stop: int, centre: np.ndarray) -> np.ndarray:
    """The reference: sort the run's deviations and take their median."""
    dev = np.sort(np.abs(x[start:stop].astype(np.float64) - centre), axis=0)
    n = stop - start
    return 0.5 * (dev[(n - 1) // 2] + dev[n // 2])


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6, 7, 9, 12, 25, 30])
@pytest.mark.parametrize("kind", ["normal", "integer", "coarse"])
def test_merged_halves_equal_sorted_deviations(n: int, kind: str) -> None:
    x = _sorted(n, kind, seed=n)
    for start in range(min(n, 2)):
        for stop in range(max(start + 1, n - 2), n + 1):
            lo = np.full(x.shape[1], start, dtype=np.intp)
            hi = np.full(x.shape[1], stop, dtype=np.intp)
            centre = rejection._survivor_median(x, lo, hi)
            got = uniform_run_mad(x, start, stop, centre)
            np.testing.assert_array_equal(got, _by_sorting(x, start, stop, centre))
            np.testing.assert_array_equal(got, rejection._survivor_mad(x, lo, hi, centre))


@pytest.mark.parametrize("n", [3, 5, 8])
@pytest.mark.parametrize(("nlow", "nhigh"), [(0, 0), (0, 1), (1, 1)])
def test_a_clipped_combination_is_unchanged(n: int, nlow: int, nhigh: int) -> None:
    """The kernel takes the merge only where every pixel has the same run; a tile
    with NaN (runs of different lengths) takes the sorting path: both agree."""
    rng = np.random.default_rng(n + 10 * nhigh)
    tile = np.round(rng.normal(1000.0, 5.0, (n, 4096))).astype(np.float32)
    tile[0, ::40] += 500.0
    holed = tile.copy()
    holed[1, 0] = np.nan  # one short run: the whole tile is sorted
    clip = ClipSpec(spread="mad", max_iters=1)
    fast = combine_tile(tile, method="average", clip=clip, nlow=nlow, nhigh=nhigh,
                        weights=None)
    slow = combine_tile(holed, method="average", clip=clip, nlow=nlow, nhigh=nhigh,
                        weights=None)
    same = np.ones(tile.shape[1], dtype=bool)
    same[0] = False
    np.testing.assert_array_equal(fast.data[same], slow.data[same])
    np.testing.assert_array_equal(fast.uncertainty[same], slow.uncertainty[same])
    np.testing.assert_array_equal(fast.count[same], slow.count[same])
