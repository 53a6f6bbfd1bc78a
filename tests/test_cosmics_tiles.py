"""The cosmic-ray detection on bands of the frame, one thread each, gives the same mask
and cleaned image as one band (and so as astroscrappy's own full-frame run).

Frames hold cosmic rays, stars, saturated stars and bad pixels placed across the
bands' boundaries, where a wrong overlap would show first.
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy.nddata import CCDData

from nightlog.reduction import cosmics_tiles
from nightlog.reduction.cosmics import CosmicRaySettings, detect_cosmic_rays
from nightlog.reduction.cosmics_tiles import tiled_lacosmic
from nightlog.reduction.lacosmic import leak_free_astroscrappy

GAIN, READ_NOISE, SATURATION = 1.7, 6.3, 30000.0


def _frame(seed: int, shape: tuple[int, int], boundaries: list[int]
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Data (ADU), variance (ADU²) and bad pixels, crowded near ``boundaries`` (rows)."""
    rng = np.random.default_rng(seed)
    ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    electrons = np.full(shape, rng.uniform(100, 1500) * GAIN)
    near = np.concatenate([b + rng.integers(-20, 21, 30) for b in boundaries])
    for y0 in np.concatenate([near[:20], rng.integers(0, ny, 10)]):
        x0, width = rng.uniform(0, nx), rng.uniform(0.8, 2.5)
        electrons += 10 ** rng.uniform(3, 6) * np.exp(
            -((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * width**2)) / (2 * np.pi * width**2)
    for y0 in near[:3]:  # saturated stars on the boundaries
        x0 = rng.uniform(0, nx)
        electrons += 5e6 * np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * 1.5**2))
    noisy = rng.poisson(electrons).astype(float) + rng.normal(0, READ_NOISE, shape)
    rows = np.clip(np.concatenate([near, rng.integers(0, ny, 200)]), 0, ny - 1)
    cols = rng.integers(0, nx, rows.size)
    np.add.at(noisy, (rows, cols), rng.lognormal(np.log(800), 1.0, rows.size))
    np.add.at(noisy, (np.clip(rows + 1, 0, ny - 1), cols),
              rng.lognormal(np.log(300), 1.0, rows.size))
    data = np.minimum(noisy / GAIN, SATURATION).astype(np.float32)
    variance = ((np.maximum(noisy, 0) + READ_NOISE**2) / GAIN**2).astype(np.float32)
    bad = rng.random(shape) < 2e-3
    for y0 in np.clip(near[:6], 3, ny - 4):  # a hit with no good neighbour: the
        x0 = int(rng.integers(3, nx - 4))      # frame's median replaces it
        bad[y0 - 2:y0 + 3, x0 - 2:x0 + 3] = True
        bad[y0, x0] = False
        data[y0, x0] += np.float32(5000.0)
    return data, variance, bad


@pytest.fixture
def thin_bands(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bands of a small frame: the rule of thumb that keeps bands thick is not under test."""
    monkeypatch.setattr(cosmics_tiles, "MIN_BAND_ROWS", 64)


@pytest.mark.parametrize(("seed", "sepmed", "niter", "informed"),
                         [(1, True, 2, True), (2, False, 3, False), (3, True, 4, False)])
def test_bands_give_the_one_band_mask_and_cleaned_image(
        thin_bands: None, seed: int, sepmed: bool, niter: int, informed: bool) -> None:
    shape = (330, 150)
    data, variance, bad = _frame(seed, shape, [110, 165, 220])
    keywords = dict(gain=GAIN, readnoise=READ_NOISE, satlevel=SATURATION * GAIN,
                    sigclip=4.5, sigfrac=0.3, objlim=5.0, niter=niter, sepmed=sepmed)
    invar = variance if informed else None
    one_mask, one_clean = tiled_lacosmic(data, bad, invar, threads=1, **keywords)
    assert one_mask.sum() > 100
    for threads in (2, 3, 5):
        mask, clean = tiled_lacosmic(data, bad, invar, threads=threads, **keywords)
        np.testing.assert_array_equal(mask, one_mask)
        np.testing.assert_array_equal(clean, one_clean)
    astroscrappy = leak_free_astroscrappy()
    theirs, their_clean = astroscrappy.detect_cosmics(
        data, inmask=bad, invar=invar, cleantype="meanmask", fsmode="median", **keywords)
    np.testing.assert_array_equal(one_mask, theirs)
    np.testing.assert_array_equal(one_clean, their_clean)


def test_detection_with_one_and_two_threads_flags_the_same_pixels() -> None:
    # A frame tall enough for two bands at the default band size.
    data, variance, bad = _frame(4, (2 * cosmics_tiles.MIN_BAND_ROWS + 40, 200),
                                 [cosmics_tiles.MIN_BAND_ROWS + 20])
    ccd = CCDData(data, unit="adu")
    results = [detect_cosmic_rays(ccd, gain=GAIN, read_noise=READ_NOISE,
                                  saturation=SATURATION, bad_pixels=bad, variance=variance,
                                  settings=CosmicRaySettings(threads=threads))
               for threads in (1, 2)]
    (mask_1, frame_1), (mask_2, frame_2) = results
    assert mask_1.sum() > 100
    np.testing.assert_array_equal(mask_1, mask_2)
    np.testing.assert_array_equal(frame_1.data, frame_2.data)
    np.testing.assert_array_equal(frame_1.mask, frame_2.mask)
