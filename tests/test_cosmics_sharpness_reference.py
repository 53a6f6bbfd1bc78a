"""The second look's fast path gives, to the pixel, the mask of its straightforward
form: every statistic by ``numpy.median``/``numpy.nanmedian`` over gathered rows, the
groups by ``scipy.ndimage.label``, the candidates by whole-frame passes. The reference
below is that form, kept here as the definition the fast path must meet."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from astropy.nddata import CCDData
from scipy import ndimage

from nightlog.reduction._cosmics_candidates import flagged_groups
from nightlog.reduction._neighbour_medians import medians
from nightlog.reduction.cosmics import CosmicRaySettings, detect_cosmic_rays
from nightlog.reduction.cosmics_sharpness import refine_cosmic_rays
from tests.test_cosmics import GAIN, READ_NOISE, SATURATION, make_scene

Array = np.ndarray
SETTINGS: dict[str, float] = {"seed_sigma": 4.5, "grow_sigma": 2.5, "psf_contrast": 1.35}
_BOX = [(dy, dx) for dy in range(-3, 4) for dx in range(-3, 4)]
_RING = [i for i, (dy, dx) in enumerate(_BOX) if max(abs(dy), abs(dx)) == 2]
_OUTER = [i for i, (dy, dx) in enumerate(_BOX) if max(abs(dy), abs(dx)) == 3]
_INNER = [i for i, (dy, dx) in enumerate(_BOX) if max(abs(dy), abs(dx)) == 1]
_FIVE = [i for i, (dy, dx) in enumerate(_BOX) if max(abs(dy), abs(dx)) <= 2]
_WIDE = _RING + _OUTER
_SHARP = 4.0  # σ a seed off a profile stands above its neighbours' median


def _median(values: np.ndarray, excluded: np.ndarray) -> np.ndarray:
    out: Array = np.median(values, axis=1)
    rows = excluded.any(axis=1)
    if rows.any():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            out[rows] = np.nanmedian(np.where(excluded[rows], np.nan, values[rows]), axis=1)
    return out


def _noise(excluded: np.ndarray) -> np.ndarray:
    noise: Array = np.sqrt(np.pi / (2 * np.maximum((~excluded).sum(axis=1), 1)))
    return noise


def _psf_test(d: Array, v: Array, excluded: Array, pixels: Array, box: Array,
              contrast: float) -> tuple[Array, Array]:
    centre = d.flat[pixels]
    inner_index = pixels[:, None] + box[_INNER][None, :]
    ring_index = pixels[:, None] + box[_RING][None, :]
    inner_out, ring_out = excluded.flat[inner_index], excluded.flat[ring_index]
    inner = _median(d.flat[inner_index], inner_out)
    level = _median(d.flat[ring_index], ring_out)
    sigma = np.sqrt(_median(v.flat[inner_index], inner_out))
    sigma_inner = sigma * _noise(inner_out)
    sigma_structure = np.hypot(sigma_inner, sigma * _noise(ring_out))
    structure = np.maximum(inner - level - sigma_structure, 0.0)
    q = centre - inner - contrast * structure
    sigma_q = np.hypot(np.hypot(sigma, sigma_inner),
                       np.where(structure > 0, contrast * sigma_structure, 0.0))
    return q, sigma_q


def _may_seed(d: Array, v: Array, excluded: Array, pixels: Array, box: Array,
              threshold: float) -> Array:
    inner_index = pixels[:, None] + box[_INNER][None, :]
    inner_out = excluded.flat[inner_index]
    inner = _median(d.flat[inner_index], inner_out)
    sigma = np.sqrt(_median(v.flat[inner_index], inner_out))
    floor = np.hypot(sigma, sigma * _noise(inner_out))
    seed: Array = d.flat[pixels] - inner > threshold * floor * (1 - 1e-6)
    return seed


def _flat_test(d: Array, v: Array, excluded: Array, pixels: Array, box: Array
               ) -> tuple[Array, Array, Array]:
    ring_index = pixels[:, None] + box[_RING][None, :]
    outer_index = pixels[:, None] + box[_OUTER][None, :]
    ring_out, outer_out = excluded.flat[ring_index], excluded.flat[outer_index]
    level = _median(d.flat[ring_index], ring_out)
    outer = _median(d.flat[outer_index], outer_out)
    sigma = np.sqrt(_median(v.flat[ring_index], ring_out))
    sigma_level, sigma_outer = sigma * _noise(ring_out), sigma * _noise(outer_out)
    profile = ~(level - outer <= 2.0 * np.hypot(sigma_level, sigma_outer))
    return d.flat[pixels] - level, np.hypot(sigma, sigma_level), profile


def _wide_test(d: Array, v: Array, excluded: Array, pixels: Array, box: Array
               ) -> tuple[Array, Array, Array]:
    wide_index = pixels[:, None] + box[_WIDE][None, :]
    wide_out = excluded.flat[wide_index]
    level = _median(d.flat[wide_index], wide_out)
    sigma = np.sqrt(_median(v.flat[wide_index], wide_out))
    sigma_level = sigma * _noise(wide_out)
    return d.flat[pixels] - level, np.sqrt(v.flat[pixels] + sigma_level**2), sigma_level


def _minimum3(values: np.ndarray) -> np.ndarray:
    ny, nx = values.shape
    padded = np.pad(values, 1, mode="edge")
    smallest: Array = np.min([padded[1 + dy:1 + dy + ny, 1 + dx:1 + dx + nx]
                              for dy in (-1, 0, 1) for dx in (-1, 0, 1)], axis=0)
    return smallest


def reference(data: Array, variance: Array, bad: Array, flagged: Array, *,
              seed_sigma: float, grow_sigma: float, psf_contrast: float) -> Array:
    """The second look as the module docstring of ``cosmics_sharpness`` states it."""
    d, v = np.asarray(data, np.float32), np.asarray(variance, np.float32)
    ny, nx = d.shape
    out, bad = np.array(flagged, dtype=bool), np.asarray(bad, dtype=bool)
    if ny < 7 or nx < 7:
        return out
    box = np.array([dy * nx + dx for dy, dx in _BOX])

    def usable(pixels: np.ndarray) -> np.ndarray:
        rows, cols = np.divmod(pixels, nx)
        inside: Array = (rows >= 3) & (rows < ny - 3) & (cols >= 3) & (cols < nx - 3)
        keep = np.flatnonzero(inside)
        near = pixels[keep][:, None] + box[_FIVE][None, :]
        inside[keep] = (~bad.flat[pixels[keep]]) & (bad.flat[near].sum(axis=1) < 2)
        return inside
    pixels = np.flatnonzero(out)
    pixels = pixels[usable(pixels)]
    if pixels.size:
        excess, sigma_e, profile = _flat_test(d, v, bad | out, pixels, box)
        q, sigma_qp = _psf_test(d, v, bad, pixels[profile], box, psf_contrast)
        drop = ~(excess > grow_sigma * sigma_e)
        drop[profile] = ~(q > grow_sigma * sigma_qp)
        groups, count = ndimage.label(out, np.ones((3, 3), dtype=bool))
        strong = np.zeros(count + 1, dtype=bool)
        strong[groups.flat[pixels[(profile & ~drop) | (excess > seed_sigma * sigma_e)]]] = True
        unusable = np.flatnonzero(out)
        strong[groups.flat[unusable[~usable(unusable)]]] = True
        drop |= ~profile & ~strong[groups.flat[pixels]]
        out.flat[pixels[drop]] = False
    least = np.sqrt(_minimum3(v)) * np.float32(min(_SHARP, seed_sigma) * (1 - 1e-3))
    pixels = np.flatnonzero((d - _minimum3(d) > least) & ~out)
    pixels = pixels[usable(pixels)]
    excluded = bad | out
    inner_index = pixels[:, None] + box[_INNER][None, :]
    inner_out = excluded.flat[inner_index]
    inner = _median(d.flat[inner_index], inner_out)
    centre = d.flat[pixels]
    sigma_near = np.sqrt(_median(v.flat[inner_index], inner_out))
    noise = np.hypot(1.0, _noise(inner_out))
    sharp = centre - inner > _SHARP * np.sqrt(v.flat[pixels]) * noise
    keep = sharp | (centre - inner > (seed_sigma + 1.0) * sigma_near * noise * (1 - 1e-6))
    pixels, inner_out = pixels[keep], inner_out[keep]
    inner, centre, sharp, sigma_near = inner[keep], centre[keep], sharp[keep], sigma_near[keep]
    if pixels.size:
        excess, sigma_e, profile = _flat_test(d, v, excluded, pixels, box)
        wide = np.zeros(pixels.size, dtype=np.float32)
        sigma_w = np.ones(pixels.size, dtype=np.float32)
        sigma_level = np.zeros(pixels.size, dtype=np.float32)
        off = np.flatnonzero(~profile & sharp)
        wide[off], sigma_w[off], sigma_level[off] = _wide_test(d, v, excluded, pixels[off],
                                                               box)
        sigma_inner = sigma_near * _noise(inner_out)
        level = np.where(profile, centre - excess, centre - wide)
        lifted = np.where(profile, excess, wide)
        allowance = np.where(profile, 2 * sigma_e, 2 * np.hypot(sigma_inner, sigma_level))
        point = inner - level < lifted * 0.1 + allowance
        off_seed = ~profile & point & sharp & (wide > seed_sigma * sigma_w)
        on = np.flatnonzero(profile & point)
        on = on[_may_seed(d, v, bad, pixels[on], box, seed_sigma + 1.0)]
        star_seed = np.zeros(pixels.size, dtype=bool)
        if on.size:
            q, sigma_q = _psf_test(d, v, bad, pixels[on], box, psf_contrast)
            clear = ~bad.flat[pixels[on][:, None] + box[None, :]].any(axis=1)
            star_seed[on] = clear & (q > (seed_sigma + 1.0) * sigma_q)
        out.flat[pixels[off_seed | star_seed]] = True
    tried = np.zeros(ny * nx, dtype=bool)
    front = np.flatnonzero(out)
    for _ in range(8):
        near = np.unique((front[:, None] + box[_INNER][None, :]).ravel())
        near = near[(near >= 0) & (near < ny * nx)]
        near = near[~out.flat[near] & ~tried[near]]
        near = near[usable(near)]
        if not near.size:
            break
        tried[near] = True
        excess, sigma, profile = _flat_test(d, v, bad | out, near, box)
        front = near[~profile & (excess > grow_sigma * sigma)]
        if not front.size:
            break
        out.flat[front] = True
    return out


def _lacosmic(data: np.ndarray, variance: np.ndarray, bad: np.ndarray) -> np.ndarray:
    flags, _ = detect_cosmic_rays(CCDData(data, unit="adu"), gain=GAIN, read_noise=READ_NOISE,
                                  saturation=SATURATION, bad_pixels=bad, variance=variance,
                                  settings=CosmicRaySettings(refine=False))
    return flags


@pytest.mark.parametrize("seed", [0, 1])
def test_the_refined_mask_is_the_references_on_simulated_frames(seed: int) -> None:
    scene = make_scene(seed, (384, 448))
    flagged = _lacosmic(scene.data, scene.variance, scene.bad)
    fast = refine_cosmic_rays(scene.data, scene.variance, scene.bad, flagged, **SETTINGS)
    np.testing.assert_array_equal(fast, reference(scene.data, scene.variance, scene.bad,
                                                  flagged, **SETTINGS))
    assert (fast != flagged).any()  # the second look did change the mask


def test_the_refined_mask_is_the_references_among_many_bad_pixels_and_noise_flags() -> None:
    """Bad columns and 3 % bad pixels (the dense count of bad pixels), flags on noise
    and at the frame's edge (groups dropped or kept whole), thresholds lowered so that
    every rule has pixels to decide."""
    scene = make_scene(2, (200, 260))
    rng = np.random.default_rng(5)
    bad = scene.bad | (rng.random(scene.data.shape) < 0.03)
    bad[:, 77] = bad[120:, 150] = True
    flagged = _lacosmic(scene.data, scene.variance, bad) | (rng.random(bad.shape) < 0.01)
    flagged[0:5, 40:43] = True
    for settings in (SETTINGS, {"seed_sigma": 3.0, "grow_sigma": 1.5, "psf_contrast": 1.0}):
        fast = refine_cosmic_rays(scene.data, scene.variance, bad, flagged, **settings)
        np.testing.assert_array_equal(
            fast, reference(scene.data, scene.variance, bad, flagged, **settings))


@pytest.mark.parametrize("shape", [(6, 30), (7, 7), (7, 40), (9, 8), (31, 29)])
def test_small_frames_are_refined_as_the_reference_does(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(sum(shape))
    data = rng.normal(1000.0, 30.0, shape).astype(np.float32)
    data[rng.random(shape) < 0.05] += 600.0
    variance = np.full(shape, 900.0, np.float32)
    bad, flagged = rng.random(shape) < 0.04, rng.random(shape) < 0.05
    np.testing.assert_array_equal(
        refine_cosmic_rays(data, variance, bad, flagged, **SETTINGS),
        reference(data, variance, bad, flagged, **SETTINGS))


def test_a_hit_ringed_by_flagged_pixels_is_refined_as_the_reference_does() -> None:
    """The seed's ring at 2 pixels all flagged: its level is a median of nothing."""
    rng = np.random.default_rng(11)
    data = rng.normal(1000.0, 30.0, (40, 40)).astype(np.float32)
    flagged = np.zeros(data.shape, dtype=bool)
    flagged[18:23, 18:23] = True
    flagged[19:22, 19:22] = False
    data[flagged] += 900.0
    data[20, 20] += 3000.0
    variance = np.full(data.shape, 900.0, np.float32)
    bad = np.zeros(data.shape, dtype=bool)
    np.testing.assert_array_equal(
        refine_cosmic_rays(data, variance, bad, flagged, **SETTINGS),
        reference(data, variance, bad, flagged, **SETTINGS))


@pytest.mark.parametrize("k", [8, 16, 24, 40])
def test_medians_are_numpys_to_the_bit(k: int) -> None:
    """Ties; nothing, some, some in a few rows only, one in every row, most, every
    value left out."""
    rng = np.random.default_rng(k)
    values = np.round(rng.normal(0.0, 3.0, (4000, k))).astype(np.float32)
    values[:2000] += rng.normal(0.0, 1.0, (2000, k)).astype(np.float32)
    few = (rng.random(values.shape) < 0.3) & (rng.random(values.shape[0]) < 0.1)[:, None]
    for excluded in (np.zeros(values.shape, dtype=bool), rng.random(values.shape) < 0.3, few,
                     np.eye(k, dtype=bool)[rng.integers(0, k, values.shape[0])],
                     rng.random(values.shape) < 0.97, np.ones(values.shape, dtype=bool)):
        got, count = medians(np.ascontiguousarray(values.T), np.ascontiguousarray(excluded.T))
        np.testing.assert_array_equal(got, _median(values, excluded))
        np.testing.assert_array_equal(count, k - excluded.sum(axis=1))


def test_flagged_groups_are_the_8_connected_groups() -> None:
    rng = np.random.default_rng(3)
    for density in (0.05, 0.3, 0.6):
        mask = rng.random((60, 47)) < density
        mask[:, 0] |= mask[:, -1]  # groups touching both edges must not join across
        labels, _ = ndimage.label(mask, np.ones((3, 3), dtype=bool))
        groups = flagged_groups(np.flatnonzero(mask), mask.shape[1])
        pairs = {(int(a), int(b)) for a, b in zip(groups, labels[mask], strict=True)}
        assert len(pairs) == len(set(groups.tolist())) == labels.max()

