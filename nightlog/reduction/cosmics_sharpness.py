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
* **seed** a pixel with ``q > seed_sigma · σ_q`` that is a point: its neighbours
  hold at most a tenth of its excess ``e`` (plus 2 σ_e), which spares the cores of
  undersampled stars down to about 1.4 px FWHM (a 1.6 px Gaussian's hold 16 %);
  on a profile only with 1 σ more and no bad pixel within 3 pixels (without the
  margin, three times the false flags on stars);
* **grow**, off any profile, into the 8 neighbours of flagged pixels with
  ``e > grow_sigma · σ_e`` (flagged pixels left out of ``L2``), until none joins.

A star's curved core and wings pass an excess test, so nothing grows on a profile.
Pixels within 3 of the frame's edge, bad pixels, and pixels whose 5 × 5 box holds
two or more bad pixels (a saturated core, a bad column: no honest local level) keep
L.A.Cosmic's verdict. Candidates are astroscrappy's flags, their neighbours, and
pixels whose excess over the 3 × 3 minimum (an upper bound of ``d − m8``) passes the
seed threshold against the least variance of the 3 × 3 box (so no seed is missed);
every statistic is computed at candidates only.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import ndimage

__all__ = ["clean_pixels", "refine_cosmic_rays"]

_BOX = [(dy, dx) for dy in range(-3, 4) for dx in range(-3, 4)]
_RING = [i for i, (dy, dx) in enumerate(_BOX) if max(abs(dy), abs(dx)) == 2]
_OUTER = [i for i, (dy, dx) in enumerate(_BOX) if max(abs(dy), abs(dx)) == 3]
_INNER = [i for i, (dy, dx) in enumerate(_BOX) if max(abs(dy), abs(dx)) == 1]
_FIVE = [i for i, (dy, dx) in enumerate(_BOX) if max(abs(dy), abs(dx)) <= 2]
_CENTRE = _BOX.index((0, 0))
_STRUCTURE_SIGMA = 2.0  # σ of m8 − L above which a profile counts as resolved
_PROFILE_MARGIN = 1.0  # σ more for a seed on a star (at none, 3× the false flags there)
_UNDERSAMPLED = 0.1  # fraction of a seed's excess its neighbours may hold
_MAX_ROUNDS = 8  # growth rounds (a 12-pixel streak needs at most 6 from its middle)


def refine_cosmic_rays(data: np.ndarray, variance: np.ndarray, bad: np.ndarray,
                       flagged: np.ndarray, *, seed_sigma: float, grow_sigma: float,
                       psf_contrast: float) -> np.ndarray:
    """Add the cosmic-ray pixels L.A.Cosmic missed and drop the star pixels it took.

    Parameters
    ----------
    data : ndarray
        Reduced frame, sky not subtracted (ADU).
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
    out = np.array(flagged, dtype=bool)
    bad = np.asarray(bad, dtype=bool)
    if ny < 7 or nx < 7:
        return out
    box = np.array([dy * nx + dx for dy, dx in _BOX])

    def usable(pixels: np.ndarray) -> np.ndarray:
        """At least 3 pixels inside the frame, not bad, at most one bad in the 5 × 5."""
        rows, cols = np.divmod(pixels, nx)
        inside = (rows >= 3) & (rows < ny - 3) & (cols >= 3) & (cols < nx - 3)
        keep = np.flatnonzero(inside)
        near = pixels[keep][:, None] + box[_FIVE][None, :]
        inside[keep] = (~bad.flat[pixels[keep]]) & (bad.flat[near].sum(axis=1) < 2)
        return inside
    # Drop L.A.Cosmic's flags that carry too little charge: on a resolved profile
    # those whose excess the PSF explains (cores of stars); elsewhere those below the
    # growth threshold over the local level, and whole groups with no pixel above
    # the seed threshold (noise peaks).
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
        # A group reaching where this pass does not look keeps its pixels.
        unusable = np.flatnonzero(out)
        unusable = unusable[~usable(unusable)]
        strong[groups.flat[unusable]] = True
        drop |= ~profile & ~strong[groups.flat[pixels]]
        out.flat[pixels[drop]] = False

    # Seeds: an upper bound of the excess (the 3 × 3 minimum for the neighbours'
    # median) against the least noise around, then the PSF test; on a resolved
    # profile a seed needs a margin more and no bad pixel within 3 pixels.
    least = np.sqrt(_minimum3(v))
    least *= np.float32(seed_sigma * (1 - 1e-3))
    pixels = np.flatnonzero((d - _minimum3(d) > least) & ~out)
    pixels = pixels[usable(pixels)]
    pixels = pixels[_may_seed(d, v, bad, pixels, box, seed_sigma)]
    if pixels.size:
        q, sigma_q = _psf_test(d, v, bad, pixels, box, psf_contrast)
        keep = q > seed_sigma * sigma_q
        pixels, q, sigma_q = pixels[keep], q[keep], sigma_q[keep]
        excess, sigma_e, profile = _flat_test(d, v, bad | out, pixels, box)
        inner_index = pixels[:, None] + box[_INNER][None, :]
        inner = _median(d.flat[inner_index], bad.flat[inner_index])
        # Not an undersampled star: the neighbours hold at most a tenth of the
        # excess over the ring (a 1.6 px FWHM star: 16 %), beyond their noise.
        point = inner - (excess * _UNDERSAMPLED + d.flat[pixels] - excess) < 2 * sigma_e
        clear = ~bad.flat[pixels[:, None] + box[None, :]].any(axis=1)
        star_seed = clear & (q > (seed_sigma + _PROFILE_MARGIN) * sigma_q)
        out.flat[pixels[point & (~profile | star_seed)]] = True
    # Growth, on a flat background only, into neighbours with charge of their own
    # (the flagged pixels left out of the level).
    tried = np.zeros(ny * nx, dtype=bool)
    front = np.flatnonzero(out)
    for _ in range(_MAX_ROUNDS):
        near = np.unique((front[:, None] + box[_INNER][None, :]).ravel())
        near = near[(near >= 0) & (near < ny * nx)]  # the rest: usable() checks
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


def _minimum3(values: np.ndarray) -> np.ndarray:
    """Minimum over each pixel's 3 × 3 box (the edge: over the part inside)."""
    rows = values.copy()
    np.minimum(rows[1:], values[:-1], out=rows[1:])
    np.minimum(rows[:-1], values[1:], out=rows[:-1])
    out = rows.copy()
    np.minimum(out[:, 1:], rows[:, :-1], out=out[:, 1:])
    np.minimum(out[:, :-1], rows[:, 1:], out=out[:, :-1])
    return out


def _median(values: np.ndarray, excluded: np.ndarray) -> np.ndarray:
    """Median of each row of ``values`` without its ``excluded`` entries (NaN if none
    is left); rows with nothing excluded by the fast path."""
    out = np.median(values, axis=1)
    rows = excluded.any(axis=1)
    if rows.any():
        masked = np.where(excluded[rows], np.nan, values[rows])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows give NaN
            out[rows] = np.nanmedian(masked, axis=1)
    return out


def _psf_test(d: np.ndarray, v: np.ndarray, excluded: np.ndarray, pixels: np.ndarray,
              box: np.ndarray, contrast: float) -> tuple[np.ndarray, np.ndarray]:
    """``q`` and ``σ_q`` at the flat indices ``pixels`` (module docstring), the
    ``excluded`` pixels left out of the medians (NaN where none is left)."""
    centre = d.flat[pixels]
    inner_index = pixels[:, None] + box[_INNER][None, :]
    ring_index = pixels[:, None] + box[_RING][None, :]
    inner_out, ring_out = excluded.flat[inner_index], excluded.flat[ring_index]
    inner = _median(d.flat[inner_index], inner_out)
    level = _median(d.flat[ring_index], ring_out)
    sigma = np.sqrt(_median(v.flat[inner_index], inner_out))
    sigma_inner = sigma * _median_noise(inner_out)
    sigma_structure = np.hypot(sigma_inner, sigma * _median_noise(ring_out))
    # Only the structure beyond its own noise is taken for the profile's.
    structure = np.maximum(inner - level - sigma_structure, 0.0)
    q = centre - inner - contrast * structure
    sigma_q = np.hypot(np.hypot(sigma, sigma_inner),
                       np.where(structure > 0, contrast * sigma_structure, 0.0))
    return q, sigma_q


def _may_seed(d: np.ndarray, v: np.ndarray, excluded: np.ndarray, pixels: np.ndarray,
              box: np.ndarray, threshold: float) -> np.ndarray:
    """Where :func:`_psf_test` can pass ``threshold``: ``q ≤ d − m8`` and ``σ_q`` is at
    least its part without the structure's noise (float32 slack)."""
    inner_index = pixels[:, None] + box[_INNER][None, :]
    inner_out = excluded.flat[inner_index]
    inner = _median(d.flat[inner_index], inner_out)
    sigma = np.sqrt(_median(v.flat[inner_index], inner_out))
    floor = np.hypot(sigma, sigma * _median_noise(inner_out))
    return np.asarray(d.flat[pixels] - inner > threshold * floor * (1 - 1e-6))


def _flat_test(d: np.ndarray, v: np.ndarray, excluded: np.ndarray, pixels: np.ndarray,
               box: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Excess ``e = d − L2`` over the ring at distance 2, its noise ``σ_e``, and
    whether the background is a resolved profile (``L2 − L3`` beyond 2 σ), the
    ``excluded`` pixels left out."""
    ring_index = pixels[:, None] + box[_RING][None, :]
    outer_index = pixels[:, None] + box[_OUTER][None, :]
    ring_out, outer_out = excluded.flat[ring_index], excluded.flat[outer_index]
    level = _median(d.flat[ring_index], ring_out)
    outer = _median(d.flat[outer_index], outer_out)
    sigma = np.sqrt(_median(v.flat[ring_index], ring_out))
    sigma_level = sigma * _median_noise(ring_out)
    sigma_outer = sigma * _median_noise(outer_out)
    profile = ~(level - outer <= _STRUCTURE_SIGMA * np.hypot(sigma_level, sigma_outer))
    return d.flat[pixels] - level, np.hypot(sigma, sigma_level), profile


def _median_noise(excluded: np.ndarray) -> np.ndarray:
    """Noise of a median of the pixels left, in units of one pixel's: √(π / 2n)."""
    return np.sqrt(np.pi / (2 * np.maximum((~excluded).sum(axis=1), 1)))
