"""A CMOS camera's reduction against simulated truth and hand-written numpy: glow,
random-telegraph pixels, quantisation. Frames from tests/cmos_camera.py (12-bit
data stored x16, an offset pattern, telegraph pixels, glow growing as t**1.5)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy import units as u
from astropy.nddata import CCDData
from hypothesis import given, settings
from hypothesis import strategies as st

from nightlog.errors import ReductionError
from nightlog.reduction.cosmics import CosmicRaySettings
from nightlog.reduction.dark_interpolation import interpolate_dark
from nightlog.reduction.mask import MaskBit
from nightlog.reduction.master_options import CombineOptions
from nightlog.reduction.masters import make_master_bias, make_master_dark
from nightlog.reduction.products import to_hdulist
from nightlog.reduction.read_noise_map import noisy_pixels, read_noise_map
from nightlog.reduction.science import ScienceParameters, reduce_science
from nightlog.reduction.uncertainty import noise_variance
from nightlog.store.products import read_product
from tests.cmos_camera import EGAIN, READ_NOISE_E, RTN_PIXELS, STEP, Camera, corner

SKY_E = 200.0
N_BIAS = 9


def ccd(hdul: object) -> CCDData:
    hdu = hdul[0]  # type: ignore[index]
    return CCDData(np.asarray(hdu.data), unit=u.adu, meta=hdu.header.copy())


@pytest.fixture(scope="module")
def camera() -> Camera:
    return Camera(seed=7)


@pytest.fixture(scope="module")
def biases(camera: Camera) -> list[CCDData]:
    return [ccd(camera.frame("BIAS", 0.0, seed=100 + i)) for i in range(N_BIAS)]


@pytest.fixture(scope="module")
def bias(biases: list[CCDData]) -> CCDData:
    return make_master_bias(biases, noise_map=True, quantisation_step=STEP).ccd


@pytest.fixture(scope="module")
def bias_map(biases: list[CCDData]) -> np.ndarray:
    result = make_master_bias(biases, noise_map=True, quantisation_step=STEP)
    assert result.read_noise_map is not None
    return result.read_noise_map


def darks_at(camera: Camera, t: float, seed: int) -> list[CCDData]:
    return [ccd(camera.frame("DARK", t, seed=seed + i)) for i in range(7)]


@pytest.fixture(scope="module")
def dark_masters(camera: Camera, bias: CCDData) -> dict[float, CCDData]:
    return {t: make_master_dark(darks_at(camera, t, 300 + int(t) * 10), [t] * 7, bias=bias,
                                scale_to_rate=False).ccd for t in (50.0, 60.0, 70.0, 120.0)}


@pytest.fixture(scope="module")
def science(camera: Camera) -> CCDData:
    return ccd(camera.frame("LIGHT", 60.0, sky_e=SKY_E, seed=999))


def params(**kw: object) -> ScienceParameters:
    base: dict[str, object] = dict(gain=EGAIN, read_noise=READ_NOISE_E, saturation=65520.0,
                                   exptime=60.0, darks_scale=False, quantisation_step=STEP,
                                   trim="[1:128,1:96]",
                                   cosmic_rays=CosmicRaySettings(enabled=False))
    base.update(kw)
    return ScienceParameters(**base)  # type: ignore[arg-type]


def corner_residual(reduced: CCDData) -> tuple[float, float]:
    """Mean of the glowing corner minus the sky far from it (ADU), and the corner's
    propagated sigma (ADU)."""
    data = np.asarray(reduced.data)
    far = float(np.median(data[48:, 64:]))
    sigma = float(np.median(reduced.uncertainty.array[corner()]))
    return float(np.mean(data[corner()])) - far, sigma


# --- read-noise map --------------------------------------------------------------------

def test_read_noise_map_equals_numpy_per_pixel_std(biases: list[CCDData]) -> None:
    plain = make_master_bias(biases, options=CombineOptions(clip=None))
    mine = read_noise_map(biases, plain.ccd.data, quantisation_step=STEP)
    stack = np.stack([np.asarray(b.data, dtype=np.float64) for b in biases])
    hand = np.sqrt(np.maximum(np.var(stack, axis=0, ddof=1) - STEP**2 / 12, 0))
    np.testing.assert_allclose(mine, hand, rtol=1e-4, atol=1e-3)


def test_read_noise_map_recovers_the_read_noise(bias_map: np.ndarray) -> None:
    truth_adu = READ_NOISE_E / EGAIN
    normal = np.ones(bias_map.shape, dtype=bool)
    for y, x in RTN_PIXELS:
        normal[y, x] = False
    assert np.median(bias_map[normal]) == pytest.approx(truth_adu, rel=0.05)


def test_telegraph_pixels_are_noisy_in_the_master_bias(bias: CCDData,
                                                       bias_map: np.ndarray) -> None:
    noisy = (np.asarray(bias.flags) & MaskBit.NOISY) != 0
    for y, x in RTN_PIXELS:
        assert noisy[y, x], (y, x)
    # 9 frames: a normal pixel's scatter rarely reaches 3x the median.
    assert noisy.sum() <= len(RTN_PIXELS) + 3
    assert bias.header["NNOISYPX"] == noisy.sum()
    np.testing.assert_array_equal(noisy, noisy_pixels(bias_map, factor=3.0))


def test_the_master_bias_with_its_map_is_read_by_astropy(tmp_path: Path, bias: CCDData,
                                                        bias_map: np.ndarray) -> None:
    path = tmp_path / "bias.fits"
    to_hdulist(bias, read_noise=bias_map).writeto(path)
    plain = CCDData.read(path)  # the primary, as ccdproc reads it
    np.testing.assert_array_equal(plain.data, bias.data)
    back = read_product(path)
    assert back.read_noise is not None
    np.testing.assert_array_equal(back.read_noise, bias_map)
    assert back.ccd.flags is not None and (back.ccd.flags & MaskBit.NOISY).sum() > 0


# --- glow -------------------------------------------------------------------------------

def test_glow_residual_within_one_sigma_exact_or_interpolated(
        bias: CCDData, bias_map: np.ndarray, dark_masters: dict[float, CCDData],
        science: CCDData) -> None:
    exact = reduce_science(science, bias=bias, dark=dark_masters[60.0], flat=None,
                           params=params(), read_noise_map=bias_map).ccd
    residual, sigma = corner_residual(exact)
    assert abs(residual) < sigma, (residual, sigma)
    interpolated = reduce_science(science, bias=bias, dark=dark_masters[50.0],
                                  dark2=dark_masters[70.0], flat=None, params=params(),
                                  read_noise_map=bias_map)
    residual, sigma = corner_residual(interpolated.ccd)
    assert abs(residual) < sigma, (residual, sigma)
    step = next(s for s in interpolated.steps if s.name == "dark")
    assert step.summary["how"] == "interpolated: 50-70 s w=0.5000"
    assert interpolated.ccd.header["DARKINTP"] == "50-70 s w=0.5000"


def test_a_linearly_scaled_dark_leaves_the_glow(camera: Camera, bias: CCDData,
                                               bias_map: np.ndarray, science: CCDData) -> None:
    rate = make_master_dark(darks_at(camera, 120.0, 5000), [120.0] * 7, bias=bias).ccd
    linear = reduce_science(science, bias=bias, dark=rate, flat=None,
                            params=params(darks_scale=True), read_noise_map=bias_map).ccd
    residual, sigma = corner_residual(linear)
    # The 120 s glow is 2**1.5 / 2 = 1.41 times the 60 s glow once scaled: far too much.
    assert residual < -3 * sigma, (residual, sigma)


def test_interpolate_dark_equals_numpy(dark_masters: dict[float, CCDData]) -> None:
    short, long = dark_masters[50.0], dark_masters[70.0]
    out = interpolate_dark(short, long, exposure=55.0)
    w = 0.25
    hand = 0.75 * short.data.astype(np.float64) + w * long.data.astype(np.float64)
    np.testing.assert_allclose(out.data, hand, rtol=1e-6, atol=1e-3)
    hand_sigma = np.sqrt(0.75**2 * short.uncertainty.array**2 + w**2 * long.uncertainty.array**2)
    np.testing.assert_allclose(out.uncertainty.array, hand_sigma, rtol=1e-5)
    assert out.header["EXPTIME"] == 55.0
    with pytest.raises(ReductionError, match="never extrapolated"):
        interpolate_dark(short, long, exposure=90.0)
    with pytest.raises(ReductionError, match="must be longer"):
        interpolate_dark(long, short, exposure=60.0)


# --- telegraph pixels and cosmic rays ---------------------------------------------------

def test_telegraph_pixels_are_masked_noisy_and_not_cosmic_rays(
        camera: Camera, bias: CCDData, bias_map: np.ndarray,
        dark_masters: dict[float, CCDData]) -> None:
    crs = CosmicRaySettings(enabled=True)
    for seed in range(3):
        frame = ccd(camera.frame("LIGHT", 60.0, sky_e=20.0, seed=2000 + seed))
        reduced = reduce_science(frame, bias=bias, dark=dark_masters[60.0], flat=None,
                                 params=params(cosmic_rays=crs), read_noise_map=bias_map)
        bits = reduced.bits
        sigma = np.asarray(reduced.ccd.uncertainty.array)
        for y, x in RTN_PIXELS:
            assert bits[y, x] & MaskBit.NOISY
            assert not bits[y, x] & MaskBit.COSMIC_RAY
            # Its own read noise, not the detector's: never silently trusted.
            assert sigma[y, x] > 2 * np.median(sigma)


def test_without_the_map_telegraph_jumps_pass_for_cosmic_rays(
        camera: Camera, biases: list[CCDData], dark_masters: dict[float, CCDData]) -> None:
    # The reason the map matters: a bias with no NOISY bit, one read-noise figure.
    plain = make_master_bias(biases).ccd
    crs = CosmicRaySettings(enabled=True)
    flagged = 0
    for seed in range(3):
        frame = ccd(camera.frame("LIGHT", 60.0, sky_e=20.0, seed=2000 + seed))
        bits = reduce_science(frame, bias=plain, dark=dark_masters[60.0], flat=None,
                              params=params(cosmic_rays=crs)).bits
        flagged += sum(bool(bits[y, x] & MaskBit.COSMIC_RAY) for y, x in RTN_PIXELS)
    assert flagged > 0


# --- quantisation -----------------------------------------------------------------------

def test_quantisation_variance_is_step_squared_over_twelve(
        bias: CCDData, dark_masters: dict[float, CCDData], science: CCDData) -> None:
    with_q = reduce_science(science, bias=bias, dark=dark_masters[60.0], flat=None,
                            params=params()).ccd
    without = reduce_science(science, bias=bias, dark=dark_masters[60.0], flat=None,
                             params=params(quantisation_step=None)).ccd
    diff = with_q.uncertainty.array.astype(np.float64) ** 2 - \
        without.uncertainty.array.astype(np.float64) ** 2
    np.testing.assert_allclose(diff, STEP**2 / 12, rtol=2e-3)


def test_noise_variance_with_a_map_equals_the_lecture() -> None:
    rng = np.random.default_rng(3)
    data = rng.normal(100.0, 20.0, (20, 30)).astype(np.float32)
    rn_map = rng.uniform(2.0, 9.0, data.shape).astype(np.float32)  # e-
    gain, step = 0.25, 16.0
    mine = noise_variance(data, gain=gain, read_noise=3.6, read_noise_map=rn_map,
                          quantisation_step=step)
    hand = np.maximum(data, 0) / gain + (rn_map / gain) ** 2 + step**2 / 12
    np.testing.assert_allclose(mine, hand, rtol=1e-6)


def test_values_off_the_converter_step_are_said(bias: CCDData, science: CCDData) -> None:
    shifted = science.copy()
    shifted.data = np.asarray(science.data, dtype=np.float32) + 3.0  # not x16 any more
    reduced = reduce_science(shifted, bias=bias, dark=None, flat=None, params=params())
    header = reduced.ccd.header
    assert header["QSTEPOFF"] == shifted.data.size and header["QSTEP"] == STEP
    assert any("not multiples of the 16 ADU" in str(h) for h in header["HISTORY"])
    clean = reduce_science(science, bias=bias, dark=None, flat=None, params=params())
    assert clean.ccd.header["QSTEPOFF"] == 0


def test_a_raw_mosaic_stays_a_mosaic(bias: CCDData, science: CCDData) -> None:
    # Colour sensors are calibrated as raw mosaics: no pixel is moved or combined.
    reduced = reduce_science(science, bias=bias, dark=None, flat=None, params=params())
    hand = np.asarray(science.data, dtype=np.float32) - np.asarray(bias.data, dtype=np.float32)
    np.testing.assert_allclose(reduced.ccd.data, hand, rtol=1e-6, atol=1e-3)
    assert reduced.ccd.shape == science.shape


def test_a_map_of_another_shape_is_refused() -> None:
    with pytest.raises(ReductionError, match="read-noise map"):
        noise_variance(np.zeros((4, 4)), gain=1.0, read_noise=1.0,
                       read_noise_map=np.ones((3, 4)))




@settings(max_examples=40, deadline=None)
@given(t1=st.floats(0.0, 100.0), span=st.floats(1.0, 300.0), frac=st.floats(0.0, 1.0),
       rate=st.floats(0.0, 50.0), pedestal=st.floats(-10.0, 10.0))
def test_interpolation_is_exact_for_a_dark_linear_in_time(t1: float, span: float,
                                                         frac: float, rate: float,
                                                         pedestal: float) -> None:
    # Property: between two darks of a signal linear in time, the interpolated dark
    # is that signal at t, whatever the exposures.
    t2, t = t1 + span, t1 + frac * span
    pattern = np.linspace(0.5, 2.0, 12, dtype=np.float64).reshape(3, 4)

    def dark(seconds: float) -> CCDData:
        return CCDData((pedestal + rate * seconds * pattern).astype(np.float32), unit=u.adu,
                       meta={"EXPTIME": seconds})

    out = interpolate_dark(dark(t1), dark(t2), exposure=t)
    expected = pedestal + rate * t * pattern
    np.testing.assert_allclose(out.data, expected, rtol=1e-5, atol=1e-3 * (1 + rate * t2))
