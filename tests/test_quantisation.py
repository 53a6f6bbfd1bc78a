"""The variance a converter's rounding adds, against rounded Gaussian draws, and the
read-noise map that takes it out below the step where Sheppard's correction fails."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nightlog.errors import ReductionError
from nightlog.reduction.quantisation import analogue_variance, quantised_variance
from nightlog.reduction.read_noise_map import read_noise_map

STEP = 16.0


def _rounded_variance(sigma: float, *, n: int = 400, pixels: int = 4000,
                      seed: int = 0) -> float:
    """The mean over pixels (offsets spread evenly over a step) of the variance of
    ``n`` rounded draws: the hand-written reference of the expectation."""
    rng = np.random.default_rng(seed)
    offsets = (np.arange(pixels) + 0.5) / pixels * STEP
    values = np.round((offsets + rng.normal(0.0, sigma, (n, pixels))) / STEP) * STEP
    return float(np.mean(np.var(values, axis=0, ddof=1)))


@pytest.mark.parametrize("sigma_in_steps", [0.05, 0.15, 0.3, 0.5, 0.73, 1.5])
def test_the_expected_variance_is_that_of_rounded_draws(sigma_in_steps: float) -> None:
    sigma = sigma_in_steps * STEP
    drawn = _rounded_variance(sigma)
    # 4000 pixels x 400 draws: the mean variance to about 0.2 % (0.5 % at 0.05 step,
    # where a few pixels near a step's edge carry it).
    assert float(quantised_variance(sigma, STEP)) == pytest.approx(drawn, rel=0.01)


def test_sheppard_holds_above_half_a_step_and_over_corrects_below() -> None:
    for s in (0.5, 0.73, 2.0):
        assert float(quantised_variance(s * STEP, STEP)) == pytest.approx(
            (s * STEP) ** 2 + STEP**2 / 12, rel=1e-4)
    low = 0.1 * STEP
    # Below, subtracting step²/12 takes out more than the rounding added.
    assert float(quantised_variance(low, STEP)) < low**2 + STEP**2 / 12 - 0.03 * STEP**2


@settings(max_examples=60, deadline=None)
@given(st.floats(min_value=0.0, max_value=4.0))
def test_the_inverse_returns_the_analogue_variance(sigma_in_steps: float) -> None:
    sigma = sigma_in_steps * STEP
    back = analogue_variance(quantised_variance(sigma, STEP), STEP)
    assert float(np.sqrt(back)) == pytest.approx(sigma, abs=1e-3 * STEP)


def test_the_inverse_keeps_nan_and_floors_at_zero() -> None:
    out = analogue_variance(np.array([np.nan, -1.0, 0.0]), STEP)
    assert np.isnan(out[0]) and out[1] == 0.0 and out[2] == 0.0
    with pytest.raises(ReductionError):
        analogue_variance(1.0, 0.0)


def _stack(sigma: float, n: int = 40, shape: tuple[int, int] = (120, 120),
           seed: int = 2) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    offsets = 800.0 + rng.uniform(0.0, STEP, shape)
    return [(np.round((offsets + rng.normal(0.0, sigma, shape)) / STEP) * STEP
             ).astype(np.float32) for _ in range(n)]


@pytest.mark.parametrize("sigma_in_steps", [0.1, 0.2, 0.73])
def test_a_read_noise_below_the_step_is_recovered_from_the_pixels(
        sigma_in_steps: float) -> None:
    """The exact inverse of the pixels' mean variance is the read noise down to a tenth
    of a step, where Sheppard's subtraction leaves nothing."""
    sigma = sigma_in_steps * STEP
    frames = _stack(sigma)
    var = np.var(np.asarray(frames, dtype=np.float64), axis=0, ddof=1)
    assert float(np.sqrt(analogue_variance(var.mean(), STEP))) == pytest.approx(
        sigma, rel=0.02)
    sheppard = np.sqrt(max(var.mean() - STEP**2 / 12, 0.0))
    if sigma_in_steps < 0.3:
        assert sheppard < 0.9 * sigma


def test_the_map_takes_out_sheppard_above_half_a_step() -> None:
    """Above 0.4 step the map is numpy's per-pixel variance less step²/12."""
    frames = _stack(0.73 * STEP)
    noise = read_noise_map(frames, np.mean(frames, axis=0), quantisation_step=STEP)
    var = np.var(np.asarray(frames, dtype=np.float64), axis=0, ddof=1)
    np.testing.assert_allclose(noise.astype(np.float64) ** 2,
                               np.maximum(var - STEP**2 / 12, 0.0), rtol=1e-4, atol=1e-2)


def test_below_the_step_the_map_subtracts_what_rounding_adds_there() -> None:
    """At 0.2 step the pixels' mean variance less what the map subtracts is the
    analogue variance (Sheppard's step²/12 would take out a quarter of it too much)."""
    sigma = 0.2 * STEP
    frames = _stack(sigma)
    var = np.var(np.asarray(frames, dtype=np.float64), axis=0, ddof=1)
    noise = read_noise_map(frames, np.mean(frames, axis=0), quantisation_step=STEP)
    subtracted = np.median((var - noise.astype(np.float64) ** 2)[noise > 0])
    assert var.mean() - subtracted == pytest.approx(sigma**2, rel=0.04)
    assert var.mean() - STEP**2 / 12 < 0.8 * sigma**2
