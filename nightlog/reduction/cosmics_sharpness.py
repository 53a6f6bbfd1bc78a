"""A second look at cosmic-ray candidates: charge sharper than the optics can make.

L.A.Cosmic (astroscrappy) stays the primary detection; this pass, run only on small
neighbourhoods of candidates, mends what it gets wrong on reduced frames:

* **next to bad pixels** -- astroscrappy grows ``inmask`` by one pixel and never flags
  the grown pixels, so a hit beside a hot pixel stays unmasked. Here a bad pixel is
  only left out of its neighbours' statistics.
* **beside a bright core** -- the Laplacian of a hit's faint pixel next to its bright
  core is negative (clipped to zero), so astroscrappy's growth does not reach it.
  Here neighbours of a flagged pixel are tested on their own excess.
* **stars** -- the fine-structure contrast (``objlim``) both spares real hits on stars
  and flags some cores of sharp stars. Here a pixel is tested against what a
  point-spread function allows instead.

Statistics of a candidate pixel ``p`` of value ``d`` (medians over the good pixels;
``σ`` from the propagated variance, a median of ``n`` pixels has noise √(π/2n) σ)::

    m8 = median of the 8 neighbours          L2, L3 = medians of the rings at 2 and 3
    s  = max(m8 − L2 − σ_s, 0)               structure beyond its own noise
    q  = d − m8 − R · s                      excess over what a star could make
    e  = d − L2                              excess over the local level
    w  = d − L23                             excess over the wide level (both rings,
                                             40 pixels: noise 0.2 σ)
    profile: L2 − L3 > 2 σ                   the background is resolved (a star)

``R`` (``psf_contrast``) is the largest ``(d − m8) / (m8 − L2)`` of a star: 1.35 for a
Moffat β = 3 of 3 px FWHM centred on a pixel (1.26 pixel-integrated; 1.05 at 3.5 px).
A hit puts its charge in one to a few pixels, so ``m8`` and ``L2`` stay at the sky.

* **drop** an L.A.Cosmic flag that carries too little charge of its own: on a
  profile (rings measured without the other flagged pixels) when
  ``q ≤ grow_sigma · σ_q``, the star's shape explaining it; elsewhere when
  ``e ≤ grow_sigma · σ_e``, or when no pixel of its connected group
  passes ``seed_sigma`` (a noise peak: on the study's frames the flagged pixels of
  real hits all had ``e > 3 σ_e``);
* **seed**, off a profile, a pixel with ``w > seed_sigma · σ_w`` (flagged pixels
  left out of ``L23``) that stands above its neighbours' median by 4 σ of
  ``d − m8`` (the pixel's own σ; at 3.5 σ a full-size frame had 50 false flags per
  million instead of 47, the more on faint stars; at 3.0 σ, faint stars' cores
  doubled the false flags); the wide
  level, not ``m8``, is what a hit of two or three pixels does not lift (whole hits
  missed: 3.0 % of the cosmic-ray pixels with ``q``, 2.3 % with ``w``). On a profile
  a pixel with ``q > (seed_sigma + 1) · σ_q`` and no bad pixel within 3 pixels
  (without the margin, three times the false flags on stars). Either must be a
  point: its neighbours (flagged pixels left out) hold at most a tenth of its
  excess over the level, plus their noise (2 σ_e on a profile; off it, twice the
  noise of ``m8 − L23``: with 2 σ_e, faint stars' cores gave 5 false flags per
  million more), which spares the cores of undersampled stars down to about 1.4 px
  FWHM (a 1.6 px Gaussian's hold 16 %). Pair seeds (a pixel and its brightest
  neighbour summed) were tried: 0.0004 more complete for 9 false flags per million
  more;
* **grow**, off any profile, into the 8 neighbours of flagged pixels with
  ``e > grow_sigma · σ_e`` (flagged pixels left out of ``L2``), until none joins.

A star's curved core and wings pass an excess test, so nothing grows on a profile.
Pixels within 3 of the frame's edge, bad pixels, and pixels whose 5 × 5 box holds
two or more bad pixels (a saturated core, a bad column: no honest local level) keep
L.A.Cosmic's verdict. Candidates are astroscrappy's flags, their neighbours, and
pixels whose excess over the 3 × 3 minimum (an upper bound of ``d − m8``, flagged
pixels left out or not) passes the smaller of the sharpness and seed thresholds
against the least noise a seed can have there (the
least variance of the 3 × 3 box, the noise of a median of at most 8), then ``d − m8``
against the same (so no seed is missed); every statistic is computed at candidates only, the medians
of all candidates at once by a sorting network (equal to numpy's to the bit, see
:mod:`nightlog.reduction._neighbour_medians`).

On the four 1024² frames of ``benchmarks/cosmics_misses.py`` the second look reaches
0.964 complete at 31 false flags per million (0.956 at 37 with seeds tested on
``q`` alone); a detector knowing the background, same thresholds: 0.998 at 4. What
is left: hits on stars (2.2 % of the cosmic-ray pixels, most of them missed on
stars above 20 σ of the sky), whole faint hits off stars (1.4 %) and the faint
pixels of found hits (1.3 %).
"""

from __future__ import annotations

import numpy as np

from nightlog.reduction._cosmics_candidates import (
    bad_neighbours,
    flagged_groups,
    seed_candidates,
    usable_pixels,
)
from nightlog.reduction._neighbour_medians import medians, neighbours

__all__ = ["clean_pixels", "refine_cosmic_rays"]

_BOX = [(dy, dx) for dy in range(-3, 4) for dx in range(-3, 4)]
_STRUCTURE_SIGMA = 2.0  # σ of m8 − L above which a profile counts as resolved
_PROFILE_MARGIN = 1.0  # σ more for a seed on a star (at none, 3× the false flags there)
_UNDERSAMPLED = 0.1  # fraction of a seed's excess its neighbours may hold
_SHARP = 4.0  # σ a seed off a profile stands above its neighbours' median (faint stars)
_MAX_ROUNDS = 8  # growth rounds (a 12-pixel streak needs at most 6 from its middle)


class _Offsets:
    """Flat offsets of the rings around a pixel of a frame ``nx`` pixels wide."""

    def __init__(self, nx: int) -> None:
        def ring(*radii: int) -> np.ndarray:
            return np.array([dy * nx + dx for dy, dx in _BOX
                             if max(abs(dy), abs(dx)) in radii], dtype=np.intp)
        self.inner, self.ring, self.outer = ring(1), ring(2), ring(3)
        self.five, self.box = ring(0, 1, 2), ring(0, 1, 2, 3)
        self.wide = ring(2, 3)


def refine_cosmic_rays(data: np.ndarray, variance: np.ndarray, bad: np.ndarray,
                       flagged: np.ndarray, *, seed_sigma: float, grow_sigma: float,
                       psf_contrast: float) -> np.ndarray:
    """Add the cosmic-ray pixels L.A.Cosmic missed and drop the star pixels it took.

    Parameters
    ----------
    data : ndarray
        Reduced frame, sky not subtracted (ADU), finite.
    variance : ndarray
        Its variance (ADU²), finite and positive.
    bad : ndarray of bool
        Known bad pixels: never flagged, left out of every statistic.
    flagged : ndarray of bool
        L.A.Cosmic's cosmic-ray pixels.
    seed_sigma : float
        Threshold (σ) of a new hit's pixel.
    grow_sigma : float
        Threshold (σ) of a flagged pixel's neighbour.
    psf_contrast : float
        Largest ratio of a pixel's excess over its neighbours to their excess over
        the ring around them that the point-spread function can make (dimensionless).

    Returns
    -------
    ndarray of bool
        The refined cosmic-ray mask (a new array; the inputs are untouched).
    """
    d = np.ascontiguousarray(data, dtype=np.float32)
    v = np.ascontiguousarray(variance, dtype=np.float32)
    ny, nx = d.shape
    out = np.array(flagged, dtype=bool, order="C")
    if ny < 7 or nx < 7:
        return out
    near = _Offsets(nx)
    df, vf, outf = d.reshape(-1), v.reshape(-1), out.reshape(-1)
    badf = np.ascontiguousarray(bad, dtype=bool).reshape(-1)
    usable, bad_count = usable_pixels(badf, ny, nx, near.five)
    # Drop L.A.Cosmic's flags that carry too little charge: on a resolved profile
    # those whose excess the PSF explains (cores of stars); elsewhere those below the
    # growth threshold over the local level, and whole groups with no pixel above
    # the seed threshold (noise peaks).
    excluded = badf | outf
    flags = np.flatnonzero(outf)
    pixels = flags[usable[flags]]
    if pixels.size:
        excess, sigma_e, profile = _flat_test(df, vf, excluded, pixels, near)
        q, sigma_qp = _psf_test(df, vf, badf, bad_count, pixels[profile], near,
                                psf_contrast)
        drop = ~(excess > grow_sigma * sigma_e)
        drop[profile] = ~(q > grow_sigma * sigma_qp)
        strong_pixel = (profile & ~drop) | (excess > seed_sigma * sigma_e)
        weak = ~profile & ~drop & ~strong_pixel
        if weak.any():
            # A group reaching where this pass does not look keeps its pixels.
            groups = flagged_groups(flags, nx)
            strong = np.zeros(flags.size, dtype=bool)
            looked = usable[flags]
            strong[groups[~looked]] = True
            strong[groups[looked][strong_pixel]] = True
            drop |= weak & ~strong[groups[looked]]
        outf[pixels[drop]] = False
        excluded[pixels[drop]] = False

    # Seeds. Off a resolved profile a pixel is tested on its excess over the wide
    # level (rings 2 and 3, flagged pixels left out: a 40-pixel median), and must
    # stand above its neighbours' median too; on a profile by the PSF test, with a
    # margin more and no bad pixel within 3 pixels. Candidates: an upper bound of
    # the excess over the neighbours' median (the 3 × 3 minimum, then the median)
    # passes the smaller of the sharpness and seed thresholds against the least
    # noise around (so no seed is missed).
    pixels, least = seed_candidates(d, v, usable.reshape(ny, nx), min(_SHARP, seed_sigma))
    keep = ~outf[pixels]
    pixels, least = pixels[keep], least[keep]
    inner_index = neighbours(pixels, near.inner)
    inner, n_inner = medians(np.take(df, inner_index), np.take(excluded, inner_index))
    keep = df[pixels] - inner > least
    pixels, inner, n_inner = pixels[keep], inner[keep], n_inner[keep]
    inner_index = inner_index[:, keep]
    # Then the neighbours' median: what passes neither the sharpness threshold nor
    # the profile's seed threshold over it is dropped before the rings are measured.
    sigma_near = np.sqrt(medians(np.take(vf, inner_index), np.take(excluded, inner_index))[0])
    centre = df[pixels]
    noise = np.hypot(1.0, _median_noise(n_inner))
    sharp = centre - inner > _SHARP * np.sqrt(vf[pixels]) * noise
    keep = sharp | (centre - inner
                    > (seed_sigma + _PROFILE_MARGIN) * sigma_near * noise * (1 - 1e-6))
    pixels, inner, n_inner = pixels[keep], inner[keep], n_inner[keep]
    centre, sharp, sigma_near = centre[keep], sharp[keep], sigma_near[keep]
    if pixels.size:
        excess, sigma_e, profile = _flat_test(df, vf, excluded, pixels, near)
        # The wide level only where an off-profile seed may pass.
        wide = np.zeros(pixels.size, dtype=np.float32)
        sigma_w = np.ones(pixels.size, dtype=np.float32)
        sigma_level = np.zeros(pixels.size, dtype=np.float32)
        off = np.flatnonzero(~profile & sharp)
        wide[off], sigma_w[off], sigma_level[off] = _wide_test(df, vf, excluded,
                                                               pixels[off], near)
        sigma_inner = sigma_near * _median_noise(n_inner)
        # Not an undersampled star: the neighbours hold at most a tenth of the
        # excess over the level (a 1.6 px FWHM star: 16 %), beyond their noise (off
        # a profile: the noise of their median less the wide level's; 2 σ_e there
        # let faint stars' cores through, 5 false flags per million more).
        level = np.where(profile, centre - excess, centre - wide)
        lifted = np.where(profile, excess, wide)
        allowance = np.where(profile, 2 * sigma_e, 2 * np.hypot(sigma_inner, sigma_level))
        point = inner - level < lifted * _UNDERSAMPLED + allowance
        off_seed = ~profile & point & sharp & (wide > seed_sigma * sigma_w)
        # On a profile the PSF test, its neighbours' medians without the bad pixels
        # only, a margin more and no bad pixel within 3 pixels.
        on = np.flatnonzero(profile & point)
        star_seed = np.zeros(pixels.size, dtype=bool)
        if on.size:
            star_seed[on] = _star_seed(df, vf, badf, bad_count, pixels[on], near,
                                       seed_sigma + _PROFILE_MARGIN, psf_contrast)
        seeds = pixels[off_seed | star_seed]
        outf[seeds] = True
        excluded[seeds] = True
    # Growth, on a flat background only, into neighbours with charge of their own
    # (the flagged pixels left out of the level).
    untried = usable & ~outf
    front = np.flatnonzero(outf)
    for _ in range(_MAX_ROUNDS):
        pixels = neighbours(front, near.inner).reshape(-1)
        pixels = pixels[(pixels >= 0) & (pixels < outf.size)]
        pixels = np.sort(pixels[untried[pixels]])
        pixels = pixels[np.diff(pixels, prepend=-1) > 0]
        if not pixels.size:
            break
        untried[pixels] = False
        excess, sigma, profile = _flat_test(df, vf, excluded, pixels, near, grow_sigma)
        front = pixels[~profile & (excess > grow_sigma * sigma)]
        if not front.size:
            break
        outf[front] = True
        excluded[front] = True
    return out


def clean_pixels(image: np.ndarray, pixels: np.ndarray, excluded: np.ndarray
                 ) -> np.ndarray:
    """``image`` with ``pixels`` replaced by the mean of their 5 × 5 neighbours not
    ``excluded``, as astroscrappy's ``meanmask`` cleaning does.

    Parameters
    ----------
    image : ndarray
        Image to clean (ADU).
    pixels : ndarray of bool
        Pixels to replace; those within 2 pixels of the edge, or with no good
        neighbour, keep their value.
    excluded : ndarray of bool
        Pixels never used (bad pixels, every flagged pixel).

    Returns
    -------
    ndarray of float32
        A new image (``image`` is untouched).
    """
    out = np.array(image, dtype=np.float32)
    pixels = np.asarray(pixels, dtype=bool)
    excluded = np.asarray(excluded, dtype=bool)
    ny, nx = out.shape
    rows, cols = np.nonzero(pixels)
    keep = (rows >= 2) & (rows < ny - 2) & (cols >= 2) & (cols < nx - 2)
    rows, cols = rows[keep], cols[keep]
    total = np.zeros(rows.size)
    count = np.zeros(rows.size)
    for dy in range(-2, 3):
        for dx in range(-2, 3):
            good = ~excluded[rows + dy, cols + dx]
            total += np.where(good, out[rows + dy, cols + dx], 0.0)
            count += good
    some = count > 0
    out[rows[some], cols[some]] = (total[some] / count[some]).astype(np.float32)
    return out


def _psf(centre: np.ndarray, inner: np.ndarray, n_inner: np.ndarray, level: np.ndarray,
         n_ring: np.ndarray, sigma: np.ndarray, contrast: float
         ) -> tuple[np.ndarray, np.ndarray]:
    """``q`` and ``σ_q`` (module docstring) from ``d``, ``m8`` and ``L2`` (ADU), the
    numbers of pixels of those medians and the neighbours' σ (ADU)."""
    sigma_inner = sigma * _median_noise(n_inner)
    sigma_structure = np.hypot(sigma_inner, sigma * _median_noise(n_ring))
    # Only the structure beyond its own noise is taken for the profile's.
    structure = np.maximum(inner - level - sigma_structure, 0.0)
    q = centre - inner - contrast * structure
    sigma_q = np.hypot(np.hypot(sigma, sigma_inner),
                       np.where(structure > 0, contrast * sigma_structure, 0.0))
    return q, sigma_q


def _psf_test(d: np.ndarray, v: np.ndarray, bad: np.ndarray, bad_count: np.ndarray,
              pixels: np.ndarray, near: _Offsets, contrast: float
              ) -> tuple[np.ndarray, np.ndarray]:
    """``q`` and ``σ_q`` at the flat indices ``pixels``, the ``bad`` pixels left out
    of the medians (NaN where none is left)."""
    inner_index = neighbours(pixels, near.inner)
    ring_index = neighbours(pixels, near.ring)
    inner_out = bad_neighbours(bad, bad_count, pixels, inner_index)
    inner, n_inner = medians(np.take(d, inner_index), inner_out)
    level, n_ring = medians(np.take(d, ring_index),
                            bad_neighbours(bad, bad_count, pixels, ring_index))
    sigma = np.sqrt(medians(np.take(v, inner_index), inner_out)[0])
    return _psf(d[pixels], inner, n_inner, level, n_ring, sigma, contrast)


def _star_seed(d: np.ndarray, v: np.ndarray, bad: np.ndarray, bad_count: np.ndarray,
               pixels: np.ndarray, near: _Offsets, threshold: float, contrast: float
               ) -> np.ndarray:
    """Whether each of ``pixels`` (on a resolved profile) is a seed: ``d − m8`` and
    ``q`` pass ``threshold`` (σ) and no bad pixel lies within 3 pixels."""
    inner_index = neighbours(pixels, near.inner)
    ring_index = neighbours(pixels, near.ring)
    inner_out = bad_neighbours(bad, bad_count, pixels, inner_index)
    inner, n_inner = medians(np.take(d, inner_index), inner_out)
    sigma = np.sqrt(medians(np.take(v, inner_index), inner_out)[0])
    floor = np.hypot(sigma, sigma * _median_noise(n_inner))
    may = d[pixels] - inner > threshold * floor * (1 - 1e-6)
    level, n_ring = medians(np.take(d, ring_index),
                            bad_neighbours(bad, bad_count, pixels, ring_index))
    q, sigma_q = _psf(d[pixels], inner, n_inner, level, n_ring, sigma, contrast)
    clear = ~np.take(bad, neighbours(pixels, near.box)).any(axis=0)
    seed: np.ndarray = may & clear & (q > threshold * sigma_q)
    return seed


def _flat_test(d: np.ndarray, v: np.ndarray, excluded: np.ndarray, pixels: np.ndarray,
               near: _Offsets, grow: float | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Excess ``e = d − L2`` over the ring at distance 2, its noise ``σ_e``, and
    whether the background is a resolved profile (``L2 − L3`` beyond 2 σ), the
    ``excluded`` pixels left out. With ``grow`` (σ), the profile is tested only
    where ``e > grow · σ_e`` (True elsewhere: such a pixel joins no hit anyway)."""
    ring_index = neighbours(pixels, near.ring)
    ring_out = np.take(excluded, ring_index)
    level, n_ring = medians(np.take(d, ring_index), ring_out)
    sigma = np.sqrt(medians(np.take(v, ring_index), ring_out)[0])
    sigma_level = sigma * _median_noise(n_ring)
    excess, sigma_e = d[pixels] - level, np.hypot(sigma, sigma_level)
    look = (np.arange(pixels.size) if grow is None
            else np.flatnonzero(excess > grow * sigma_e))
    outer_index = neighbours(pixels[look], near.outer)
    outer, n_outer = medians(np.take(d, outer_index), np.take(excluded, outer_index))
    sigma_outer = sigma[look] * _median_noise(n_outer)
    profile = np.ones(pixels.size, dtype=bool)
    profile[look] = ~(level[look] - outer
                      <= _STRUCTURE_SIGMA * np.hypot(sigma_level[look], sigma_outer))
    return excess, sigma_e, profile


def _wide_test(d: np.ndarray, v: np.ndarray, excluded: np.ndarray, pixels: np.ndarray,
               near: _Offsets) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Excess ``w = d − L23`` over the wide level (median of the 40 pixels of the
    rings at 2 and 3), its noise ``σ_w`` and the level's noise, the ``excluded``
    pixels left out."""
    wide_index = neighbours(pixels, near.wide)
    wide_out = np.take(excluded, wide_index)
    level, n_wide = medians(np.take(d, wide_index), wide_out)
    sigma = np.sqrt(medians(np.take(v, wide_index), wide_out)[0])
    sigma_level = sigma * _median_noise(n_wide)
    return d[pixels] - level, np.sqrt(v[pixels] + sigma_level**2), sigma_level


def _median_noise(count: np.ndarray) -> np.ndarray:
    """Noise of a median of ``count`` pixels, in units of one pixel's: √(π / 2n)."""
    noise: np.ndarray = np.sqrt(np.pi / (2 * np.maximum(count, 1)))
    return noise
