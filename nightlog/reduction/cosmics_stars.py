"""Cosmic rays on stars: each star's pixels tested against a fitted model of the star.

The second look (:mod:`nightlog.reduction.cosmics_sharpness`) judges a pixel by medians
of the rings around it, which cannot tell a hit on a star from the curvature of the
star's core; so it leaves hits on stars to L.A.Cosmic, which spares most of them, and
flags some cores of sharp stars. Here the star under a candidate is modelled:

1. **stars** -- local maxima of the frame binned 4 × 4 (flagged and bad pixels left
   out) more than 6 σ above the local sky (median of 64 × 64 px cells), each centred
   on its brightest good pixel (:mod:`nightlog.reduction._star_search`);
2. **the frame's PSF** -- a circular Moffat profile ``A (1 + r²/α²)^-β`` integrated over
   the pixel (to second order: ``f + ∇²f / 24``) fitted to the isolated, unsaturated,
   bright stars with ``β`` free; the frame's ``β`` and ``α`` are their medians, and
   the model's own error is the fraction ``ε`` of the star's signal that makes their
   core residuals' χ² one per pixel;
3. **every star** -- amplitude, centre, width ``α`` (within a factor of 2 of the
   frame's) and a constant background fitted to its 11 × 11 box by weighted
   Levenberg--Marquardt (:mod:`nightlog.reduction._moffat_fits`), the flagged and bad
   pixels left out and the pixels beyond 4 σ of the model clipped from the second
   iteration on; a fit with more than ``_MAX_CHI2`` per degree of freedom or more
   than ``_MAX_CLIPPED`` clipped pixels (a companion, a blend) is not trusted. Then:

   * *blends* -- an untrusted star with a neighbour within 11 px is fitted again, its
     box less its neighbours' models, in rounds (:mod:`nightlog.reduction._star_blends`),
     and trusted only if those neighbours are;
   * *fits spoilt by hits* -- a star still untrusted, with 1--40 clipped pixels, is
     fitted again without its positive outliers (beyond 4 σ over its model) and their
     8 neighbours, and trusted if that fit is (a hit L.A.Cosmic left unflagged clips
     its core, its faint edge spoils the χ², and two hits clip more pixels than one
     covers; a companion star's wings stay in the refit and keep it untrusted)
     (:mod:`nightlog.reduction._outlier_refits`);
   * *bright stars* -- a star ``_WIDE_SNR`` over its noise is fitted again on the
     21 × 21 box, from its first fit; if trusted there, that whole box is its fitted
     box (hits 6--10 px out are searched); any star whose light 6 px out still passes
     the scope is evaluated on the 21 × 21 box, and one whose light 11 px out does on
     the 31 × 31 box, beyond its fitted box giving back and seeding with a margin,
     never growing;
   * *stars with bad centres* -- a star with a bad pixel within 2 px of its centre or
     more than ``_MAX_BAD`` in its box (a saturated core) is fitted on the 21 × 21
     box from its good pixels, centred on the middle of its central bad pixels if
     there are 5 or more (a saturated core), else on its brightest good pixel
     (:mod:`nightlog.reduction._saturated_stars`);
4. **the test** -- on each pixel a trusted model reaches (signal above
   ``_SCOPE_SIGMA`` of the pixel's noise), ``z = (d − M) / √(V + (ε S)² + V_M)`` with
   ``M`` the sum of the stars' models plus their signal-weighted background, ``S``
   their signal and ``V_M`` the model's variance from each fit's covariance:

   * a flagged pixel with ``z ≤ grow_sigma`` is given back, unless a flagged
     neighbour is unexplained (``z > seed_sigma``, or no model reaches it: the faint
     edge of a hit);
   * an unflagged pixel of a fitted box with ``z > seed_sigma`` (beyond the fitted
     boxes, where a model is extrapolated, ``z > seed_sigma + _BEYOND_MARGIN``) is a
     hit if it is a point: its 8 neighbours have a median residual under ``_POINT``
     of its own plus 1 σ (an unmodelled companion star's do not); a neighbour no
     model reaches (at the scope's edge) counts with its excess over the seed's
     fitted background, the models' signal there being under the scope;
   * unflagged pixels of fitted boxes next to flagged ones join while their ``z``,
     and their excess over the median residual of their unflagged neighbours (in σ),
     both exceed ``grow_sigma`` (a companion star's pixels have the first only).

Pixels no trusted model reaches keep the verdict they came with, and so do the
frame's outermost pixels. Every step is vectorised over the stars.
"""

from __future__ import annotations

import numpy as np

from nightlog.reduction._moffat_fits import HALF as _HALF
from nightlog.reduction._moffat_fits import XX as _XX
from nightlog.reduction._moffat_fits import YY as _YY
from nightlog.reduction._moffat_fits import alpha_of as _alpha
from nightlog.reduction._moffat_fits import fit as _fit
from nightlog.reduction._moffat_fits import model as _model
from nightlog.reduction._moffat_fits import profile as _profile
from nightlog.reduction._outlier_refits import refit_without_outliers as _refit_outliers
from nightlog.reduction._saturated_stars import fit_cores_bad as _fit_cores_bad
from nightlog.reduction._star_blends import deblend as _deblend
from nightlog.reduction._star_search import find_stars as _find_stars

__all__ = ["refine_on_stars"]

_MIN_SIDE = 256  # a smaller frame is left as it is (pixels): 4 sky cells of the search
_SCOPE_SIGMA = 2.0  # a star's model reaches a pixel where its signal exceeds this (σ)
_PSF_SNR = 30.0  # a PSF star's peak over its noise
_PSF_STARS = 200  # at most this many PSF stars (the brightest)
_ITERATIONS = 4  # Levenberg--Marquardt iterations of a star (twice as many of a PSF star)
_MIN_PSF_STARS = 3  # fewer: the frame's PSF is not measured and nothing changes
_MAX_ROUNDS = 8  # growth rounds
_MAX_BAD = 2  # a star with more bad pixels in its box is not fitted (saturation nearby)
_MAX_CHI2 = 1.5  # a fit with more χ² per degree of freedom is not trusted
_MAX_CLIPPED = 9  # nor one that clipped more pixels than a hit covers
_POINT = 0.25  # a new hit's neighbours hold at most this fraction of its residual
_BEYOND_MARGIN = 0.5  # beyond its fitted box, a hit's pixel passes seed_sigma by this (σ)

_WIDE = 10  # half side of a bright star's model (pixels)
_WIDE_SNR = 100.0  # a bright star's peak over its noise
_WIDE_ITERATIONS = 3  # Levenberg--Marquardt iterations of a bright star's wider box

_WIDE_YY, _WIDE_XX = (a.ravel().astype(np.float32) for a in np.meshgrid(
    np.arange(-_WIDE, _WIDE + 1), np.arange(-_WIDE, _WIDE + 1), indexing="ij"))
_WIDEST = 15  # half side of the brightest stars' evaluated box (pixels): no fit there
_WIDEST_YY, _WIDEST_XX = (a.ravel().astype(np.float32) for a in np.meshgrid(
    np.arange(-_WIDEST, _WIDEST + 1), np.arange(-_WIDEST, _WIDEST + 1), indexing="ij"))


def refine_on_stars(data: np.ndarray, variance: np.ndarray, bad: np.ndarray,
                    flagged: np.ndarray, *, seed_sigma: float, grow_sigma: float
                    ) -> np.ndarray:
    """Find the hits on stars and give back the star pixels flagged as hits.

    Parameters
    ----------
    data : ndarray
        Reduced frame, sky not subtracted (ADU).
    variance : ndarray
        Its variance (ADU²), finite and positive.
    bad : ndarray of bool
        Known bad pixels: never flagged, left out of every fit.
    flagged : ndarray of bool
        The cosmic-ray pixels found so far.
    seed_sigma : float
        Threshold (σ of the noise and the model's error) of a new hit's pixel over
        the star's model.
    grow_sigma : float
        Threshold (σ) of a flagged pixel's neighbour over the model; a flagged pixel
        at or below it is given back.

    Returns
    -------
    ndarray of bool
        The cosmic-ray mask (a new array; the inputs are untouched).
    """
    d = np.asarray(data, dtype=np.float32)
    v = np.asarray(variance, dtype=np.float32)
    bad = np.asarray(bad, dtype=bool)
    out = np.array(flagged, dtype=bool)
    ny, nx = d.shape
    if ny < _MIN_SIDE or nx < _MIN_SIDE:
        return out
    centres = _find_stars(d, v, bad | out, _HALF)
    if not centres.size:
        return out
    index = centres[:, None] + (_YY * nx + _XX).astype(np.int64)[None, :]
    values = d.flat[index]
    noise = v.flat[index]
    box_bad = bad.flat[index]
    near = (np.abs(_YY) <= 2) & (np.abs(_XX) <= 2)
    usable = ~box_bad[:, near].any(axis=1) & (box_bad.sum(axis=1) <= _MAX_BAD)
    cores_bad = centres[~usable]
    centres, index, values, noise = (centres[usable], index[usable], values[usable],
                                     noise[usable])
    good = ~(box_bad[usable] | out.flat[index])
    if not centres.size:
        return out

    # The frame's PSF from its isolated bright stars, beta free.
    start = _first_guess(values, good)
    rows, cols = np.divmod(centres, nx)
    apart = _isolated(rows, cols, 2 * _HALF + 1)
    snr = start[:, 0] / np.sqrt(noise[:, _YY.size // 2])
    chosen = np.flatnonzero(apart & (snr > _PSF_SNR) & good.all(axis=1))
    chosen = chosen[np.argsort(-snr[chosen])][:_PSF_STARS]
    if chosen.size < _MIN_PSF_STARS:
        return out
    psf_start = np.column_stack([start[chosen, :4],
                                 _alpha(start[chosen, 4], 2.5), np.full(chosen.size, 2.5)])
    psf, _, _, _ = _fit(values[chosen], noise[chosen], good[chosen], psf_start,
                        free_beta=True, alpha_range=(0.5, 10.0), error=0.0,
                        iterations=2 * _ITERATIONS)
    beta = float(np.median(psf[:, 5]))
    alpha = float(np.median(psf[:, 4]))
    signal = psf[:, :1] * _profile(psf[:, 2:3], psf[:, 3:4], psf[:, 4:5], psf[:, 5:6])[0]
    error = _model_error(values[chosen] - signal - psf[:, 1:2], noise[chosen], signal)

    # Every star: amplitude, centre, width and background, beta the frame's.
    first_alpha = np.clip(_alpha(start[:, 4], beta), alpha / 2, alpha * 2)
    params = np.column_stack([start[:, :4], np.where(start[:, 0] > 0, first_alpha, alpha),
                              np.full(len(start), beta)])
    params, chi2, clipped, covariance = _fit(
        values, noise, good, params, free_beta=False, alpha_range=(alpha / 2, alpha * 2),
        error=error, iterations=_ITERATIONS)
    # Blends: the untrusted stars with neighbours fitted again without their light.
    params, chi2, clipped, covariance, trusted = _deblend(
        (ny, nx), centres, values, noise, good, (params, chi2, clipped, covariance),
        _trust, alpha_range=(alpha / 2, alpha * 2), error=error, iterations=_ITERATIONS)
    # Fits spoilt by unflagged hits: the untrusted fitted again without their positive
    # outliers and those outliers' neighbours.
    params, chi2, clipped, covariance, trusted = _refit_outliers(
        values, noise, good, (params, chi2, clipped, covariance), trusted, _trust,
        side=2 * _HALF + 1, alpha_range=(alpha / 2, alpha * 2), error=error,
        iterations=_ITERATIONS, yy=_YY, xx=_XX)
    # Bright stars' models reach beyond their boxes: evaluated on a wider one, and
    # refitted there (from the box's fit), the whole wider box then fitted.
    rows, cols = np.divmod(centres, nx)
    inside = (rows >= _WIDE) & (rows < ny - _WIDE) & (cols >= _WIDE) & (cols < nx - _WIDE)
    wide = trusted & inside & (params[:, 0] > _WIDE_SNR * np.sqrt(noise[:, _YY.size // 2]))
    refitted = np.zeros(len(params), dtype=bool)
    if wide.any():
        where = centres[wide, None] + (_WIDE_YY * nx + _WIDE_XX).astype(np.int64)[None, :]
        wide_good = ~(bad.flat[where] | out.flat[where])
        wide_params, wide_chi2, wide_clipped, wide_covariance = _fit(
            d.flat[where], v.flat[where], wide_good, params[wide], free_beta=False,
            alpha_range=(alpha / 2, alpha * 2), error=error,
            iterations=_WIDE_ITERATIONS, yy=_WIDE_YY, xx=_WIDE_XX)
        ok = ((wide_chi2 < _MAX_CHI2) & (wide_clipped <= _MAX_CLIPPED)
              & (wide_params[:, 0] > 0))
        index_wide = np.flatnonzero(wide)[ok]
        params[index_wide] = wide_params[ok]
        covariance[index_wide] = wide_covariance[ok]
        refitted[index_wide] = True
    # Stars whose light beyond their box still reaches the scope: evaluated on the
    # wider box too (unless refitted, there only given back and seeded with a margin).
    beyond = params[:, 0] * (1 + (_HALF + 1) ** 2 / params[:, 4] ** 2) ** -params[:, 5]
    border = (np.abs(_YY) == _HALF) | (np.abs(_XX) == _HALF)
    wide |= (trusted & inside
             & (beyond > _SCOPE_SIGMA * np.sqrt(np.median(noise[:, border], axis=1))))
    # Stars with bad pixels at their centres (saturated cores): fitted on their
    # wider box from the good pixels.
    core_centres, core_params, core_chi2, core_clipped, core_covariance = _fit_cores_bad(
        d, v, bad | out, cores_bad, _WIDE_YY, _WIDE_XX, alpha=alpha, beta=beta,
        error=error, iterations=_ITERATIONS)
    core_trusted = _trust(core_params, core_chi2, core_clipped)
    all_centres = np.concatenate([centres, core_centres])
    params = np.concatenate([params, core_params])
    covariance = np.concatenate([covariance, core_covariance])
    trusted = np.concatenate([trusted, core_trusted])
    refitted = np.concatenate([refitted, core_trusted])
    wide = np.concatenate([wide, core_trusted])
    # The brightest stars, whose light 11 px out still passes the scope: evaluated on
    # the widest box (beyond the fitted boxes giving back and seeding with a margin).
    rows, cols = np.divmod(all_centres, nx)
    widest = (wide & (rows >= _WIDEST) & (rows < ny - _WIDEST) & (cols >= _WIDEST)
              & (cols < nx - _WIDEST))
    if widest.any():
        # The noise from the variance 15 px out (the star's light there makes it no
        # smaller than the sky's).
        out_there = params[:, 0] * (1 + (_WIDE + 1) ** 2 / params[:, 4] ** 2) ** -params[:, 5]
        sky = v.flat[np.where(widest, all_centres + _WIDEST * nx, 0)]
        widest &= out_there > _SCOPE_SIGMA * np.sqrt(sky)
    wide &= ~widest
    parts = []
    for chosen_stars, yy, xx in ((trusted & ~wide & ~widest, _YY, _XX),
                                 (wide, _WIDE_YY, _WIDE_XX),
                                 (widest, _WIDEST_YY, _WIDEST_XX)):
        if not chosen_stars.any():
            continue
        p = params[chosen_stars]
        signal, model_variance = _model(p, covariance[chosen_stars], yy, xx)
        where = all_centres[chosen_stars, None] + (yy * nx + xx).astype(np.int64)[None, :]
        reach = signal > _SCOPE_SIGMA * np.sqrt(v.flat[where])
        inner = (((np.abs(yy) <= _HALF) & (np.abs(xx) <= _HALF))[None, :]
                 | (refitted[chosen_stars, None]
                    & ((np.abs(yy) <= _WIDE) & (np.abs(xx) <= _WIDE))[None, :]))
        inner = np.broadcast_to(inner, reach.shape)
        parts.append((where[reach], signal[reach], (signal * p[:, 1:2])[reach],
                      model_variance[reach], inner[reach]))
    if not parts:
        return out
    flat_index, signal, weighted, model_variance, inner = (
        np.concatenate(x) for x in zip(*parts, strict=True))
    pixels, inverse = np.unique(flat_index, return_inverse=True)
    total = np.bincount(inverse, signal, pixels.size)
    level = np.bincount(inverse, weighted, pixels.size) / total
    spread = np.bincount(inverse, model_variance, pixels.size)
    # Beyond the fitted boxes a model gives back and seeds with a margin, never grows
    # (its wings are extrapolated).
    fitted = np.bincount(inverse, inner, pixels.size) > 0
    # The frame's outermost pixels keep their verdict: every pixel tested below has
    # its 8 neighbours inside the frame (a star's box may reach the edge).
    rows, cols = np.divmod(pixels, nx)
    keep = (~bad.flat[pixels] & (rows >= 1) & (rows < ny - 1) & (cols >= 1)
            & (cols < nx - 1))
    pixels, total, level, spread, fitted = (pixels[keep], total[keep], level[keep],
                                            spread[keep], fitted[keep])
    residual = d.flat[pixels] - (total + level)
    z = residual / np.sqrt(v.flat[pixels] + (error * total) ** 2 + spread)

    was = out.flat[pixels]
    ring = np.array([dy * nx + dx for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx])
    # Given back: a flagged pixel the model explains, unless a neighbour is a hit's
    # pixel the model does not explain (or one no model reaches): a hit's faint edge.
    weak = np.flatnonzero(was & ~(z > grow_sigma))
    around = pixels[weak, None] + ring[None, :]
    where = np.minimum(np.searchsorted(pixels, around), pixels.size - 1)
    explained = (pixels[where] == around) & ~(z[where] > seed_sigma)
    alone = ~(out.flat[around] & ~explained).any(axis=1)
    out.flat[pixels[weak[alone]]] = False
    # Seeds in the fitted boxes, and beyond them (where a model is extrapolated) only
    # with a margin.
    seeds = np.flatnonzero(~was & (z > seed_sigma)
                           & (fitted | (z > seed_sigma + _BEYOND_MARGIN)))
    # A hit is a point: its 8 neighbours' median residual holds at most a fraction
    # of its own (beyond their noise); an unmodelled companion star's does not. A
    # neighbour no model reaches (at a model's edge) is taken over the seed's fitted
    # background: the models' signal there is under the scope, so its residual is
    # over-estimated, never under.
    around = pixels[seeds, None] + ring[None, :]
    where = np.minimum(np.searchsorted(pixels, around), pixels.size - 1)
    reached = pixels[where] == around
    neighbours = np.where(reached, residual[where], d.flat[around] - level[seeds, None])
    sigma = residual[seeds] / z[seeds]
    point = np.median(neighbours, axis=1) < _POINT * residual[seeds] + sigma
    out.flat[pixels[seeds[point]]] = True
    # Growth into the star pixels next to flagged ones, on their own excess, and on
    # their excess over their unflagged neighbours (an unmodelled companion star's
    # pixels have it only over the model).
    candidates = np.flatnonzero((z > grow_sigma) & ~out.flat[pixels] & fitted)
    around = pixels[candidates, None] + ring[None, :]
    where = np.minimum(np.searchsorted(pixels, around), pixels.size - 1)
    neighbours = np.where((pixels[where] == around) & ~out.flat[around], residual[where],
                          np.nan)
    floor = np.nanmedian(np.where(np.isnan(neighbours).all(axis=1, keepdims=True), 0.0,
                                  neighbours), axis=1)
    sharp = (residual[candidates] - floor) / (residual[candidates] / z[candidates])
    grow = pixels[candidates[sharp > grow_sigma]]
    for _ in range(_MAX_ROUNDS):
        joins = out.flat[grow[:, None] + ring[None, :]].any(axis=1)
        if not joins.any():
            break
        out.flat[grow[joins]] = True
        grow = grow[~joins]
    return out


def _trust(params: np.ndarray, chi2: np.ndarray, clipped: np.ndarray) -> np.ndarray:
    """Whether each star's fit is trusted (module docstring, step 3)."""
    return np.asarray((chi2 < _MAX_CHI2) & (clipped <= _MAX_CLIPPED) & (params[:, 0] > 0))


def _isolated(rows: np.ndarray, cols: np.ndarray, distance: int) -> np.ndarray:
    """Whether no other star lies within ``distance`` pixels (Chebyshev)."""
    order = np.lexsort((cols, rows))
    alone = np.ones(rows.size, dtype=bool)
    r, c = rows[order], cols[order]
    for shift in range(1, 64):
        if shift >= r.size:
            break
        close = (r[shift:] - r[:-shift] <= distance) & (np.abs(c[shift:] - c[:-shift])
                                                      <= distance)
        if not (r[shift:] - r[:-shift] <= distance).any():
            break
        alone[order[shift:][close]] = False
        alone[order[:-shift][close]] = False
    return alone


def _first_guess(values: np.ndarray, good: np.ndarray) -> np.ndarray:
    """Amplitude, background, centre (0, 0) and FWHM of each box: the border's median,
    the centre pixel (or the brightest good one of the 3 × 3) above it, the width of
    the area above half of it."""
    border = (np.abs(_YY) == _HALF) | (np.abs(_XX) == _HALF)
    edge = np.where(good[:, border], values[:, border], np.nan)
    level = np.nanmedian(edge, axis=1)
    level = np.where(np.isfinite(level), level, np.median(values[:, border], axis=1))
    inner = (np.abs(_YY) <= 1) & (np.abs(_XX) <= 1)
    peak = np.where(good[:, inner], values[:, inner], -np.inf).max(axis=1)
    peak = np.where(np.isfinite(peak), peak, values[:, _YY.size // 2])
    # The FWHM from the area above half the peak.
    half = ((values - level[:, None]) > (peak - level)[:, None] / 2) & good
    fwhm = 2 * np.sqrt(np.maximum(half.sum(axis=1), 1) / np.pi)
    return np.column_stack([peak - level, level, np.zeros(len(values)),
                            np.zeros(len(values)), fwhm])


def _model_error(residual: np.ndarray, noise: np.ndarray, signal: np.ndarray) -> float:
    """The fraction ``ε`` of the signal that makes the χ² of the PSF stars' core
    pixels (signal above 20 σ) one per pixel (0 if the noise alone does)."""
    core = signal > 20 * np.sqrt(noise)
    if not core.any():
        return 0.0
    r2, var, s2 = residual[core] ** 2, noise[core], signal[core] ** 2
    keep = r2 < 25 * var  # outliers (hits) do not set the model's error
    r2, var, s2 = r2[keep], var[keep], s2[keep]
    if not r2.size or np.mean(r2 / var) <= 1:
        return 0.0
    low, high = 0.0, 1.0
    for _ in range(30):
        middle = (low + high) / 2
        if np.mean(r2 / (var + middle**2 * s2)) > 1:
            low = middle
        else:
            high = middle
    return high
