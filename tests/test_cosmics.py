"""Cosmic-ray detection: recovery on frames with known hits, the units contract with
astroscrappy, bad pixels and variance, purity, and the same flags under any thread cap."""

from __future__ import annotations

from dataclasses import dataclass

import astroscrappy
import numpy as np
import pytest
from astropy.nddata import CCDData, StdDevUncertainty

from nightlog.errors import ConfigurationError, ReductionError, ShapeMismatchError
from nightlog.reduction.cosmics import CosmicRaySettings, detect_cosmic_rays

GAIN = 2.0  # e-/ADU
READ_NOISE = 11.0  # e-
SATURATION = 64000.0  # ADU
EXPTIME = 300.0  # s
SKY_E = 1500.0  # e- per pixel


@dataclass
class Scene:
    data: np.ndarray  # ADU, reduced (dark subtracted, flat divided)
    variance: np.ndarray  # ADU²
    bad: np.ndarray  # hot pixels as found in the master dark
    cosmic: np.ndarray  # injected cosmic-ray pixels (> 5 σ)
    clean: np.ndarray  # pixels no cosmic ray came near
    hot: np.ndarray  # hot pixels (clean of cosmic rays)
    vignetted: np.ndarray  # clean pixels where the flat is below 0.6


def _stars(rng: np.random.Generator, shape: tuple[int, int], count: int) -> np.ndarray:
    """Moffat (β = 3) stars of 3--5 px FWHM, 1e3--2e6 e-."""
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    image = np.zeros(shape)
    for _ in range(count):
        fwhm = rng.uniform(3, 5)
        alpha = fwhm / (2 * np.sqrt(2 ** (1 / 3) - 1))
        x0, y0 = rng.uniform(0, shape[1]), rng.uniform(0, shape[0])
        flux = 10 ** rng.uniform(3, 6.3)
        r2 = ((xx + 0.5 - x0) ** 2 + (yy + 0.5 - y0) ** 2) / alpha**2
        image += flux * 2 / (np.pi * alpha**2) * (1 + r2) ** -3
    return image


def _cosmic_rays(rng: np.random.Generator, shape: tuple[int, int], count: int) -> np.ndarray:
    """Hits of log-normal charge (median 1500 e-, heavy tail) over 1--4 px tracks."""
    deposit = np.zeros(shape)
    for _ in range(count):
        total = rng.lognormal(np.log(1500), 0.7) * (5 if rng.random() < 0.1 else 1)
        length = min(1.2 * np.tan(rng.uniform(0, 1.2)), 4.0)
        phi = rng.uniform(0, 2 * np.pi)
        x, y = rng.uniform(8, shape[1] - 8), rng.uniform(8, shape[0] - 8)
        s = rng.uniform(0, length, 40)
        xs = np.clip(x + s * np.cos(phi) + rng.normal(0, 0.35, 40), 0, shape[1] - 1)
        ys = np.clip(y + s * np.sin(phi) + rng.normal(0, 0.35, 40), 0, shape[0] - 1)
        np.add.at(deposit, (ys.astype(int), xs.astype(int)), total / 40)
    return deposit


def _grow(mask: np.ndarray) -> np.ndarray:
    grown = mask.copy()
    grown[1:] |= mask[:-1]
    grown[:-1] |= mask[1:]
    grown[:, 1:] |= grown[:, :-1]
    grown[:, :-1] |= grown[:, 1:]
    return grown


def make_scene(seed: int = 0, shape: tuple[int, int] = (512, 512)) -> Scene:
    """A reduced frame with known cosmic rays, stars, hot pixels and vignetted corners."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    r = np.hypot(xx / shape[1] - 0.5, yy / shape[0] - 0.5) / np.sqrt(0.5)
    flat = (1 - 0.65 * np.clip((r - 0.55) / 0.45, 0, 1) ** 2) * rng.normal(1, 0.01, shape)
    stars = _stars(rng, shape, 80)
    dark_rate = np.full(shape, 0.002)
    hot = rng.random(shape) < 1e-3
    dark_rate[hot] = 10 ** rng.uniform(0.5, 1.7, hot.sum())
    cosmic = _cosmic_rays(rng, shape, 150)
    # The dark current of this exposure is 3 % above the master's: hot pixels leave
    # a residual beyond their Poisson noise.
    signal = (SKY_E + stars) * flat + 1.03 * dark_rate * EXPTIME
    electrons = rng.poisson(signal) + cosmic + rng.normal(0, READ_NOISE, shape)
    dark_sigma = np.sqrt(dark_rate * EXPTIME + READ_NOISE**2) / np.sqrt(10) / EXPTIME
    master_dark = dark_rate + rng.normal(0, 1, shape) * dark_sigma
    counts = (electrons - master_dark * EXPTIME) / GAIN
    data = (counts / flat).astype(np.float32)
    variance = ((np.maximum(counts, 0) / GAIN + (READ_NOISE / GAIN) ** 2
                 + (dark_sigma * EXPTIME / GAIN) ** 2) / flat**2).astype(np.float32)
    sigma = np.sqrt(signal + READ_NOISE**2)
    clean = ~_grow(cosmic > sigma)
    found_hot = (master_dark - np.median(master_dark)) * EXPTIME > 5 * np.sqrt(SKY_E)
    return Scene(data, variance, found_hot, cosmic > 5 * sigma, clean,
                 clean & hot & (dark_rate * EXPTIME > 5 * np.sqrt(SKY_E)), clean & (flat < 0.6))


@pytest.fixture(scope="module")
def scene() -> Scene:
    return make_scene()


@pytest.fixture(scope="module")
def scenes(scene: Scene) -> list[Scene]:
    """Three frames: about 1200 cosmic-ray pixels, enough for a fraction good to ~1 %."""
    return [scene, make_scene(1), make_scene(2)]


def _detect(scene: Scene, informed: bool = True,
            settings: CosmicRaySettings | None = None) -> np.ndarray:
    settings = settings or CosmicRaySettings()
    flags, _ = detect_cosmic_rays(
        CCDData(scene.data, unit="adu"), gain=GAIN, read_noise=READ_NOISE,
        saturation=SATURATION, bad_pixels=scene.bad if informed else None,
        variance=scene.variance if informed else None, settings=settings)
    return flags


def _scores(scenes: list[Scene], settings: CosmicRaySettings | None = None
            ) -> tuple[np.ndarray, np.ndarray]:
    """Per truth pixel: masked?; per clean pixel: flagged? -- over all ``scenes``."""
    flags = [_detect(s, settings=settings) for s in scenes]
    masked = np.concatenate([(f | s.bad)[s.cosmic] for f, s in zip(flags, scenes, strict=True)])
    false = np.concatenate([f[s.clean] for f, s in zip(flags, scenes, strict=True)])
    return masked, false


def test_recovers_90_percent_of_cosmic_ray_pixels_with_under_a_permille_false(
        scenes: list[Scene]) -> None:
    """The issue's recovery criterion, met by L.A.Cosmic alone with an informed call
    (measured: 0.921 at 116 per million on these frames)."""
    masked, false = _scores(scenes, CosmicRaySettings(refine=False))
    assert masked.size > 1000
    assert masked.mean() >= 0.90
    assert false.mean() < 1e-3


def test_the_defaults_recover_98_percent_at_under_50_false_per_million(
        scenes: list[Scene]) -> None:
    """With the default settings (the second look, the star and background models) and
    an informed call (measured: 0.989 at 13 per million on these frames; 0.973 without
    the background model).

    A hit on a pixel already known to be bad is masked by that bit; what counts is
    that the final mask covers the cosmic-ray pixels.
    """
    masked, false = _scores(scenes)
    assert masked.size > 1000
    assert masked.mean() >= 0.98
    assert false.mean() < 50e-6


def test_the_second_look_finds_more_and_flags_less_than_lacosmic_alone(
        scenes: list[Scene]) -> None:
    """Differential: on the same frames the refined mask covers more cosmic-ray
    pixels and flags fewer clean ones than L.A.Cosmic's own (measured: 0.921 at 116
    per million without it)."""
    masked, false = _scores(scenes)
    alone_masked, alone_false = _scores(scenes, CosmicRaySettings(refine=False))
    assert masked.mean() >= alone_masked.mean() + 0.02
    assert false.mean() < 0.5 * alone_false.mean()


def test_bad_pixels_and_variance_stop_false_flags_on_hot_pixels_and_vignetting(
        scene: Scene) -> None:
    naive = _detect(scene, informed=False)
    informed = _detect(scene, informed=True)
    assert scene.hot.sum() > 50
    # The naive call takes hot-pixel residuals for cosmic rays ...
    assert naive[scene.hot].mean() > 0.1
    # ... the informed one never flags a known bad pixel,
    assert not informed[scene.bad].any()
    assert informed[scene.hot].mean() < 0.2 * naive[scene.hot].mean()
    # and the right noise model spares the vignetted corners.
    assert informed[scene.vignetted].mean() < 0.5 * naive[scene.vignetted].mean()
    assert informed[scene.clean].mean() < naive[scene.clean].mean()


def test_units_match_a_direct_astroscrappy_call(scene: Scene) -> None:
    """ADU data and ADU² variance with gain; saturation (ADU) converted to electrons
    (L.A.Cosmic's own mask: the second look off)."""
    settings = CosmicRaySettings(niter=1, refine=False)
    ours = _detect(scene, settings=settings)
    theirs, _ = astroscrappy.detect_cosmics(
        scene.data, inmask=scene.bad, invar=scene.variance, gain=GAIN, readnoise=READ_NOISE,
        satlevel=SATURATION * GAIN, niter=1, sepmed=True, cleantype="meanmask",
        fsmode="median", sigclip=4.5, sigfrac=0.3, objlim=5.0)
    np.testing.assert_array_equal(ours, theirs)


def test_saturated_star_core_is_not_a_cosmic_ray() -> None:
    """A flat-topped saturated star (ADU) is excluded once the level is given."""
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:128, 0:128]
    star = 4e6 * np.exp(-((xx - 64.3) ** 2 + (yy - 63.6) ** 2) / (2 * 1.5**2))
    data = np.minimum(rng.normal(750 + star, 20), SATURATION).astype(np.float32)
    core = data >= SATURATION
    assert core.sum() > 20
    ccd = CCDData(data, unit="adu")
    with_level, _ = detect_cosmic_rays(ccd, gain=GAIN, read_noise=READ_NOISE,
                                       saturation=SATURATION)
    assert not with_level[_grow(_grow(core))].any()


def test_cleaning_replaces_only_flagged_pixels(scene: Scene) -> None:
    ccd = CCDData(scene.data, unit="adu", uncertainty=StdDevUncertainty(np.sqrt(scene.variance)))
    flags, cleaned = detect_cosmic_rays(ccd, gain=GAIN, read_noise=READ_NOISE,
                                        saturation=SATURATION, bad_pixels=scene.bad)
    assert cleaned.data.dtype == np.float32
    np.testing.assert_array_equal(cleaned.data[~flags], scene.data[~flags])
    # A replaced pixel is far below the hit it replaced.
    assert np.median(cleaned.data[flags & scene.cosmic]) < np.median(scene.data[flags
                                                                                & scene.cosmic])
    np.testing.assert_array_equal(cleaned.mask, flags)
    np.testing.assert_array_equal(cleaned.uncertainty.array, np.sqrt(scene.variance))

    kept_flags, kept = detect_cosmic_rays(
        ccd, gain=GAIN, read_noise=READ_NOISE, saturation=SATURATION, bad_pixels=scene.bad,
        settings=CosmicRaySettings(clean=False))
    np.testing.assert_array_equal(kept_flags, flags)
    np.testing.assert_array_equal(kept.data, scene.data)


def test_input_frame_is_not_modified(scene: Scene) -> None:
    mask = np.zeros(scene.data.shape, dtype=bool)
    mask[10:12, 10:12] = True
    ccd = CCDData(scene.data.copy(), unit="adu", mask=mask.copy(),
                  uncertainty=StdDevUncertainty(np.sqrt(scene.variance)), meta={"EXPTIME": 1.0})
    bad, variance = scene.bad.copy(), scene.variance.copy()
    _, out = detect_cosmic_rays(ccd, gain=GAIN, read_noise=READ_NOISE, saturation=SATURATION,
                                bad_pixels=bad, variance=variance)
    np.testing.assert_array_equal(ccd.data, scene.data)
    np.testing.assert_array_equal(ccd.mask, mask)
    np.testing.assert_array_equal(bad, scene.bad)
    np.testing.assert_array_equal(variance, scene.variance)
    assert not np.shares_memory(out.data, ccd.data)
    assert not np.shares_memory(out.mask, ccd.mask)
    out.meta["NEW"] = 1
    assert "NEW" not in ccd.meta


def test_frame_mask_is_honoured_and_kept() -> None:
    """A pixel the frame already masks is never flagged, and stays masked."""
    rng = np.random.default_rng(5)
    data = rng.normal(750, np.sqrt(750 / GAIN + 30), (96, 96)).astype(np.float32)
    data[40, 40] += 5000
    data[60, 20] += 5000
    mask = np.zeros(data.shape, dtype=bool)
    mask[40, 40] = True
    flags, out = detect_cosmic_rays(CCDData(data, unit="adu", mask=mask), gain=GAIN,
                                    read_noise=READ_NOISE, saturation=SATURATION)
    assert not flags[40, 40] and flags[60, 20]
    assert out.mask[40, 40] and out.mask[60, 20]


def test_non_finite_pixels_are_masked_not_flagged_and_kept() -> None:
    rng = np.random.default_rng(6)
    data = rng.normal(750, np.sqrt(750 / GAIN + 30), (96, 96)).astype(np.float32)
    data[30, 30] = np.nan
    data[50, 50] += 5000
    flags, out = detect_cosmic_rays(CCDData(data, unit="adu"), gain=GAIN,
                                    read_noise=READ_NOISE, saturation=None)
    assert flags[50, 50] and not flags[30, 30]
    assert np.isnan(out.data[30, 30])
    assert flags.sum() < 10


def test_disabled_detection_flags_nothing_and_copies() -> None:
    data = np.full((32, 32), 100.0, dtype=np.float32)
    data[5, 5] = 1e5
    flags, out = detect_cosmic_rays(CCDData(data, unit="adu"), gain=GAIN, read_noise=READ_NOISE,
                                    saturation=None, settings=CosmicRaySettings(enabled=False))
    assert not flags.any()
    np.testing.assert_array_equal(out.data, data)
    assert not np.shares_memory(out.data, data)


def test_bad_arguments_raise_nightlog_errors() -> None:
    ccd = CCDData(np.ones((16, 16), dtype=np.float32), unit="adu")
    with pytest.raises(ShapeMismatchError):
        detect_cosmic_rays(ccd, gain=GAIN, read_noise=1, saturation=None,
                           bad_pixels=np.zeros((8, 8), bool))
    with pytest.raises(ShapeMismatchError):
        detect_cosmic_rays(ccd, gain=GAIN, read_noise=1, saturation=None,
                           variance=np.ones((16, 8)))
    with pytest.raises(ReductionError):
        detect_cosmic_rays(ccd, gain=0, read_noise=1, saturation=None)
    with pytest.raises(ReductionError):
        detect_cosmic_rays(ccd, gain=GAIN, read_noise=-1, saturation=None)
    for bad in ({"niter": 0}, {"sigclip": 0}, {"cleantype": "mean"}, {"fsmode": "fft"},
                {"psfsize": 8}, {"threads": 0}):
        with pytest.raises(ConfigurationError):
            CosmicRaySettings(**bad)  # type: ignore[arg-type]


def test_threads_setting_gives_the_same_flags(scene: Scene) -> None:
    one = _detect(scene, settings=CosmicRaySettings(niter=1, threads=1))
    two = _detect(scene, settings=CosmicRaySettings(niter=1, threads=2))
    np.testing.assert_array_equal(one, two)


def test_scheduled_detection_equals_the_whole_frame_call(scene: Scene) -> None:
    """The default (scheduled) run gives the direct astroscrappy call's mask and
    cleaned data, and says so in its history."""
    ccd = CCDData(scene.data, unit="adu")
    keywords = dict(gain=GAIN, read_noise=READ_NOISE, saturation=SATURATION,
                    bad_pixels=scene.bad, variance=scene.variance)
    flags, cleaned = detect_cosmic_rays(ccd, **keywords)
    direct_flags, direct = detect_cosmic_rays(ccd, **keywords,
                                              settings=CosmicRaySettings(scheduled=False))
    assert flags.sum() > 100
    np.testing.assert_array_equal(flags, direct_flags)
    np.testing.assert_array_equal(cleaned.data, direct.data)
    assert "scheduled" in str(cleaned.header["HISTORY"])
    assert "scheduled" not in str(direct.header["HISTORY"])
