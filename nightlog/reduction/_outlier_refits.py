"""Star fits spoilt by unflagged hits, fitted again with the hits left out.

A hit L.A.Cosmic left unflagged on a star is an outlier of the star's fit: its core is
clipped (beyond ``CLIP_SIGMA``), but its faint edge is not, and two hits, or one hit
of many pixels, clip more pixels than the star model of the cosmic-ray step
(:mod:`nightlog.reduction.cosmics_stars`) trusts; the star's model is then not
trusted and its hits are left to the second look, which spares them. Such a fit is
tried once more: its positive outliers (pixels clipped above the model) and their
8 neighbours left out, from its parameters; the fit is kept if the refit is trusted
(an unmodelled companion star leaves its wings, and its refit stays untrusted). The
pixels left out are then tested as any other of the star's. Private: the arrays are
those of :func:`~nightlog.reduction.cosmics_stars.refine_on_stars`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from nightlog.reduction._moffat_fits import CLIP_SIGMA
from nightlog.reduction._moffat_fits import fit as _fit
from nightlog.reduction._moffat_fits import profile as _profile
from nightlog.reduction.cosmics_schedule import dilate

__all__ = ["refit_without_outliers"]

_MAX_OUTLIERS = 40  # a fit with more clipped pixels is not tried again (pixels)


def refit_without_outliers(
        values: np.ndarray, noise: np.ndarray, good: np.ndarray,
        fits: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], trusted: np.ndarray,
        trust: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray], *,
        side: int, alpha_range: tuple[float, float], error: float, iterations: int,
        yy: np.ndarray, xx: np.ndarray
        ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fit the untrusted stars again without their positive outliers (module docstring).

    Parameters
    ----------
    values, noise, good : ndarray
        The stars' boxes (ADU), their variance (ADU²) and the pixels fitted.
    fits : tuple of ndarray
        The stars' parameters ``[A, b, y0, x0, α, β]`` (ADU, ADU, pixels), χ² per
        degree of freedom, clipped pixels and covariance.
    trusted : ndarray of bool
        Which fits are trusted.
    trust : callable
        The trust of a fit from its parameters, χ² and clipped pixels.
    side : int
        The boxes' side (pixels).
    alpha_range : tuple of float
        The Moffat width's bounds (pixels).
    error : float
        The frame's model error (fraction of the signal).
    iterations : int
        Levenberg--Marquardt iterations.
    yy, xx : ndarray
        The boxes' offsets (pixels).

    Returns
    -------
    tuple of ndarray
        The parameters, χ², clipped pixels, covariance and trust, those refitted and
        trusted replaced (new arrays).
    """
    params, chi2, clipped, covariance = (np.array(a) for a in fits)
    trusted = np.array(trusted, dtype=bool)
    again = np.flatnonzero(~trusted & (params[:, 0] > 0) & (clipped > 0)
                           & (clipped <= _MAX_OUTLIERS))
    if not again.size:
        return params, chi2, clipped, covariance, trusted
    p = params[again]
    signal = p[:, :1] * _profile(p[:, 2:3], p[:, 3:4], p[:, 4:5], p[:, 5:6], yy, xx)[0]
    residual = values[again] - signal - p[:, 1:2]
    outlier = (good[again] & (residual > 0)
               & (residual**2 > CLIP_SIGMA**2 * (noise[again] + (error * signal) ** 2)))
    # The outliers and their 8 neighbours, within each star's box.
    around = dilate(outlier.reshape(-1, side, side), 1)
    left = good[again] & ~around.reshape(len(again), -1)
    new_params, new_chi2, new_clipped, new_covariance = _fit(
        values[again], noise[again], left, p, free_beta=False, alpha_range=alpha_range,
        error=error, iterations=iterations, yy=yy, xx=xx)
    ok = trust(new_params, new_chi2, new_clipped)
    keep = again[ok]
    params[keep] = new_params[ok]
    chi2[keep] = new_chi2[ok]
    clipped[keep] = new_clipped[ok]
    covariance[keep] = new_covariance[ok]
    trusted[keep] = True
    return params, chi2, clipped, covariance, trusted
