"""The background model: hits on a smooth, vignetted sky found against the frame's mesh;
star wings, faint stars and hot pixels left alone; inputs untouched; the frame's edges."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from astropy.nddata import CCDData

from nightlog.reduction.cosmics import CosmicRaySettings, detect_cosmic_rays
from nightlog.reduction.cosmics_background import background_mesh, refine_on_background

GAIN = 2.0  # e-/ADU
READ_NOISE = 11.0  # e-
SKY_E = 1500.0  # e- per pixel
SEED, GROW = 4.5, 2.5


@dataclass
class Frame:
    data: np.ndarray  # ADU, flat divided
    variance: np.ndarray  # ADU²
    bad: np.ndarray  # known hot pixels
    hits: np.ndarray  # injected cosmic-ray pixels (> 5 σ)
    touched: np.ndarray  # pixels within one of any deposit above 1 σ
    stars: np.ndarray  # pixels where a star's signal exceeds 1 σ of the sky
    vignetted: np.ndarray  # pixels where the flat is below 0.6


def _moffat(shape: tuple[int, int], y0: float, x0: float, flux: float,
            fwhm: float) -> np.ndarray:
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    alpha = fwhm / (2 * np.sqrt(2 ** (1 / 3) - 1))
    r2 = ((xx + 0.5 - x0) ** 2 + (yy + 0.5 - y0) ** 2) / alpha**2
    image: np.ndarray = flux * 2 / (np.pi * alpha**2) * (1 + r2) ** -3
    return image


def make_frame(seed: int = 0, shape: tuple[int, int] = (512, 768), hits: int = 600,
               stars: int = 0, hot: int = 0, edge: bool = False) -> Frame:
    """A flat-divided sky with vignetted corners (flat down to 0.35), faint hits of one
    to three pixels (6--12 σ in all), optional stars and hot pixels."""
    rng = np.random.default_rng(seed)
    ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    r = np.hypot(xx / nx - 0.5, yy / ny - 0.5) / np.sqrt(0.5)
    flat = 1 - 0.65 * np.clip((r - 0.55) / 0.45, 0, 1) ** 2
    star_e = np.zeros(shape)
    for _ in range(stars):
        star_e += _moffat(shape, rng.uniform(0, ny), rng.uniform(0, nx),
                          10 ** rng.uniform(3.3, 6.0), rng.uniform(3, 5))
    sigma = np.sqrt((SKY_E + star_e) * flat + READ_NOISE**2)
    deposit = np.zeros(shape)
    margin = 0 if edge else 8
    for _ in range(hits):
        y, x = rng.integers(margin, ny - margin), rng.integers(margin, nx - margin)
        charge = rng.uniform(6, 12) * sigma[y, x]
        size = rng.integers(1, 4)
        dy, dx = (0, 1) if rng.random() < 0.5 else (1, 0)
        for k in range(size):
            yk, xk = min(y + k * dy, ny - 1), min(x + k * dx, nx - 1)
            deposit[yk, xk] += charge / size
    bad = np.zeros(shape, dtype=bool)
    hot_e = np.zeros(shape)
    if hot:
        where = rng.choice(ny * nx, hot, replace=False)
        bad.flat[where] = True
        hot_e.flat[where] = rng.uniform(200, 2000, hot)  # residual after dark subtraction
    electrons = (rng.poisson((SKY_E + star_e) * flat) + rng.normal(0, READ_NOISE, shape)
                 + deposit + hot_e)
    data = (electrons / GAIN / flat).astype(np.float32)
    variance = ((np.maximum(electrons - deposit - hot_e, 0) + READ_NOISE**2)
                / GAIN**2 / flat**2).astype(np.float32)
    truth = (deposit > 5 * sigma) & ~bad
    near = deposit > sigma
    touched = near.copy()
    for sy in (-1, 0, 1):
        for sx in (-1, 0, 1):
            touched |= np.roll(np.roll(near, sy, 0), sx, 1)
    return Frame(data, variance, bad, truth, touched,
                 star_e * flat > np.sqrt(SKY_E + READ_NOISE**2), flat < 0.6)


def _refine(frame: Frame, flagged: np.ndarray | None = None) -> np.ndarray:
    flagged = np.zeros(frame.data.shape, dtype=bool) if flagged is None else flagged
    return refine_on_background(frame.data, frame.variance, frame.bad, flagged,
                                seed_sigma=SEED, grow_sigma=GROW)


@pytest.fixture(scope="module")
def sky() -> Frame:
    return make_frame()


def test_the_mesh_follows_the_sky_to_a_fraction_of_the_noise(sky: Frame) -> None:
    """The mesh is the sky's level (flat divided: constant) to a small fraction of each
    pixel's noise, the vignetted corners included (a cell's median of 1024 pixels
    holds about 0.04 of it)."""
    level = background_mesh(sky.data, sky.bad)
    truth = SKY_E / GAIN
    noise = np.sqrt(sky.variance)
    assert level.shape == sky.data.shape
    assert (np.abs(level - truth) < 0.2 * noise).all()
    assert np.abs(level - truth).mean() < 0.05 * noise.mean()


def test_faint_hits_on_a_vignetted_sky_are_found(sky: Frame) -> None:
    """Nothing flagged before: the background model alone finds nearly every pixel of
    hits of 6--12 σ (a pixel of a three-pixel hit may hold only 2 σ of it), and
    flags almost nothing else, in the high-noise corners neither."""
    flags = _refine(sky)
    assert sky.hits.sum() > 250
    # The known-background limit with these thresholds is above 0.97 on such hits.
    assert flags[sky.hits].mean() >= 0.95
    clean = ~sky.touched
    assert flags[clean].sum() <= 3
    assert not flags[clean & sky.vignetted].any()


def test_what_was_flagged_is_kept_and_grown(sky: Frame) -> None:
    """A hit's brightest pixel flagged before: its faint pixels join it."""
    before = np.zeros(sky.data.shape, dtype=bool)
    flags = _refine(sky)
    before[flags & sky.hits] = True
    again = _refine(sky, before)
    assert (again >= before).all()
    assert again[sky.hits].mean() >= flags[sky.hits].mean()


def test_star_wings_faint_stars_and_hot_pixels_are_not_flagged() -> None:
    """No hits: stars from faint (a peak of a few σ) to bright, and known hot pixels
    with large residuals; nothing on them is flagged, bad pixels never."""
    frame = make_frame(seed=3, hits=0, stars=120, hot=400)
    flags = _refine(frame)
    assert frame.stars.sum() > 2000
    assert not flags[frame.bad].any()
    assert not flags[frame.stars].any()
    assert flags.sum() <= 2  # noise alone: a few per million


def test_the_inputs_are_untouched(sky: Frame) -> None:
    data, variance, bad = sky.data.copy(), sky.variance.copy(), sky.bad.copy()
    flagged = np.zeros(sky.data.shape, dtype=bool)
    flagged[100, 100] = True
    kept = flagged.copy()
    out = _refine(sky, flagged)
    assert out is not flagged
    np.testing.assert_array_equal(sky.data, data)
    np.testing.assert_array_equal(sky.variance, variance)
    np.testing.assert_array_equal(sky.bad, bad)
    np.testing.assert_array_equal(flagged, kept)


@pytest.mark.parametrize("shape", [(301, 517), (64, 70), (10, 12), (7, 400)])
def test_frames_of_any_shape_and_hits_at_their_edges(shape: tuple[int, int]) -> None:
    """Hits anywhere, the outermost rows and columns included: no error, the outermost
    pixels keep their verdict (not newly flagged), and hits inside the last whole
    blocks are found as elsewhere."""
    frame = make_frame(seed=5, shape=shape, hits=max(4, shape[0] * shape[1] // 800),
                       edge=True)
    flags = _refine(frame)
    assert flags.shape == shape
    border = np.zeros(shape, dtype=bool)
    border[[0, -1], :] = True
    border[:, [0, -1]] = True
    assert not flags[border].any()
    # Noise alone passes the seed test (4.25 σ here) on about 11 pixels per million,
    # a neighbour above 2.5 σ joining some: under 40 per million, at least one.
    assert flags[~frame.touched].sum() <= max(1, 40e-6 * flags.size)
    if min(shape) >= 64:
        inner = frame.hits & ~border
        inner[(shape[0] // 4) * 4:, :] = False
        inner[:, (shape[1] // 4) * 4:] = False
        assert flags[inner].mean() >= 0.9


def test_the_detection_finds_more_with_the_background_model() -> None:
    """Through ``detect_cosmic_rays``: on the same frame the background model's mask
    covers the previous one and more of the hits, and adds nothing off them."""
    frame = make_frame(seed=7, shape=(512, 512), hits=400, stars=40, hot=200)
    results = {}
    for on in (False, True):
        flags, _ = detect_cosmic_rays(
            CCDData(frame.data, unit="adu"), gain=GAIN, read_noise=READ_NOISE,
            saturation=None, bad_pixels=frame.bad, variance=frame.variance,
            settings=CosmicRaySettings(background_model=on, threads=1))
        results[on] = flags
    assert (results[True] >= results[False]).all()
    assert results[True][frame.hits].mean() > results[False][frame.hits].mean()
    added = results[True] & ~results[False]
    assert not added[~frame.touched].any()


def test_pairs_of_faint_pixels_are_seeded_where_lone_ones_are_not() -> None:
    """Hits of two adjacent pixels, each 3.9 σ, are mostly found (their sum passes),
    lone pixels of the same charge mostly not; noise makes no pair."""
    frame = make_frame(seed=9, hits=0)
    rng = np.random.default_rng(9)
    ny, nx = frame.data.shape
    sigma = np.sqrt(frame.variance)
    spots = rng.choice((ny // 16 - 2) * (nx // 16 - 2), 600, replace=False)
    rows, cols = 16 * (spots // (nx // 16 - 2) + 1), 16 * (spots % (nx // 16 - 2) + 1)
    data = frame.data.copy()
    pair, lone = (rows[:300], cols[:300]), (rows[300:], cols[300:])
    for y, x in ((pair[0], pair[1]), (pair[0], pair[1] + 1), (lone[0], lone[1])):
        data[y, x] += 3.9 * sigma[y, x]
    flags = refine_on_background(data, frame.variance, frame.bad,
                                 np.zeros(data.shape, dtype=bool),
                                 seed_sigma=SEED, grow_sigma=GROW)
    both = flags[pair[0], pair[1]] & flags[pair[0], pair[1] + 1]
    assert both.mean() >= 0.6
    assert flags[lone].mean() <= 0.45
    near = np.zeros(data.shape, dtype=bool)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1, 2):
            near[rows + dy, cols + dx] = True
    assert flags[~near].sum() <= 2

