"""A master dark made with the frame's own master bias carries that bias's error: the
reduced frame's variance holds it ``(1 - k·s)²`` times, not once plus the dark's share.
Checked against the scatter of many simulated realisations (hand-written numpy)."""

from __future__ import annotations

import numpy as np
import pytest
from astropy import units as u
from astropy.nddata import CCDData, StdDevUncertainty

from nightlog.reduction.calibrate import subtract_bias, subtract_dark
from nightlog.reduction.masters import make_master_dark

RN = 6.0          # ADU per read
N_BIAS, N_DARK = 5, 5
SHAPE = (400, 400)  # pixels: each one realisation


def _realisation(rate: bool, seed: int = 4) -> tuple[np.ndarray, np.ndarray, float]:
    """Reduced pixels, their propagated σ, and the dark's scale ``k``, one
    independent realisation per pixel (no signal: the truth is 0)."""
    rng = np.random.default_rng(seed)
    t_dark, t_sci = 90.0, 90.0
    bias = np.mean(rng.normal(0.0, RN, (N_BIAS, *SHAPE)), axis=0)
    bias_sigma = np.full(SHAPE, RN / np.sqrt(N_BIAS), dtype=np.float32)
    master_bias = CCDData(bias.astype(np.float32), unit=u.adu,
                          uncertainty=StdDevUncertainty(bias_sigma))
    darks = rng.normal(0.0, RN, (N_DARK, *SHAPE)) - bias
    if rate:
        darks = darks / t_dark
    dark = np.mean(darks, axis=0)
    dark_sigma = np.full(SHAPE, RN / np.sqrt(N_DARK) / (t_dark if rate else 1.0),
                         dtype=np.float32)
    master_dark = CCDData(dark.astype(np.float32), unit=u.adu / u.s if rate else u.adu,
                          uncertainty=StdDevUncertainty(dark_sigma))
    raw = CCDData(rng.normal(0.0, RN, SHAPE).astype(np.float32), unit=u.adu,
                  uncertainty=StdDevUncertainty(np.full(SHAPE, RN, dtype=np.float32)))
    frame = subtract_bias(raw, master_bias)
    share = 1.0 / t_dark if rate else 1.0
    out = subtract_dark(frame, master_dark, data_exposure=t_sci,
                        dark_exposure=None if rate else t_dark,
                        shared_bias=(bias_sigma**2, share))
    k = t_sci if rate else t_sci / t_dark
    return np.asarray(out.data), np.asarray(out.uncertainty.array), k * share


@pytest.mark.parametrize("rate", [True, False])
def test_the_shared_bias_cancels_as_the_scatter_says(rate: bool) -> None:
    data, sigma, ks = _realisation(rate)
    assert ks == pytest.approx(1.0)  # a dark of the frame's own exposure
    # The truth: raw − dark frames, the bias gone; 160 000 realisations give the
    # standard deviation to 0.2 %.
    expected = RN * np.sqrt(1.0 + 1.0 / N_DARK)
    assert float(np.std(data)) == pytest.approx(expected, rel=0.01)
    assert float(np.median(sigma)) == pytest.approx(float(np.std(data)), rel=0.01)


def test_without_the_shared_bias_the_variance_counts_it_once_more() -> None:
    rng = np.random.default_rng(1)
    frame = CCDData(rng.normal(0, 1, SHAPE).astype(np.float32), unit=u.adu,
                    uncertainty=StdDevUncertainty(np.full(SHAPE, 2.0, dtype=np.float32)))
    dark = CCDData(np.zeros(SHAPE, dtype=np.float32), unit=u.adu,
                   uncertainty=StdDevUncertainty(np.full(SHAPE, 1.0, dtype=np.float32)))
    plain = subtract_dark(frame, dark, data_exposure=10.0, dark_exposure=10.0)
    shared = subtract_dark(frame, dark, data_exposure=10.0, dark_exposure=10.0,
                           shared_bias=(np.full(SHAPE, 1.5, dtype=np.float32), 1.0))
    np.testing.assert_allclose(plain.uncertainty.array**2, 5.0, rtol=1e-6)
    np.testing.assert_allclose(shared.uncertainty.array**2, 5.0 - 1.5, rtol=1e-6)


def _mixed_darks(seed: int = 7) -> tuple[np.ndarray, CCDData, list[np.ndarray], list[float]]:
    """A master bias with its error ``b`` (the truth), and darks of 7, 70 and 300 s
    (no dark current: the truth of their rate is 0), one realisation per pixel."""
    rng = np.random.default_rng(seed)
    b = np.mean(rng.normal(0.0, RN, (N_BIAS, *SHAPE)), axis=0).astype(np.float32)
    master_bias = CCDData(b, unit=u.adu, uncertainty=StdDevUncertainty(
        np.full(SHAPE, RN / np.sqrt(N_BIAS), dtype=np.float32)))
    times = [7.0] * 5 + [70.0] * 5 + [300.0] * 5
    darks = [rng.normal(0.0, RN, SHAPE).astype(np.float32) for _ in times]
    return b, master_bias, darks, times


def test_the_dark_measures_its_share_of_the_bias_through_the_clip() -> None:
    """With mixed exposures the clip makes the dark's share of the bias's error
    neither ⟨1/tᵢ⟩ of all the darks nor of those kept; the share the master
    records is the regression slope of its error on the bias's (the truth)."""
    b, master_bias, darks, times = _mixed_darks()
    result = make_master_dark(darks, times, bias=master_bias)
    assert result.bias_share is not None
    mean, square = result.bias_share
    error = np.asarray(result.ccd.data, dtype=np.float64)  # the truth is 0
    slope = -float(np.sum(error * b) / np.sum(b.astype(np.float64) ** 2))
    assert mean == pytest.approx(slope, rel=0.05)
    # Far below the mean of all the scales: a linear propagation overstates it.
    assert mean < 0.5 * float(np.mean([1.0 / t for t in times]))
    assert square >= mean**2


def test_one_exposure_shares_its_scale_exactly() -> None:
    _, master_bias, darks, _ = _mixed_darks()
    result = make_master_dark(darks[:5], [90.0] * 5, bias=master_bias)
    assert result.bias_share is not None
    mean, square = result.bias_share
    assert mean == pytest.approx(1.0 / 90.0, rel=1e-3)
    assert square == pytest.approx(mean**2, rel=1e-3)


def test_a_long_frame_less_short_darks_is_as_noisy_as_its_plane_says() -> None:
    """A 300 s frame less a master bias and a rate from 7/70/300 s darks made with
    it: the reduced pixels' scatter against the truth (0) is what their
    propagated uncertainty says, the bias's share (per pixel, in the dark's plane)
    and the frame's own noise together."""
    _, master_bias, darks, times = _mixed_darks()
    result = make_master_dark(darks, times, bias=master_bias)
    assert result.bias_share is not None
    rng = np.random.default_rng(11)
    sky_sigma = 26.0  # ADU: a sky of about 1600 ADU at 2.4 e-/ADU
    raw = CCDData(rng.normal(0.0, sky_sigma, SHAPE).astype(np.float32), unit=u.adu,
                  uncertainty=StdDevUncertainty(np.full(SHAPE, sky_sigma, dtype=np.float32)))
    frame = subtract_bias(raw, master_bias)
    out = subtract_dark(frame, result.ccd, data_exposure=300.0,
                        shared_bias=(np.asarray(master_bias.uncertainty.array) ** 2,
                                     result.bias_share[0], 0.0))
    z = np.asarray(out.data, dtype=np.float64) / np.asarray(out.uncertainty.array)
    assert float(np.sqrt(np.mean(z**2))) == pytest.approx(1.0, abs=0.01)
    robust = 1.482602218505602 * float(np.median(np.abs(z - np.median(z))))
    assert robust == pytest.approx(1.0, abs=0.01)
