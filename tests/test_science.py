"""Science-frame reduction against a hand-written numpy reduction of the lecture,
against ccdproc, and against the truth of simulated frames."""

from __future__ import annotations

import io
from dataclasses import dataclass, replace

import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.nddata import CCDData, StdDevUncertainty
from hypothesis import given, settings
from hypothesis import strategies as st

from nightlog.errors import ReductionError, ShapeMismatchError
from nightlog.reduction.cosmics import CosmicRaySettings
from nightlog.reduction.mask import MaskBit
from nightlog.reduction.science import OverscanParameters, ScienceParameters, reduce_science
from nightlog.reduction.science_record import ReducedFrame, StepRecord

GAIN = 2.0  # e-/ADU
READ_NOISE = 11.0  # e-
SATURATION = 65535.0  # ADU, raw
EXPTIME = 120.0  # s
NOVER = 16  # overscan columns
NO_CR = CosmicRaySettings(enabled=False)


@dataclass
class Night:
    """The truth of a simulated frame and the masters that calibrate it."""

    bias_level: np.ndarray  # per row, ADU (what the overscan sees)
    bias_pattern: np.ndarray  # residual 2-D bias structure, ADU
    dark_rate: np.ndarray  # e-/s
    flat: np.ndarray  # normalised response
    sky_stars: np.ndarray  # e- per pixel above the flat
    hot: tuple[int, int]
    dead: tuple[int, int]
    star_peak: tuple[int, int]


def make_night(seed: int = 0, shape: tuple[int, int] = (96, 80)) -> Night:
    rng = np.random.default_rng(seed)
    ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    bias_level = 1100 + 3 * np.sin(np.arange(ny) / 15)
    bias_pattern = 4 * np.exp(-xx / 10) + rng.normal(0, 0.5, shape)
    dark_rate = np.full(shape, 0.05) * rng.uniform(0.8, 1.2, shape)
    hot = (30, 20)
    dark_rate[hot] = 40.0
    flat = (1 + 0.1 * (xx - nx / 2) / nx - 0.05 * ((yy - ny / 2) / ny) ** 2) * rng.normal(
        1, 0.01, shape)
    dead = (50, 60)
    flat[dead] = 0.05
    flat /= np.median(flat)
    sky = np.full(shape, 900.0)
    star_peak = (70, 30)
    r2 = (xx - star_peak[1]) ** 2 + (yy - star_peak[0]) ** 2
    sky += 5e6 * np.exp(-r2 / (2 * 1.6**2)) / (2 * np.pi * 1.6**2)
    for y, x, f in ((20, 60, 2e4), (80, 10, 5e4), (40, 40, 1e4)):
        sky += f * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 1.7**2)) / (2 * np.pi * 1.7**2)
    return Night(bias_level, bias_pattern, dark_rate, flat, sky, hot, dead, star_peak)


def expose(night: Night, rng: np.random.Generator, cosmic: np.ndarray | None = None,
           exptime: float = EXPTIME) -> CCDData:
    """A raw uint16 frame with an overscan strip and an LFC-like header."""
    ny, nx = night.flat.shape
    electrons = rng.poisson(night.sky_stars * night.flat + night.dark_rate * exptime)
    electrons = electrons + rng.normal(0, READ_NOISE, electrons.shape)
    if cosmic is not None:
        electrons = electrons + cosmic
    image = electrons / GAIN + night.bias_level[:, None] + night.bias_pattern
    over = night.bias_level[:, None] + rng.normal(0, READ_NOISE / GAIN, (ny, NOVER))
    raw = np.clip(np.round(np.hstack([image, over])), 0, SATURATION).astype(np.uint16)
    header = fits.Header({"EXPTIME": exptime, "IMAGETYP": "OBJECT",
                          "DATASEC": f"[1:{nx},1:{ny}]",
                          "BIASSEC": f"[{nx + 1}:{nx + NOVER},1:{ny}]"})
    return CCDData(raw, unit="adu", meta=header)


def masters(night: Night, rng: np.random.Generator, *, nbias: int = 20,
            ndark: int = 10, flat_e: float = 5e5) -> tuple[CCDData, CCDData, CCDData]:
    """Masters with realistic noise and their uncertainties (as the masters module makes)."""
    shape = night.flat.shape
    sb = READ_NOISE / GAIN / np.sqrt(nbias)
    bias = CCDData((night.bias_pattern + rng.normal(0, sb, shape)).astype(np.float32),
                   unit="adu", uncertainty=StdDevUncertainty(np.full(shape, sb, np.float32)),
                   meta={"OVERSCAN": "[81:96,1:96] median/row"})
    sd = np.sqrt(night.dark_rate * 600 + READ_NOISE**2) / GAIN / 600 / np.sqrt(ndark)
    dark = CCDData((night.dark_rate / GAIN + rng.normal(0, 1, shape) * sd).astype(np.float32),
                   unit=u.adu / u.s, uncertainty=StdDevUncertainty(sd.astype(np.float32)))
    sf = night.flat / np.sqrt(flat_e)
    flat = CCDData((night.flat + rng.normal(0, 1, shape) * sf).astype(np.float32),
                   unit=u.dimensionless_unscaled,
                   uncertainty=StdDevUncertainty(sf.astype(np.float32)))
    return bias, dark, flat


PARAMS = ScienceParameters(gain=GAIN, read_noise=READ_NOISE, saturation=SATURATION,
                           overscan=OverscanParameters(), cosmic_rays=NO_CR)


def lecture_reduction(raw: CCDData, bias: CCDData | None, dark: CCDData | None,
                      flat: CCDData | None, exptime: float = EXPTIME) -> np.ndarray:
    """The lecture, step by step, in plain numpy."""
    nx = raw.shape[1] - NOVER
    data = raw.data.astype("f4")
    overscan = data[:, nx:]
    data = data - np.median(overscan, axis=1)[:, np.newaxis]
    data = data[:, :nx]
    if bias is not None:
        data = data - bias.data.astype("f4")
    if dark is not None:
        data = data - dark.data.astype("f4") * np.float32(exptime)
    if flat is not None:
        data = data / flat.data.astype("f4")
    return data


@pytest.fixture(scope="module")
def night() -> Night:
    return make_night()


@pytest.fixture(scope="module")
def frames(night: Night) -> tuple[CCDData, CCDData, CCDData, CCDData]:
    rng = np.random.default_rng(11)
    return (expose(night, rng), *masters(night, rng))


def test_equals_the_lecture_step_by_step(frames: tuple[CCDData, ...]) -> None:
    raw, bias, dark, flat = frames
    reduced = reduce_science(raw, bias=bias, dark=dark, flat=flat, params=PARAMS)
    expected = lecture_reduction(raw, bias, dark, flat)
    assert reduced.ccd.data.dtype == np.float32
    assert reduced.ccd.unit == u.adu
    assert reduced.ccd.shape == expected.shape
    np.testing.assert_allclose(reduced.ccd.data, expected, rtol=1e-5, atol=1e-3)
    assert [s.name for s in reduced.steps] == [
        "saturation", "overscan", "trim", "bias", "uncertainty", "dark", "flat",
        "bad_pixels", "cosmic_rays"]
    assert all(isinstance(s, StepRecord) and s.seconds >= 0 for s in reduced.steps)
    assert [s.applied for s in reduced.steps] == [True] * 8 + [False]


def test_recovers_the_true_sky_and_stars(night: Night, frames: tuple[CCDData, ...]) -> None:
    """Calibrated counts are the photons that arrived (in ADU), within the noise."""
    raw, bias, dark, flat = frames
    reduced = reduce_science(raw, bias=bias, dark=dark, flat=flat, params=PARAMS)
    truth = night.sky_stars / GAIN
    good = reduced.bits == 0
    pulls = (reduced.ccd.data - truth)[good] / reduced.ccd.uncertainty.array[good]
    assert abs(np.mean(pulls)) < 0.05
    assert 0.9 < np.std(pulls) < 1.1


def test_agrees_with_ccdproc(frames: tuple[CCDData, ...]) -> None:
    ccdproc = pytest.importorskip("ccdproc")
    raw, bias, dark, flat = frames
    nx = raw.shape[1] - NOVER
    ref = ccdproc.subtract_overscan(CCDData(raw.data.astype("f4"), unit="adu"),
                                    fits_section=f"[{nx + 1}:{nx + NOVER},:]",
                                    median=True, overscan_axis=1)
    ref = ccdproc.trim_image(ref, fits_section=f"[1:{nx},:]")
    ref = ccdproc.subtract_bias(ref, CCDData(bias.data, unit="adu"))
    ref = ccdproc.subtract_dark(ref, CCDData(dark.data * EXPTIME, unit="adu"),
                                dark_exposure=EXPTIME * u.s, data_exposure=EXPTIME * u.s)
    ref = ccdproc.flat_correct(ref, CCDData(flat.data, unit=""), norm_value=1.0)
    ours = reduce_science(raw, bias=bias, dark=dark, flat=flat, params=PARAMS)
    np.testing.assert_allclose(ours.ccd.data, ref.data, rtol=1e-5, atol=1e-3)


def test_mask_bits_name_the_reason(night: Night, frames: tuple[CCDData, ...]) -> None:
    raw, bias, dark, flat = frames
    reduced = reduce_science(raw, bias=bias, dark=dark, flat=flat, params=PARAMS)
    bits = reduced.bits
    assert bits.dtype == np.uint16
    np.testing.assert_array_equal(reduced.ccd.mask, bits != 0)
    np.testing.assert_array_equal(reduced.ccd.flags, bits)
    saturated_raw = raw.data[:, : night.flat.shape[1]] >= SATURATION
    assert saturated_raw[night.star_peak]
    np.testing.assert_array_equal((bits & MaskBit.SATURATED) != 0, saturated_raw)
    assert bits[night.hot] & MaskBit.HOT
    assert bits[night.dead] & MaskBit.DEAD
    # Nothing else is flagged in this clean frame.
    assert np.count_nonzero(bits) == saturated_raw.sum() + 2


def test_saturation_is_judged_on_raw_values(night: Night) -> None:
    """A pixel at the raw level is saturated even where the flat and the bias move the
    reduced value far below it; one just under it is not."""
    rng = np.random.default_rng(4)
    raw = expose(night, rng)
    bias, dark, flat = masters(night, rng)
    raw.data[10, 10] = 60000
    params = replace(PARAMS, saturation=60000.0)
    bits = reduce_science(raw, bias=bias, dark=dark, flat=flat, params=params).bits
    assert bits[10, 10] & MaskBit.SATURATED
    raw.data[10, 10] = 59999
    bits = reduce_science(raw, bias=bias, dark=dark, flat=flat, params=params).bits
    assert not bits[10, 10] & MaskBit.SATURATED


def test_uncertainty_matches_the_scatter_of_noise_realisations(night: Night) -> None:
    """Std of many independent exposures (masters redrawn too) ≈ the reported σ."""
    rng = np.random.default_rng(21)
    nreal = 300
    stack, sigmas = [], []
    for _ in range(nreal):
        raw = expose(night, rng)
        bias, dark, flat = masters(night, rng, nbias=5, ndark=3, flat_e=2e4)
        reduced = reduce_science(raw, bias=bias, dark=dark, flat=flat, params=PARAMS)
        stack.append(reduced.ccd.data)
        sigmas.append(reduced.ccd.uncertainty.array)
    empirical = np.std(stack, axis=0, ddof=1)
    reported = np.mean(sigmas, axis=0)
    # A flat region of sky, and the hot pixel whose dark shot noise dominates.
    region = (slice(5, 15), slice(20, 40))
    ratio = np.mean(empirical[region]) / np.mean(reported[region])
    assert ratio == pytest.approx(1.0, abs=0.03)
    assert empirical[night.hot] / reported[night.hot] == pytest.approx(1.0, abs=0.15)
    # The dark's shot noise is in there: without it the hot pixel's σ would be far lower.
    sky_only = np.sqrt(night.sky_stars[night.hot] + READ_NOISE**2) / GAIN
    assert reported[night.hot] > 2 * sky_only


def test_cosmic_rays_are_flagged_and_hot_pixels_are_not(night: Night) -> None:
    rng = np.random.default_rng(8)
    shape = night.flat.shape
    cosmic = np.zeros(shape)
    hits = [(12, 12), (25, 70), (60, 45), (85, 25), (45, 8), (75, 62)]
    for i, (y, x) in enumerate(hits):
        cosmic[y, x] = 3000 + 500 * i
        cosmic[y, x + 1] = 1500
    raw = expose(night, rng, cosmic=cosmic)
    bias, dark, flat = masters(night, rng)
    params = replace(PARAMS, cosmic_rays=CosmicRaySettings())
    reduced = reduce_science(raw, bias=bias, dark=dark, flat=flat, params=params)
    is_cr = (reduced.bits & MaskBit.COSMIC_RAY) != 0
    injected = cosmic > 0
    assert is_cr[injected].mean() >= 0.9
    assert not is_cr[night.hot]
    # Stars are not cosmic rays; beyond the hits (and their neighbours) nothing is flagged.
    grown = injected | np.roll(injected, 1, 0) | np.roll(injected, -1, 0)
    grown |= np.roll(grown, 1, 1) | np.roll(grown, -1, 1)
    assert np.count_nonzero(is_cr & ~grown) <= 2
    assert reduced.steps[-1].name == "cosmic_rays" and reduced.steps[-1].applied
    assert reduced.steps[-1].summary["cosmic_ray_pixels"] == is_cr.sum()
    assert reduced.ccd.meta["NCOSMIC"] == is_cr.sum()


@pytest.mark.parametrize("missing", ["bias", "dark", "flat"])
def test_a_missing_master_is_skipped_and_recorded(
        missing: str, frames: tuple[CCDData, ...]) -> None:
    raw, bias, dark, flat = frames
    given = {"bias": bias, "dark": dark, "flat": flat}
    given[missing] = None
    reduced = reduce_science(raw, **given, params=PARAMS)
    expected = lecture_reduction(raw, given["bias"], given["dark"], given["flat"])
    np.testing.assert_allclose(reduced.ccd.data, expected, rtol=1e-5, atol=1e-3)
    step = next(s for s in reduced.steps if s.name == missing)
    assert not step.applied and "no master" in step.summary["reason"]
    header = reduced.ccd.meta
    assert missing in header["CALSKIP"].split()
    assert any(f"Skipped {missing}" in str(h) for h in header["HISTORY"])
    keyword = {"bias": "ZEROCOR", "dark": "DARKCOR", "flat": "FLATCOR"}[missing]
    assert keyword not in header


def test_header_records_every_step_with_legal_cards(frames: tuple[CCDData, ...]) -> None:
    raw, bias, dark, flat = frames
    params = replace(PARAMS, cosmic_rays=CosmicRaySettings())
    reduced = reduce_science(raw, bias=bias, dark=dark, flat=flat, params=params)
    header = reduced.ccd.meta
    for key in ("SATLEVEL", "NSATPIX", "OVERSCAN", "TRIM", "ZEROCOR", "DARKCOR", "FLATCOR",
                "NHOTPIX", "NDEADPIX", "CRCOR", "NCOSMIC"):
        assert key in header, key
    assert "CALSKIP" not in header
    assert not any(card.keyword.startswith("HIERARCH") or len(card.keyword) > 8
                   for card in header.cards)
    buffer = io.BytesIO()
    fits.PrimaryHDU(reduced.ccd.data, header=header).writeto(buffer, output_verify="exception")


def test_inputs_are_not_modified(frames: tuple[CCDData, ...]) -> None:
    raw, bias, dark, flat = frames
    before = [(f.data.copy(), None if f.uncertainty is None else f.uncertainty.array.copy(),
               None if f.mask is None else np.array(f.mask), dict(f.meta)) for f in frames]
    params = replace(PARAMS, cosmic_rays=CosmicRaySettings())
    reduced = reduce_science(raw, bias=bias, dark=dark, flat=flat, params=params)
    for frame, (data, unc, mask, meta) in zip(frames, before, strict=True):
        np.testing.assert_array_equal(frame.data, data)
        if unc is not None:
            np.testing.assert_array_equal(frame.uncertainty.array, unc)
        assert (frame.mask is None) == (mask is None)
        assert dict(frame.meta) == meta
        assert not np.shares_memory(reduced.ccd.data, frame.data)
    assert raw.data.dtype == np.uint16


def test_masters_of_the_wrong_shape_are_refused(frames: tuple[CCDData, ...]) -> None:
    raw, bias, dark, flat = frames
    small = CCDData(bias.data[:-1], unit="adu", meta=bias.meta)
    with pytest.raises(ShapeMismatchError):
        reduce_science(raw, bias=small, dark=dark, flat=flat, params=PARAMS)


def test_result_types(frames: tuple[CCDData, ...]) -> None:
    raw, bias, dark, flat = frames
    reduced = reduce_science(raw, bias=bias, dark=dark, flat=flat, params=PARAMS)
    assert isinstance(reduced, ReducedFrame)
    assert isinstance(reduced.ccd.uncertainty, StdDevUncertainty)
    assert reduced.ccd.uncertainty.array.dtype == np.float32


def test_bit_planes_of_the_masters_are_carried(frames: tuple[CCDData, ...]) -> None:
    """Masters carry a uint16 MaskBit plane as ``flags`` beside a boolean mask (as the
    masters module makes them); the reasons reach the reduced frame, and a boolean mask
    with no bit plane is UNSPECIFIED."""
    raw, bias, dark, flat = frames
    flat_bits = np.zeros(flat.shape, dtype=np.uint16)
    flat_bits[5, 6] = MaskBit.DEAD
    dark_bits = np.zeros(dark.shape, dtype=np.uint16)
    dark_bits[7, 8] = MaskBit.HOT
    bias_mask = np.zeros(bias.shape, dtype=bool)
    bias_mask[9, 10] = True
    with_bits = [CCDData(m.data, unit=m.unit, uncertainty=m.uncertainty, meta=m.meta,
                         mask=plane != 0, flags=None if plane.dtype == bool else plane)
                 for m, plane in ((bias, bias_mask), (dark, dark_bits), (flat, flat_bits))]
    reduced = reduce_science(raw, bias=with_bits[0], dark=with_bits[1], flat=with_bits[2],
                             params=PARAMS)
    assert reduced.bits[5, 6] == MaskBit.DEAD
    assert reduced.bits[7, 8] == MaskBit.HOT
    assert reduced.bits[9, 10] == MaskBit.UNSPECIFIED
    assert reduced.ccd.mask[5, 6] and reduced.ccd.mask[7, 8] and reduced.ccd.mask[9, 10]


@settings(max_examples=25, deadline=None)
@given(shift=st.integers(-1000, 3000), exptime=st.floats(1.0, 1000.0))
def test_a_shift_of_the_bias_level_changes_nothing(shift: int, exptime: float) -> None:
    """The overscan follows the bias level: adding a constant to every raw pixel leaves
    the reduced frame unchanged, whatever the exposure."""
    night = make_night(3)
    rng = np.random.default_rng(5)
    raw = expose(night, rng, exptime=exptime)
    bias, dark, flat = masters(night, rng)
    params = replace(PARAMS, saturation=60000.0)
    shifted = CCDData((raw.data.astype(np.int64) + shift).clip(0, 65535).astype(np.uint16),
                      unit="adu", meta=raw.meta.copy())
    one = reduce_science(raw, bias=bias, dark=dark, flat=flat, params=params)
    two = reduce_science(shifted, bias=bias, dark=dark, flat=flat, params=params)
    good = (one.bits == 0) & (two.bits == 0)
    assert good.mean() > 0.9
    np.testing.assert_allclose(two.ccd.data[good], one.ccd.data[good], rtol=1e-5, atol=2e-3)
    np.testing.assert_allclose(two.ccd.uncertainty.array[good], one.ccd.uncertainty.array[good],
                               rtol=1e-5)


def test_the_dark_needs_an_exposure_time_only_when_there_is_a_dark(
        frames: tuple[CCDData, ...]) -> None:
    raw, bias, dark, flat = frames
    no_exptime = CCDData(raw.data, unit="adu", meta=raw.meta.copy())
    del no_exptime.meta["EXPTIME"]
    with pytest.raises(ReductionError, match="exposure"):
        reduce_science(no_exptime, bias=bias, dark=dark, flat=flat, params=PARAMS)
    reduced = reduce_science(no_exptime, bias=bias, dark=None, flat=flat, params=PARAMS)
    assert "dark" in reduced.ccd.meta["CALSKIP"]
    given = reduce_science(no_exptime, bias=bias, dark=dark, flat=flat,
                           params=replace(PARAMS, exptime=EXPTIME))
    np.testing.assert_allclose(given.ccd.data, lecture_reduction(raw, bias, dark, flat),
                               rtol=1e-5, atol=1e-3)
