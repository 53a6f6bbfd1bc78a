"""clip_values keeps exactly what astropy.stats.sigma_clip keeps."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from astropy.stats import sigma_clip
from hypothesis import given, settings
from hypothesis import strategies as st

from nightlog.reduction.clipped_values import clip_values


def _astropy(values: np.ndarray, sigma: float, maxiters: int) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(sigma_clip(values, sigma=sigma, maxiters=maxiters, masked=False))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n", [2, 3, 1000, 100_001])
def test_equals_astropy_on_noise_with_outliers(dtype: type, n: int) -> None:
    rng = np.random.default_rng(n)
    values = rng.normal(0.0, 10.0, n).astype(dtype)
    hits = rng.random(n) < 0.01
    values[hits] += rng.uniform(50, 5000, int(hits.sum())).astype(dtype)
    before = values.copy()
    for sigma, maxiters in ((5.0, 5), (3.0, 1), (2.5, 10)):
        kept = clip_values(values, sigma, maxiters=maxiters)
        np.testing.assert_array_equal(kept, _astropy(values, sigma, maxiters))
    np.testing.assert_array_equal(values, before)  # the input is untouched


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False, width=64), min_size=1, max_size=300),
       st.floats(1.0, 6.0), st.integers(1, 6))
def test_equals_astropy_on_any_values(values: list[float], sigma: float, maxiters: int
                                      ) -> None:
    array = np.array(values)
    np.testing.assert_array_equal(clip_values(array, sigma, maxiters=maxiters),
                                  _astropy(array, sigma, maxiters))
