"""Bias, dark and flat correction: against ccdproc, by hand, and their failure modes."""

from __future__ import annotations

import ccdproc
import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.nddata import CCDData, StdDevUncertainty

from nightlog.errors import ReductionError, ShapeMismatchError
from nightlog.reduction.calibrate import flat_correct, subtract_bias, subtract_dark
from nightlog.reduction.mask import MaskBit
from nightlog.reduction.overscan import subtract_overscan

SHAPE = (60, 50)


def frame(seed: int, level: float, noise: float, *, unit: str = "adu",
          sigma: float | None = 1.0, **meta: object) -> CCDData:
    rng = np.random.default_rng(seed)
    data = rng.normal(level, noise, SHAPE).astype(np.float32)
    unc = None if sigma is None else StdDevUncertainty(
        rng.uniform(0.5, 1.5, SHAPE).astype(np.float32) * sigma)
    return CCDData(data, unit=unit, uncertainty=unc, meta=fits.Header(meta))


def as64(ccd: CCDData) -> CCDData:
    """float64 copy for ccdproc, which computes in float64."""
    return CCDData(ccd.data.astype(np.float64), unit=ccd.unit, meta=ccd.meta.copy(),
                   mask=None if ccd.mask is None else ccd.mask.copy(),
                   uncertainty=None if ccd.uncertainty is None else StdDevUncertainty(
                       ccd.uncertainty.array.astype(np.float64)))


def close(ours: np.ndarray, reference: np.ndarray, scale: float) -> None:
    # float32 results against ccdproc's float64: 1e-5 of the frame's scale.
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=1e-5 * scale)


def test_subtract_bias_matches_ccdproc_with_uncertainty_and_mask() -> None:
    science, bias = frame(1, 3000, 50, sigma=8), frame(2, 1100, 3, sigma=1)
    science.mask = np.zeros(SHAPE, bool)
    science.mask[1, 1] = True
    bias.mask = np.zeros(SHAPE, bool)
    bias.mask[2, 2] = True
    ours = subtract_bias(science, bias)
    theirs = ccdproc.subtract_bias(as64(science), as64(bias))
    close(ours.data, theirs.data, 3000)
    close(ours.uncertainty.array, theirs.uncertainty.array, 8)
    np.testing.assert_array_equal(ours.mask, theirs.mask)
    assert ours.header["ZEROCOR"]


def test_subtract_dark_fixed_exposure_matches_ccdproc() -> None:
    science, dark = frame(3, 500, 20, sigma=5), frame(4, 30, 2, sigma=0.5)
    ours = subtract_dark(science, dark, dark_exposure=60.0, data_exposure=300 * u.s)
    theirs = ccdproc.subtract_dark(as64(science), as64(dark), dark_exposure=60 * u.s,
                                   data_exposure=300 * u.s, scale=True)
    close(ours.data, theirs.data, 500)
    close(ours.uncertainty.array, theirs.uncertainty.array, 5)


def test_subtract_dark_rate_is_scaled_by_the_exposure_by_hand() -> None:
    science = frame(5, 500, 20, sigma=5)
    rate = frame(6, 0.1, 0.01, unit="adu / s", sigma=0.002)
    ours = subtract_dark(science, rate, data_exposure=300.0)
    # Lecture: dark_data_scaled = dark_rate * exptime; science -= dark_data_scaled.
    np.testing.assert_allclose(ours.data, science.data - rate.data * 300.0, rtol=1e-6)
    expected_sigma = np.sqrt(science.uncertainty.array**2 + (300 * rate.uncertainty.array)**2)
    np.testing.assert_allclose(ours.uncertainty.array, expected_sigma, rtol=1e-6)
    assert ours.unit == u.adu
    assert "rate" in ours.header["DARKCOR"]


def test_rate_flag_for_a_dark_whose_unit_does_not_say_so() -> None:
    science, rate = frame(7, 500, 20), frame(8, 0.1, 0.01)
    out = subtract_dark(science, rate, data_exposure=10.0, rate=True)
    np.testing.assert_allclose(out.data, science.data - 10 * rate.data, rtol=1e-6)


def test_unscaled_dark_for_cameras_whose_darks_do_not_scale() -> None:
    science, dark = frame(9, 500, 20), frame(10, 30, 2)
    out = subtract_dark(science, dark, data_exposure=300.0, scale=False)
    np.testing.assert_allclose(out.data, science.data - dark.data, rtol=1e-6)
    theirs = ccdproc.subtract_dark(as64(science), as64(dark), dark_exposure=1 * u.s,
                                   data_exposure=300 * u.s, scale=False)
    close(out.data, theirs.data, 500)


def test_dark_failure_modes() -> None:
    science, dark = frame(11, 500, 20), frame(12, 30, 2)
    with pytest.raises(ReductionError, match="dark_exposure"):
        subtract_dark(science, dark, data_exposure=300.0)
    with pytest.raises(ReductionError):
        subtract_dark(science, dark, dark_exposure=0.0, data_exposure=300.0)
    with pytest.raises(ReductionError):
        subtract_dark(science, dark, dark_exposure=60.0, data_exposure=-1.0)
    with pytest.raises(ReductionError):
        subtract_dark(science, dark, dark_exposure=60.0, data_exposure=3 * u.m)
    rate = frame(13, 0.1, 0.01, unit="adu / s")
    with pytest.raises(ReductionError, match="scaled"):
        subtract_dark(science, rate, data_exposure=300.0, scale=False)
    once = subtract_dark(science, dark, dark_exposure=60.0, data_exposure=60.0)
    with pytest.raises(ReductionError, match="already"):
        subtract_dark(once, dark, dark_exposure=60.0, data_exposure=60.0)


@pytest.mark.parametrize(("min_value", "norm_value"), [(None, None), (0.9, None),
                                                        (None, 20000.0)])
def test_flat_correct_matches_ccdproc(min_value: float | None,
                                      norm_value: float | None) -> None:
    science = frame(14, 3000, 50, sigma=50)
    flat = frame(15, 20000, 800, sigma=140)
    if min_value is not None:
        flat = CCDData(flat.data / 20000, unit="adu",
                       uncertainty=StdDevUncertainty(flat.uncertainty.array / 20000))
    ours = flat_correct(science, flat, min_value=min_value, norm_value=norm_value)
    theirs = ccdproc.flat_correct(as64(science), as64(flat), min_value=min_value,
                                  norm_value=norm_value)
    close(ours.data, theirs.data, 3000)
    close(ours.uncertainty.array, theirs.uncertainty.array, 50)
    assert ours.unit == science.unit


def test_flat_relative_errors_add_in_quadrature_by_hand() -> None:
    science, flat = frame(16, 3000, 50, sigma=50), frame(17, 1.0, 0.02, unit="", sigma=0.01)
    out = flat_correct(science, flat, norm_value=1.0)
    ratio = science.data / flat.data
    rel = np.hypot(science.uncertainty.array / science.data,
                   flat.uncertainty.array / flat.data)
    np.testing.assert_allclose(out.data, ratio, rtol=1e-6)
    np.testing.assert_allclose(out.uncertainty.array, np.abs(ratio) * rel, rtol=1e-5)


def test_flat_zero_or_masked_pixels() -> None:
    science, flat = frame(18, 3000, 50), frame(19, 1.0, 0.02, unit="")
    flat.data[3, 4] = 0.0
    flat.mask = np.zeros(SHAPE, bool)
    flat.mask[5, 5] = True
    flat.data[5, 5] = 1e-6
    flags = np.zeros(SHAPE, np.uint16)
    science.flags = flags
    out = flat_correct(science, flat)
    assert np.isnan(out.data[3, 4]) and out.mask[3, 4]
    assert out.flags[3, 4] == MaskBit.DEAD
    # A masked flat pixel is divided by 1 (as ccdproc does) and stays masked.
    assert out.data[5, 5] == science.data[5, 5]
    assert out.mask[5, 5]
    with pytest.raises(ReductionError):
        flat_correct(science, flat, norm_value=0.0)


def test_masks_or_and_bit_planes_keep_their_bits() -> None:
    science, bias = frame(20, 3000, 50), frame(21, 1100, 3)
    science.flags = np.zeros(SHAPE, np.uint16)
    science.flags[0, 0] = MaskBit.SATURATED
    bias.flags = np.zeros(SHAPE, np.uint16)
    bias.flags[0, 0] = MaskBit.HOT
    bias.flags[1, 0] = MaskBit.DEAD
    out = subtract_bias(science, bias)
    assert out.flags[0, 0] == MaskBit.SATURATED | MaskBit.HOT
    assert out.flags[1, 0] == MaskBit.DEAD


def test_shapes_and_units_are_checked() -> None:
    science = frame(22, 3000, 50)
    small = CCDData(np.zeros((10, 10), np.float32), unit="adu")
    for step in (subtract_bias, lambda c, m: subtract_dark(c, m, data_exposure=1.0, scale=False),
                 flat_correct):
        with pytest.raises(ShapeMismatchError):
            step(science, small)
    with pytest.raises(ReductionError, match="unit"):
        subtract_bias(science, frame(23, 10, 1, unit="electron"))


def test_overscan_and_full_bias_are_never_both_subtracted() -> None:
    raw = frame(24, 1100, 3, BIASSEC="[41:50,1:60]")
    bias = frame(25, 1100, 3)
    bias.meta["IMAGETYP"] = "BIAS"
    corrected = subtract_overscan(raw)
    with pytest.raises(ReductionError, match="overscan"):
        subtract_bias(corrected, bias)  # master still carries the full bias level
    residual_master = subtract_overscan(frame(26, 1100, 3, BIASSEC="[41:50,1:60]"))
    out = subtract_bias(corrected, residual_master)
    assert abs(float(np.median(out.data))) < 3
    with pytest.raises(ReductionError, match="overscan"):
        subtract_bias(raw, residual_master)
    with pytest.raises(ReductionError, match="already"):
        subtract_bias(out, residual_master)


def test_large_frames_get_the_float32_arithmetic_of_the_formulas_exactly() -> None:
    """Frames taller than one block of rows (the steps work block by block): every
    pixel, the last partial block's too, is what the float32 formula gives."""
    rng = np.random.default_rng(7)
    shape = (150, 37)

    def big(level: float, spread: float, sigma: float) -> CCDData:
        data = rng.normal(level, spread, shape).astype(np.float32)
        std = rng.uniform(0.5, 1.5, shape).astype(np.float32) * np.float32(sigma)
        return CCDData(data, unit="adu", uncertainty=StdDevUncertainty(std))

    raw, bias, dark = big(900.0, 30.0, 5.0), big(10.0, 1.0, 0.5), big(0.2, 0.05, 0.01)
    dark.unit = u.adu / u.s
    flat = big(1.0, 0.02, 0.003)
    flat.data[3, 4], flat.data[140, 2] = 0.0, np.nan
    f32 = np.float32
    c, b, d = raw.data, bias.data, dark.data
    sc, sb, sd = raw.uncertainty.array, bias.uncertainty.array, dark.uncertainty.array

    less_bias = subtract_bias(raw, bias)
    np.testing.assert_array_equal(less_bias.data, c - b)
    np.testing.assert_array_equal(less_bias.uncertainty.array, np.sqrt(sc * sc + sb * sb))

    less_dark = subtract_dark(less_bias, dark, data_exposure=300.0)
    scaled = d * f32(300.0)
    np.testing.assert_array_equal(less_dark.data, (c - b) - scaled)
    var = less_bias.uncertainty.array ** 2 + sd * sd * f32(300.0 * 300.0)
    np.testing.assert_array_equal(less_dark.uncertainty.array, np.sqrt(var))

    flat_out = flat_correct(less_dark, flat, norm_value=1.0)
    f = flat.data / f32(1.0)
    bad = ~np.isfinite(f) | (f <= 0)
    f[bad] = 1.0
    quotient = less_dark.data / f
    var = less_dark.uncertainty.array ** 2 / (f * f)
    var += quotient * quotient * flat.uncertainty.array ** 2 * f32(1.0) / (f * f)
    quotient[bad], var[bad] = np.nan, np.nan
    np.testing.assert_array_equal(flat_out.data, quotient)
    np.testing.assert_array_equal(flat_out.uncertainty.array, np.sqrt(var))
    assert bool(flat_out.mask[3, 4]) and bool(flat_out.mask[140, 2])
