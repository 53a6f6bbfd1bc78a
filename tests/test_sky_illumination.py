"""The night-sky illumination core: recovery of a known illumination error from
dithered frames with stars, the lecture's combination as the reference, the inputs
untouched, refusals, and the division with its uncertainty."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.nddata import CCDData, StdDevUncertainty
from astropy.stats import sigma_clip
from hypothesis import given, settings
from hypothesis import strategies as st

from nightlog.errors import ProfileError, ReductionError, ShapeMismatchError
from nightlog.header.profiles.tables import profile_from_table
from nightlog.reduction.sky_illumination import (
    SkyFlatOptions,
    apply_illumination,
    mask_sources,
    night_sky_illumination,
)

SHAPE = (240, 360)
SKY_E = 1500.0


def _illumination_error() -> np.ndarray:
    """What the flat got wrong: a 4 % tilt in x and 2 % in y (mean 1)."""
    y, x = np.mgrid[0:SHAPE[0], 0:SHAPE[1]]
    err = 1 + 0.04 * (x / (SHAPE[1] - 1) - 0.5) + 0.02 * (y / (SHAPE[0] - 1) - 0.5)
    return err / err.mean()


def _frames(n: int, *, seed: int = 1, dither: float = 25.0, stars: int = 80
            ) -> list[CCDData]:
    """Flat-fielded frames of a uniform sky seen through the illumination error, with
    the same stars shifted by ``dither`` pixels per frame, Poisson noise, in electrons."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:SHAPE[0], 0:SHAPE[1]]
    sx, sy = rng.uniform(0, SHAPE[1], stars), rng.uniform(0, SHAPE[0], stars)
    flux = rng.lognormal(9.0, 1.0, stars)
    out = []
    for i in range(n):
        light = np.full(SHAPE, SKY_E * (1 + 0.1 * i))  # the sky level changes
        for a, b, f in zip((sx + dither * i) % SHAPE[1], (sy + 0.6 * dither * i) % SHAPE[0],
                           flux, strict=True):
            light += f / (2 * np.pi * 1.8**2) * np.exp(-((x - a) ** 2 + (y - b) ** 2)
                                                       / (2 * 1.8**2))
        counts = rng.poisson(light * _illumination_error()).astype(np.float32)
        out.append(CCDData(counts, unit="electron",
                           uncertainty=StdDevUncertainty(np.sqrt(counts)),
                           mask=np.zeros(SHAPE, bool)))
    return out


def _block_rms(ratio: np.ndarray, block: int = 24) -> float:
    ny, nx = ratio.shape[0] // block, ratio.shape[1] // block
    cells = ratio[: ny * block, : nx * block].reshape(ny, block, nx, block).mean(axis=(1, 3))
    return float(np.std(cells))


def test_the_model_recovers_the_illumination_error() -> None:
    frames = _frames(7)
    made = night_sky_illumination(frames, options=SkyFlatOptions(min_frames=5))
    truth = _illumination_error()
    # The model is the error up to its normalisation (1 over the whole frame here).
    model = np.asarray(made.model.data, dtype=np.float64)
    assert model.mean() == pytest.approx(1.0, abs=1e-6)
    # Noise of a 7-frame median of sky pixels, averaged by the fit over thousands
    # of pixels: the model is good to a small fraction of the 6 % it corrects.
    assert np.max(np.abs(model - truth / truth.mean())) < 0.002
    assert made.uncovered_fraction == 0.0
    assert all(0.0 < f < 0.3 for f in made.masked_fractions)
    # Each frame's sky: its level through the error's mean of 1.
    assert made.skies == pytest.approx([SKY_E * (1 + 0.1 * i) for i in range(7)], rel=0.01)


def test_dividing_by_the_model_flattens_the_sky_to_its_noise() -> None:
    frames = _frames(7)
    made = night_sky_illumination(frames, options=SkyFlatOptions(min_frames=5))
    before = frames[0]
    after = apply_illumination(before, made.model)
    # The sky of the corrected frame is uniform, as the true sky: its block averages
    # (stars left out) scatter as their pure noise does; uncorrected, far more.
    not_sky = mask_sources(before)
    ratio = np.where(not_sky, np.nan, np.asarray(after.data) / np.median(after.data[~not_sky]))
    ratio_uncorrected = np.where(not_sky, np.nan, np.asarray(before.data)
                                 / np.median(before.data[~not_sky]))
    noise = np.sqrt(SKY_E) / SKY_E / 24  # one pixel's relative noise over a 24 x 24 block
    filled = np.where(np.isnan(ratio), np.nanmedian(ratio), ratio)
    assert _block_rms(filled) < 1.5 * noise
    filled0 = np.where(np.isnan(ratio_uncorrected), 1.0, ratio_uncorrected)
    assert _block_rms(filled0) > 10 * noise


def test_the_combination_is_the_lectures_clipped_median_of_sky_scaled_frames() -> None:
    """Without sources the sky flat before smoothing is the lecture's recipe:
    ``sigma_clip(..., cenfunc='median', axis=0)`` then ``numpy.ma.median``, of the
    frames divided by their medians."""
    frames = _frames(6, stars=0)
    opts = SkyFlatOptions(min_frames=5, nsigma=50.0, dilate=0)  # nothing is a source
    made = night_sky_illumination(frames, options=opts)
    stack = np.array([f.data / np.median(f.data) for f in frames])
    reference = np.ma.median(sigma_clip(stack, sigma=3.0, cenfunc="median", stdfunc="mad_std",
                                        maxiters=3, axis=0), axis=0).data
    assert np.allclose(made.combined.data, reference, atol=1e-5)


def test_inputs_are_left_untouched() -> None:
    frames = _frames(5)
    copies = [(f.data.copy(), f.uncertainty.array.copy(), f.mask.copy()) for f in frames]
    made = night_sky_illumination(frames, options=SkyFlatOptions(min_frames=5))
    model = made.model.data.copy()
    apply_illumination(frames[0], made.model)
    for f, (d, u, m) in zip(frames, copies, strict=True):
        assert np.array_equal(f.data, d)
        assert np.array_equal(f.uncertainty.array, u)
        assert np.array_equal(f.mask, m)
    assert np.array_equal(made.model.data, model)
    assert "ILLUMCOR" not in frames[0].header


def test_too_few_frames_or_mixed_shapes_are_refused() -> None:
    frames = _frames(4)
    with pytest.raises(ReductionError, match="4 frame"):
        night_sky_illumination(frames, options=SkyFlatOptions(min_frames=5))
    with pytest.raises(ReductionError, match="at least 2"):
        night_sky_illumination(frames, options=SkyFlatOptions(min_frames=1))
    odd = CCDData(np.ones((10, 10), np.float32), unit="electron")
    with pytest.raises(ShapeMismatchError):
        night_sky_illumination([*frames, odd], options=SkyFlatOptions(min_frames=5))


def test_frames_that_are_not_dithered_leave_holes_that_are_counted() -> None:
    made = night_sky_illumination(_frames(5, dither=0.0, stars=150),
                                  options=SkyFlatOptions(min_frames=5))
    # The stars stay on the same pixels: those pixels never see the sky.
    assert made.uncovered_fraction > 0.005
    assert np.isnan(made.combined.data).mean() == pytest.approx(made.uncovered_fraction)
    assert np.all(np.isfinite(made.model.data))


def test_applying_twice_or_a_bad_model_is_refused() -> None:
    frame = _frames(1)[0]
    model = CCDData(np.full(SHAPE, 1.02, np.float32), unit="")
    once = apply_illumination(frame, model)
    with pytest.raises(ReductionError, match="already"):
        apply_illumination(once, model)
    with pytest.raises(ReductionError, match="positive"):
        apply_illumination(frame, CCDData(np.zeros(SHAPE, np.float32), unit=""))
    with pytest.raises(ShapeMismatchError):
        apply_illumination(frame, CCDData(np.ones((3, 3), np.float32), unit=""))


@settings(max_examples=25, deadline=None)
@given(level=st.floats(0.5, 2.0), value=st.floats(0.8, 1.25))
def test_division_scales_data_and_uncertainty_alike(level: float, value: float) -> None:
    data = np.full((8, 8), 100.0 * level, np.float32)
    frame = CCDData(data, unit="adu", uncertainty=StdDevUncertainty(np.full((8, 8), 3.0)),
                    mask=np.eye(8, dtype=bool))
    out = apply_illumination(frame, CCDData(np.full((8, 8), value, np.float32), unit=""))
    assert np.allclose(out.data, data / np.float32(value), rtol=1e-6)
    assert np.allclose(out.uncertainty.array, 3.0 / np.float32(value), rtol=1e-6)
    assert np.array_equal(out.mask, frame.mask)
    assert out.unit == frame.unit


def test_profile_keys_are_validated() -> None:
    profile = profile_from_table("cam", {"illumination": "night-sky",
                                         "illumination_min_frames": 7,
                                         "illumination_degree": 3})
    assert (profile.illumination, profile.illumination_min_frames,
            profile.illumination_degree) == ("night-sky", 7, 3)
    default = profile_from_table("cam", {})
    assert (default.illumination, default.illumination_min_frames) == ("none", 5)
    with pytest.raises(ProfileError, match="night-sky"):
        profile_from_table("cam", {"illumination": "twilight"})
    with pytest.raises(ProfileError, match=">= 2"):
        profile_from_table("cam", {"illumination_min_frames": 1})
