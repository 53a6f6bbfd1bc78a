"""The second look after L.A.Cosmic: a hit beside a bad pixel is found, a star's core
is not taken for a hit, and the inputs are left untouched."""

from __future__ import annotations

import numpy as np
from astropy.nddata import CCDData

from nightlog.reduction.cosmics import CosmicRaySettings, detect_cosmic_rays
from nightlog.reduction.cosmics_sharpness import refine_cosmic_rays

SKY = 1000.0  # ADU, gain 1 e-/ADU: the variance is the signal


def _sky(seed: int, shape: tuple[int, int] = (96, 96)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(SKY, np.sqrt(SKY), shape).astype(np.float32)


def _detect(data: np.ndarray, bad: np.ndarray, refine: bool) -> np.ndarray:
    flags, _ = detect_cosmic_rays(CCDData(data, unit="adu"), gain=1.0, read_noise=0.0,
                                  saturation=None, bad_pixels=bad,
                                  variance=np.full(data.shape, SKY, np.float32),
                                  settings=CosmicRaySettings(refine=refine))
    return flags


def test_a_hit_beside_a_hot_pixel_is_flagged_where_lacosmic_cannot() -> None:
    """astroscrappy grows the bad-pixel mask by one pixel and never flags it."""
    found = 0
    for seed in range(5):
        data = _sky(seed)
        bad = np.zeros(data.shape, dtype=bool)
        bad[48, 48] = True
        data[48, 48] += 5000.0  # the hot pixel's residual
        data[48, 49] += 30 * np.sqrt(SKY)  # a 30 σ hit right beside it
        assert not _detect(data, bad, refine=False)[48, 49]
        flags = _detect(data, bad, refine=True)
        found += int(flags[48, 49])
        assert not flags[48, 48]  # the bad pixel itself: never a cosmic ray
    assert found == 5


def test_a_faint_hit_spread_over_four_pixels_is_flagged() -> None:
    """A 2 × 2 hit of 5 σ in each pixel: every pixel's neighbours' median is lifted
    by the others, so the excess over the wide level finds it (the 8-neighbour test
    alone found 10 of these 20, the wide level 16). Elsewhere on the sky only noise:
    the background model's seeds (4.25 σ) pass about 11 pixels per million, a
    neighbour joining some (measured: 4 pixels of the 184 000)."""
    found = elsewhere = 0
    for seed in range(20):
        data = _sky(seed)
        data[40:42, 40:42] += np.float32(5 * np.sqrt(SKY))
        flags = _detect(data, np.zeros(data.shape, dtype=bool), refine=True)
        found += int(flags[40:42, 40:42].all())
        flags[38:44, 38:44] = False
        elsewhere += int(flags.sum())
    assert found >= 14
    assert elsewhere <= 40e-6 * 20 * data.size


def test_stars_of_another_profile_are_not_taken_for_hits() -> None:
    """Gaussian stars (not the Moffat the thresholds were chosen on), 3--5 px FWHM,
    5--100 σ of the sky at their peak: 64 stars on four frames without a hit give at
    most a few flagged pixels (measured: none)."""
    total = 0
    for seed in range(4):
        rng = np.random.default_rng(100 + seed)
        yy, xx = np.mgrid[0:128, 0:128]
        star = np.zeros((128, 128))
        for _ in range(16):
            x0, y0 = rng.uniform(10, 118, 2)
            sd = rng.uniform(3, 5) / 2.3548
            peak = rng.uniform(5, 100) * np.sqrt(SKY)
            star += peak * np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * sd * sd))
        data = rng.normal(SKY + star, np.sqrt(SKY + star)).astype(np.float32)
        flags, _ = detect_cosmic_rays(
            CCDData(data, unit="adu"), gain=1.0, read_noise=0.0, saturation=None,
            bad_pixels=np.zeros(data.shape, dtype=bool),
            variance=(SKY + star).astype(np.float32), settings=CosmicRaySettings())
        total += int(flags.sum())
    assert total <= 6


def test_a_bright_star_core_is_not_flagged() -> None:
    """A Moffat β = 3 star of 3 px FWHM (the sharpest ``psf_contrast`` allows), 200 σ
    of the sky at its peak, centred on a pixel and off it."""
    beta, fwhm = 3.0, 3.0
    alpha = fwhm / (2 * np.sqrt(2 ** (1 / beta) - 1))
    for seed, (y0, x0) in enumerate(((48.0, 48.0), (48.3, 47.6), (47.5, 48.5))):
        yy, xx = np.mgrid[0:96, 0:96]
        star = (1 + ((xx - x0) ** 2 + (yy - y0) ** 2) / alpha**2) ** -beta
        peak = 200 * np.sqrt(SKY)
        data = _sky(seed) + np.float32(peak) * star.astype(np.float32)
        variance = (SKY + peak * star).astype(np.float32)
        flagged = np.zeros(data.shape, dtype=bool)
        flagged[round(y0), round(x0)] = True  # as if L.A.Cosmic had taken it
        refined = refine_cosmic_rays(data, variance, np.zeros(data.shape, dtype=bool),
                                     flagged, seed_sigma=4.5, grow_sigma=2.5,
                                     psf_contrast=1.35)
        assert not refined[40:57, 40:57].any()


def test_inputs_are_left_untouched() -> None:
    data = _sky(7)
    data[30, 30] += 40 * np.sqrt(SKY)
    variance = np.full(data.shape, SKY, np.float32)
    bad = np.zeros(data.shape, dtype=bool)
    bad[10, 10] = True
    flagged = np.zeros(data.shape, dtype=bool)
    copies = [a.copy() for a in (data, variance, bad, flagged)]
    refined = refine_cosmic_rays(data, variance, bad, flagged, seed_sigma=4.5,
                                 grow_sigma=2.5, psf_contrast=1.35)
    assert refined[30, 30] and refined is not flagged
    for before, after in zip(copies, (data, variance, bad, flagged), strict=True):
        np.testing.assert_array_equal(before, after)
