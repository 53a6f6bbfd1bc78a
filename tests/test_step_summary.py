"""The statistics a reduction step records, taken on a subsample."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from nightlog.reduction.step_summary import summary_median, summary_sample


@settings(max_examples=30, deadline=None)
@given(ny=st.integers(1, 300), nx=st.integers(1, 300), size=st.integers(1, 5000))
def test_the_sample_walks_over_every_column(ny: int, nx: int, size: int) -> None:
    image = np.arange(ny * nx).reshape(ny, nx)
    sample = summary_sample(image, size=size)
    assert 1 <= sample.size <= max(ny * nx, 1)
    if ny * nx <= size:
        np.testing.assert_array_equal(sample, image.ravel())
    else:
        assert sample.size >= size // 2
        # Enough rows sampled: every column appears (the step is coprime with nx).
        if sample.size >= nx:
            assert set(np.unique(sample % nx)) == set(range(nx))


def test_the_median_of_a_big_frame_is_the_median_within_its_error() -> None:
    rng = np.random.default_rng(1)
    image = rng.normal(1000.0, 10.0, (2048, 2048)).astype(np.float32)
    image[:, ::64] += 500.0  # column structure the sample must not alias onto
    image[5, 5] = np.nan
    exact = float(np.nanmedian(image))
    approx = summary_median(image)
    # Standard error of a median of 2**18 values: 1.25 sigma / 512.
    assert abs(approx - exact) < 4 * 1.25 * 10.0 / 512
    assert summary_median(image) == approx  # the same frame, the same figure


def test_no_finite_value_is_nan() -> None:
    assert np.isnan(summary_median(np.full((10, 10), np.nan)))


def test_frame_statistics_of_the_history_agree_with_the_exact_ones() -> None:
    """The median a master's history records for each frame (its level) is the exact
    median within its standard error; the extremes are exact."""
    from nightlog.reduction.characterise import frame_statistics
    from nightlog.reduction.step_summary import sampled_frame_statistics

    rng = np.random.default_rng(2)
    frame = rng.normal(1140.0, 8.0, (1200, 1100)).astype(np.float32)
    frame[7, 9] = 65535.0
    frame[100, 3] = np.nan
    exact, sampled = frame_statistics(frame), sampled_frame_statistics(frame)
    assert sampled.n_pixels == exact.n_pixels == frame.size - 1
    assert (sampled.minimum, sampled.maximum) == (exact.minimum, exact.maximum)
    # Standard errors of 2**18 sampled values: median 1.25 σ/512, σ about σ/724.
    assert abs(sampled.median - exact.median) < 4 * 1.25 * 8.0 / 512
    assert abs(sampled.robust_std - exact.robust_std) < 4 * 1.7 * 8.0 / 512
    empty = sampled_frame_statistics(np.full((4, 4), np.nan))
    assert empty.n_pixels == 0 and np.isnan(empty.median)
