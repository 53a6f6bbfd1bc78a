"""The bad-pixel mask bits and the CCD noise model."""

from __future__ import annotations

import ccdproc
import numpy as np
import pytest
from astropy import units as u
from astropy.nddata import CCDData, StdDevUncertainty
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from nightlog.errors import ReductionError, ShapeMismatchError
from nightlog.reduction.mask import (
    MASK_DTYPE,
    MaskBit,
    combine_masks,
    dead_pixels_from_flat,
    describe_bits,
    hot_pixels_from_dark,
    mask_saturated,
    pixels_with,
)
from nightlog.reduction.uncertainty import create_uncertainty

# --- mask -----------------------------------------------------------------------


def test_bit_values_are_fixed_because_files_store_them() -> None:
    assert [(b.name, int(b)) for b in MaskBit] == [
        ("SATURATED", 1), ("HOT", 2), ("DEAD", 4), ("COSMIC_RAY", 8), ("NO_DATA", 16),
        ("UNILLUMINATED", 32), ("OVERSCAN_BAD", 64), ("UNSPECIFIED", 128), ("NOISY", 256)]


def test_describe_bits_in_words() -> None:
    assert describe_bits(0) == "good"
    assert describe_bits(MaskBit.SATURATED | MaskBit.DEAD) == (
        "saturated; dead or low-response pixel (master flat)")
    assert describe_bits(2 | 1024) == "hot pixel (master dark); unknown bit 1024"
    with pytest.raises(ReductionError):
        describe_bits(-1)


def test_saturation_is_at_or_above_the_level() -> None:
    raw = np.array([[100, 65534, 65535]], dtype=np.uint16)
    np.testing.assert_array_equal(mask_saturated(raw, 65535), [[False, False, True]])
    with pytest.raises(ReductionError):
        mask_saturated(raw, float("nan"))


def test_hot_pixels_robust_threshold_and_absolute() -> None:
    rng = np.random.default_rng(0)
    rate = rng.normal(0.01, 0.002, (200, 200))
    rate[10, 10] = 0.5
    rate[20, 20] = 0.03  # 10 sigma
    hot = hot_pixels_from_dark(CCDData(rate, unit="adu / s"), nsigma=5)
    assert hot[10, 10] and hot[20, 20]
    # Median + 5 robust sigma on a normal frame flags ~3e-7 of pixels: none here.
    assert hot.sum() == 2
    absolute = hot_pixels_from_dark(rate, absolute=0.1)
    assert absolute.sum() == 1
    with pytest.raises(ReductionError):
        hot_pixels_from_dark(rate, nsigma=0)


def test_dead_pixels_relative_to_the_flat_median() -> None:
    flat = np.full((10, 10), 2.0)
    flat[1, 1] = 0.5  # 25 % response
    flat[2, 2] = np.nan
    flat[3, 3] = 5.0
    dead = dead_pixels_from_flat(flat, low=0.5)
    assert dead[1, 1] and dead[2, 2] and not dead[3, 3]
    assert dead_pixels_from_flat(flat, low=0.5, high=2.0)[3, 3]
    with pytest.raises(ReductionError):
        dead_pixels_from_flat(-flat)
    with pytest.raises(ReductionError):
        dead_pixels_from_flat(flat, low=2, high=1)


def test_combine_masks_ors_planes_and_sets_flag_bits() -> None:
    plane = np.array([[1, 0], [0, 0]], dtype=np.uint16)
    hot = np.array([[True, True], [False, False]])
    out = combine_masks(plane, flags={MaskBit.HOT: hot, MaskBit.COSMIC_RAY: ~hot})
    assert out.dtype == MASK_DTYPE
    np.testing.assert_array_equal(out, [[3, 2], [8, 8]])
    np.testing.assert_array_equal(pixels_with(out, MaskBit.HOT), hot)
    with pytest.raises(ShapeMismatchError):
        combine_masks(plane, flags={MaskBit.HOT: np.zeros((3, 3), bool)})
    with pytest.raises(ReductionError):
        combine_masks(hot)  # a boolean plane has no bit
    with pytest.raises(ReductionError):
        combine_masks(flags={MaskBit.HOT | MaskBit.DEAD: hot})
    with pytest.raises(ReductionError):
        combine_masks()


_SHAPES = st.tuples(st.integers(1, 8), st.integers(1, 8))
_MASK_SETS = _SHAPES.flatmap(
    lambda shape: st.tuples(*[hnp.arrays(np.bool_, shape) for _ in MaskBit]))


@settings(max_examples=60, deadline=None)
@given(_MASK_SETS)
def test_mask_bits_roundtrip(masks: tuple[np.ndarray, ...]) -> None:
    plane = combine_masks(flags=dict(zip(MaskBit, masks, strict=True)))
    for bit, mask in zip(MaskBit, masks, strict=True):
        np.testing.assert_array_equal(pixels_with(plane, bit), mask)
    np.testing.assert_array_equal(pixels_with(plane), np.logical_or.reduce(masks))


# --- uncertainty ------------------------------------------------------------------


def test_create_uncertainty_matches_ccdproc_create_deviation() -> None:
    rng = np.random.default_rng(1)
    data = rng.normal(500, 200, (40, 30)).astype(np.float32)
    data[0, 0] = -50.0  # below bias: no Poisson term
    ccd = CCDData(data, unit="adu")
    ours = create_uncertainty(ccd, gain=2.0, read_noise=11.0)
    theirs = ccdproc.create_deviation(CCDData(data.astype(np.float64), unit="adu"),
                                      gain=2.0 * u.electron / u.adu,
                                      readnoise=11.0 * u.electron, disregard_nan=True)
    assert ours.uncertainty.array.dtype == np.float32
    np.testing.assert_allclose(ours.uncertainty.array, theirs.uncertainty.array, rtol=1e-6)
    assert ours.uncertainty.array[0, 0] == pytest.approx(11.0 / 2.0)


def test_noise_model_by_hand() -> None:
    # 1000 ADU at 2 e-/ADU = 2000 e-: sigma = sqrt(2000 + 11^2) e- = 46.05 e- = 23.03 ADU.
    ccd = CCDData(np.full((2, 2), 1000.0), unit="adu")
    out = create_uncertainty(ccd, gain=2.0 * u.electron / u.adu, read_noise=11 * u.electron)
    np.testing.assert_allclose(out.uncertainty.array, np.sqrt(2000 + 121) / 2, rtol=1e-6)
    electrons = create_uncertainty(CCDData(np.full((2, 2), 2000.0), unit="electron"),
                                   gain=2.0, read_noise=11.0)
    np.testing.assert_allclose(electrons.uncertainty.array, np.sqrt(2121.0), rtol=1e-6)


def test_existing_uncertainty_replaced_or_added() -> None:
    master_sigma = np.full((2, 2), 3.0)
    ccd = CCDData(np.full((2, 2), 100.0), unit="adu",
                  uncertainty=StdDevUncertainty(master_sigma))
    replaced = create_uncertainty(ccd, gain=1.0, read_noise=4.0)
    added = create_uncertainty(ccd, gain=1.0, read_noise=4.0, add_to_existing=True)
    np.testing.assert_allclose(replaced.uncertainty.array, np.sqrt(116.0), rtol=1e-6)
    np.testing.assert_allclose(added.uncertainty.array, np.sqrt(125.0), rtol=1e-6)


def test_uncertainty_rejects_bad_gain_and_units() -> None:
    ccd = CCDData(np.ones((2, 2)), unit="adu")
    with pytest.raises(ReductionError):
        create_uncertainty(ccd, gain=0.0, read_noise=5.0)
    with pytest.raises(ReductionError):
        create_uncertainty(ccd, gain=2.0, read_noise=-1.0)
    with pytest.raises(ReductionError):
        create_uncertainty(ccd, gain=2.0 * u.s, read_noise=5.0)
