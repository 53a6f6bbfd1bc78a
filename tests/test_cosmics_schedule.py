"""The scheduled L.A.Cosmic gives astroscrappy's own mask and cleaned image, bit for bit.

Random frames (sky, stars, cosmic rays, bad pixels, saturated stars, some at the
edges) are run through :func:`astroscrappy.detect_cosmics` on the whole frame and
through :func:`scheduled_lacosmic`, forced onto its patch path; every pixel of the
mask and of the cleaned image must agree.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import ndimage

from nightlog.reduction import cosmics_patches, cosmics_schedule
from nightlog.reduction.cosmics_schedule import dilate, scheduled_lacosmic
from nightlog.reduction.cosmics_step import laplacian
from nightlog.reduction.lacosmic import leak_free_astroscrappy

GAIN = 1.7  # e-/ADU
READ_NOISE = 6.3  # e-
SATURATION = 30000.0  # ADU


def _frame(seed: int, shape: tuple[int, int], hits: int, stars: int,
           saturated: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Data (ADU), variance (ADU²) and bad pixels of a random reduced frame."""
    rng = np.random.default_rng(seed)
    ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    sky = rng.uniform(50, 2000)
    electrons = np.full(shape, sky * GAIN)
    for _ in range(stars):
        x0, y0, width = rng.uniform(0, nx), rng.uniform(0, ny), rng.uniform(0.8, 2.5)
        electrons += 10 ** rng.uniform(3, 6) * np.exp(
            -((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * width**2)) / (2 * np.pi * width**2)
    for _ in range(saturated):  # anywhere, the frame's edges included
        x0, y0 = rng.uniform(-3, nx + 3), rng.uniform(-3, ny + 3)
        electrons += 5e6 * np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * 1.5**2))
    noisy = rng.poisson(electrons).astype(float) + rng.normal(0, READ_NOISE, shape)
    rows, cols = rng.integers(0, ny, hits), rng.integers(0, nx, hits)
    np.add.at(noisy, (rows, cols), rng.lognormal(np.log(800), 1.0, hits))
    tails = rng.random(hits) < 0.5
    np.add.at(noisy, (np.clip(rows[tails] + 1, 0, ny - 1), cols[tails]),
              rng.lognormal(np.log(300), 1.0, int(tails.sum())))
    data = np.minimum(noisy / GAIN, SATURATION).astype(np.float32)
    variance = ((np.maximum(noisy, 0) + READ_NOISE**2) / GAIN**2).astype(np.float32)
    bad = rng.random(shape) < rng.choice([0.0, 1e-3, 1e-2])
    return data, variance, bad


@pytest.fixture
def patches_always(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never fall back to one full-frame step: the patches are what is under test."""
    monkeypatch.setattr(cosmics_patches, "_FULL_FRAME_FRACTION", np.inf)


@settings(max_examples=10, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**31), ny=st.integers(100, 190), nx=st.integers(100, 190),
       hits=st.integers(0, 60), stars=st.integers(0, 12), saturated=st.integers(0, 3),
       sepmed=st.booleans(), niter=st.integers(1, 4), informed=st.booleans(),
       sigclip=st.sampled_from([3.0, 4.5, 6.0]), objlim=st.sampled_from([2.0, 5.0]))
def test_scheduled_mask_and_cleaned_image_equal_astroscrappy(
        patches_always: None, seed: int, ny: int, nx: int, hits: int, stars: int,
        saturated: int, sepmed: bool, niter: int, informed: bool, sigclip: float,
        objlim: float) -> None:
    astroscrappy = leak_free_astroscrappy()
    data, variance, bad = _frame(seed, (ny, nx), hits, stars, saturated)
    keywords = dict(gain=GAIN, readnoise=READ_NOISE, satlevel=SATURATION * GAIN,
                    sigclip=sigclip, sigfrac=0.3, objlim=objlim, niter=niter, sepmed=sepmed)
    invar = variance if informed else None
    theirs, their_clean = astroscrappy.detect_cosmics(
        data, inmask=bad, invar=invar, cleantype="meanmask", fsmode="median", **keywords)
    ours, our_clean, report = scheduled_lacosmic(data, bad, invar, **keywords)
    np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(our_clean, their_clean)
    assert report.iterations <= niter


def test_a_frame_with_nothing_to_flag_gives_astroscrappys_answer() -> None:
    # No candidate anywhere: no patch runs. This once probed astroscrappy's C filters
    # with a 1 x 1 patch, which corrupted the heap and aborted the process.
    astroscrappy = leak_free_astroscrappy()
    data, variance, bad = _frame(7, (512, 512), hits=0, stars=0, saturated=0)
    keywords = dict(gain=GAIN, readnoise=READ_NOISE, satlevel=np.inf, sigclip=6.0,
                    sigfrac=0.3, objlim=5.0, niter=1, sepmed=True)
    theirs, their_clean = astroscrappy.detect_cosmics(
        data, inmask=bad, invar=variance, cleantype="meanmask", fsmode="median", **keywords)
    for _ in range(5):  # heap damage shows late: repeat
        ours, our_clean, _ = scheduled_lacosmic(data, bad, variance, **keywords)
        np.testing.assert_array_equal(ours, theirs)
        np.testing.assert_array_equal(our_clean, their_clean)


def test_later_iterations_run_only_near_what_changed(patches_always: None) -> None:
    data, variance, bad = _frame(4, (400, 400), hits=40, stars=4, saturated=0)
    crmask, _, report = scheduled_lacosmic(
        data, bad, variance, gain=GAIN, readnoise=READ_NOISE, satlevel=np.inf, sigclip=4.5,
        sigfrac=0.3, objlim=5.0, niter=4, sepmed=True)
    assert crmask.sum() > 40
    assert report.iterations >= 2
    assert all(pixels < 0.5 * data.size for pixels in report.pixels_run[1:])


def test_laplacian_equals_astroscrappys_subsampled_one() -> None:
    from astroscrappy import utils

    rng = np.random.default_rng(7)
    for shape in ((6, 6), (7, 11), (64, 50)):
        image = (rng.normal(1e3, 40, shape) * rng.choice([1.0, 1.0, 4.0], shape)).astype(
            np.float32)
        conved = utils.laplaceconvolve(utils.subsample(image))
        conved[conved < 0] = 0.0
        np.testing.assert_array_equal(laplacian(utils, image), utils.rebin(conved))


def test_dilate_is_a_square_maximum_filter() -> None:
    mask = np.random.default_rng(8).random((60, 70)) < 0.01
    for radius in (1, 2, 3, 4, 6, 8, 11):
        np.testing.assert_array_equal(
            dilate(mask, radius), ndimage.maximum_filter(mask, size=2 * radius + 1,
                                                         mode="constant"))


def test_fallback_median_is_astroscrappys() -> None:
    from astroscrappy import utils

    rng = np.random.default_rng(3)
    for n in (1, 2, 3, 4, 11, 1000, 1001):
        for values in (rng.normal(0, 1, n), np.round(rng.normal(0, 3, n))):
            values = values.astype(np.float32)
            assert cosmics_schedule._lower_median(values) == utils.median(values.copy(), n)
