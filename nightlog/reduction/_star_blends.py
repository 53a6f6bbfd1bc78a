"""Stars fitted again with their neighbours' models taken out of their boxes.

A star whose 11 × 11 box holds a second star is fitted, alone, to the light of both:
its χ² is high and many pixels are clipped, so the star model of the cosmic-ray step
(:mod:`nightlog.reduction.cosmics_stars`) does not trust it, and L.A.Cosmic's flags on
the pair's cores (which are sharp for a single PSF) stay. :func:`deblend` fits every
untrusted star that has a neighbour within ``_BLEND`` pixels again, its box's data
less the current models of its neighbours (each on the 21 × 21 box, where a bright
star's wings still count), in ``_ROUNDS`` rounds, each round's fits starting from the
last and seeing the neighbours' last models. Private: the arrays are those of
:func:`~nightlog.reduction.cosmics_stars.refine_on_stars`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.spatial import cKDTree

from nightlog.reduction._moffat_fits import XX as _XX
from nightlog.reduction._moffat_fits import YY as _YY
from nightlog.reduction._moffat_fits import fit as _fit
from nightlog.reduction._moffat_fits import profile as _profile

__all__ = ["deblend"]

_BLEND = 11  # a neighbour within this many pixels (Chebyshev) shares the box's light
_ROUNDS = 4  # rounds of fits, each with the neighbours' latest models
_REACH = 10  # half side of the box a neighbour's model is taken out on (pixels)

_REACH_YY, _REACH_XX = (a.ravel().astype(np.float32) for a in np.meshgrid(
    np.arange(-_REACH, _REACH + 1), np.arange(-_REACH, _REACH + 1), indexing="ij"))


def deblend(shape: tuple[int, int], centres: np.ndarray, values: np.ndarray,
            noise: np.ndarray, good: np.ndarray, fitted: tuple[np.ndarray, ...],
            trust: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray], *,
            alpha_range: tuple[float, float], error: float, iterations: int
            ) -> tuple[np.ndarray, ...]:
    """The stars' fits with the untrusted stars that have neighbours fitted again, and
    which are trusted: a refitted star only if its neighbours are too (the light taken
    out of its box must be in the model it is tested against).

    Parameters
    ----------
    shape : tuple of int
        The frame's shape (pixels).
    centres : ndarray of int
        Flat indices of the stars' centres in the frame.
    values, noise, good : ndarray
        Each star's 11 × 11 box: data (ADU), variance (ADU²), pixels to fit.
    fitted : tuple of ndarray
        Parameters ``[A, b, y0, x0, α, β]`` (ADU, ADU, pixels), χ² per degree of
        freedom, clipped pixels and covariance of every star's fit alone.
    trust : callable
        Which fits are trusted, from their parameters, χ² and clipped pixels.
    alpha_range : tuple of float
        Bounds of ``α`` (pixels).
    error : float
        The frame's model error (fraction of the signal).
    iterations : int
        Levenberg--Marquardt iterations of each round.

    Returns
    -------
    tuple of ndarray
        New parameters, χ², clipped pixels, covariance, and which fits are trusted
        (the inputs are untouched).
    """
    params, chi2, clipped, covariance = (np.array(a) for a in fitted)
    trusted = trust(params, chi2, clipped)
    ny, nx = shape
    rows, cols = np.divmod(centres, nx)
    pairs = cKDTree(np.column_stack([rows, cols])).query_pairs(
        _BLEND, p=np.inf, output_type="ndarray")
    if not len(pairs):
        return params, chi2, clipped, covariance, trusted
    redo = np.zeros(len(centres), dtype=bool)
    redo[pairs.ravel()] = True
    redo &= ~trusted
    if not redo.any():
        return params, chi2, clipped, covariance, trusted
    # The neighbours whose light is taken out: every star of a pair with a refitted one.
    involved = redo[pairs[:, 0]] | redo[pairs[:, 1]]
    sources = np.zeros(len(centres), dtype=bool)
    sources[pairs[involved].ravel()] = True
    near = ((rows[sources, None] + _REACH_YY[None, :] >= 0)
            & (rows[sources, None] + _REACH_YY[None, :] < ny)
            & (cols[sources, None] + _REACH_XX[None, :] >= 0)
            & (cols[sources, None] + _REACH_XX[None, :] < nx))
    where = centres[sources, None] + (_REACH_YY * nx + _REACH_XX).astype(np.int64)[None, :]
    pixels, inverse = np.unique(where[near], return_inverse=True)
    box = centres[redo, None] + (_YY * nx + _XX).astype(np.int64)[None, :]
    slot = np.searchsorted(pixels, box)  # every box pixel of a redo star is a source's
    redo_index = np.flatnonzero(redo)
    for _ in range(_ROUNDS):
        p = params[sources]
        light = np.maximum(p[:, :1], 0) * _profile(p[:, 2:3], p[:, 3:4], p[:, 4:5],
                                                    p[:, 5:6], _REACH_YY, _REACH_XX)[0]
        total = np.bincount(inverse, light[near], pixels.size).astype(np.float32)
        q = params[redo]
        own = np.maximum(q[:, :1], 0) * _profile(q[:, 2:3], q[:, 3:4], q[:, 4:5],
                                                  q[:, 5:6])[0]
        others = total[slot] - own
        new = _fit(values[redo] - others, noise[redo], good[redo], q, free_beta=False,
                   alpha_range=alpha_range, error=error, iterations=iterations)
        params[redo_index], chi2[redo_index], clipped[redo_index], covariance[redo_index] = new
    trusted = trust(params, chi2, clipped)
    # A refitted star with an untrusted neighbour is not trusted (until none changes).
    refitted = pairs[involved]
    for _ in range(_ROUNDS + 1):
        lost = np.zeros(len(centres), dtype=bool)
        lost[refitted[:, 0]] |= redo[refitted[:, 0]] & ~trusted[refitted[:, 1]]
        lost[refitted[:, 1]] |= redo[refitted[:, 1]] & ~trusted[refitted[:, 0]]
        lost &= trusted
        if not lost.any():
            break
        trusted &= ~lost
    return params, chi2, clipped, covariance, trusted
