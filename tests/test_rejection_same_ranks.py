"""A tile whose pixels all hold every frame's value, combined without a clip, keeps
the same ranks at every pixel: its fast form must give, to the bit, what the
per-pixel form gives those pixels (each pixel is combined alone), and the
moments of the run must agree with a float64 reference."""

from __future__ import annotations

import numpy as np
import pytest

from nightlog.reduction.rejection import combine_tile


def _tile(n: int, seed: int, kind: str) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(1000.0, 5.0, (n, 400))
    if kind == "rate":  # bias-subtracted darks divided by their exposure
        x = (x - 1000.0) / 300.0
    elif kind == "integer":
        x = np.round(x)
    x[:, :2] = 7.0  # every value tied
    return x.astype(np.float32)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13])
@pytest.mark.parametrize("method", ["average", "sum", "median"])
@pytest.mark.parametrize("kind", ["normal", "rate", "integer"])
def test_same_ranks_equal_the_per_pixel_form(n: int, method: str, kind: str) -> None:
    tile = _tile(n, seed=n, kind=kind)
    for nlow, nhigh in [(0, 0), (0, 1), (1, 0), (1, 1), (0, 2)]:
        if nlow + nhigh >= n:
            continue
        fast = combine_tile(tile.copy(), method=method, clip=None, nlow=nlow, nhigh=nhigh,
                            weights=None, overwrite=True)
        # One more pixel without a value in one frame puts the tile on the per-pixel
        # form; the other pixels are combined as before.
        mixed = np.hstack([tile, np.full((n, 1), 5.0, np.float32)])
        mixed[0, -1] = np.nan
        slow = combine_tile(mixed, method=method, clip=None, nlow=nlow, nhigh=nhigh,
                            weights=None)
        np.testing.assert_array_equal(fast.data, slow.data[:-1])
        np.testing.assert_array_equal(fast.uncertainty, slow.uncertainty[:-1])
        np.testing.assert_array_equal(fast.count, slow.count[:-1])
        kept = np.sort(tile.astype(np.float64), axis=0)[nlow:n - nhigh]
        reference = {"average": kept.mean(axis=0), "sum": kept.sum(axis=0),
                     "median": np.median(kept, axis=0)}[method]
        np.testing.assert_allclose(fast.data, reference, rtol=2e-6, atol=1e-6)
        assert (fast.count == n - nlow - nhigh).all()
        if method == "average":
            # The spread from float32 sums: a lone survivor's is its rounding.
            np.testing.assert_allclose(fast.uncertainty,
                                       kept.std(axis=0) / np.sqrt(n - nlow - nhigh),
                                       rtol=1e-4, atol=1e-3 * float(tile.std()))
