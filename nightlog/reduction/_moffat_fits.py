"""Vectorised fits of pixel-integrated Moffat profiles to many star boxes at once.

The star model of the cosmic-ray step (:mod:`nightlog.reduction.cosmics_stars`) fits
``A (1 + r²/α²)^-β`` integrated over the pixel (to second order: ``f + ∇²f / 24``)
plus a constant background to the 11 × 11 box of every star by weighted
Levenberg--Marquardt, a step kept only where it lowers the χ², the pixels beyond
``CLIP_SIGMA`` clipped from the ``UNCLIPPED``-th iteration on. Private: the arrays are
those of :func:`~nightlog.reduction.cosmics_stars.refine_on_stars`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["CLIP_SIGMA", "HALF", "UNCLIPPED", "XX", "YY", "alpha_of", "fit", "jacobian",
           "model", "profile"]

HALF = 5  # half side of a star's box (pixels)
CLIP_SIGMA = 4.0  # pixels of a box beyond this (σ) leave the fit
UNCLIPPED = 2  # iterations before the first clipping

#: The offsets (rows, columns) of a star's box, flattened.
YY, XX = (a.ravel().astype(np.float32) for a in np.meshgrid(
    np.arange(-HALF, HALF + 1), np.arange(-HALF, HALF + 1), indexing="ij"))


def alpha_of(fwhm: np.ndarray, beta: float) -> np.ndarray:
    """The Moffat core width (pixels) of a FWHM (pixels) at index ``beta``."""
    return np.asarray(fwhm / (2 * np.sqrt(2 ** (1 / beta) - 1)))


def profile(y0: np.ndarray, x0: np.ndarray, alpha: np.ndarray, beta: np.ndarray,
             yy: np.ndarray = YY, xx: np.ndarray = XX
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pixel-integrated unit Moffat on each box (second order) at the offsets
    ``yy``, ``xx`` (pixels), ``f / u`` and ``u`` (for the derivatives)."""
    w = ((yy[None, :] - y0) ** 2 + (xx[None, :] - x0) ** 2) / alpha**2
    u = 1.0 + w
    f = np.exp(-beta * np.log(u))  # u ** -beta, faster
    integrated = f * (1.0 + beta / (6.0 * alpha**2) * (beta * w - 1.0) / u**2)
    return integrated, f / u, u


def fit(values: np.ndarray, noise: np.ndarray, good: np.ndarray, start: np.ndarray,
         *, free_beta: bool, alpha_range: tuple[float, float], error: float,
         iterations: int, yy: np.ndarray = YY, xx: np.ndarray = XX
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Weighted Levenberg--Marquardt fits of ``[A, b, y0, x0, α, β]`` to every box
    (a step kept only where it lowers the χ²), clipping the pixels beyond
    ``CLIP_SIGMA`` from the ``UNCLIPPED``-th iteration on (module docstring, step 3),
    the boxes' pixels at the offsets ``yy``, ``xx`` (pixels, the 11 × 11 box unless
    given); the parameters, each fit's χ² per degree of freedom, its clipped pixels,
    and the model's variance at each pixel from the parameters' covariance."""
    p = start.astype(np.float32)
    values = values.astype(np.float32)
    noise = noise.astype(np.float32)
    use = good.copy()
    n_free = 6 if free_beta else 5
    damping = np.full(len(p), 1e-2, dtype=np.float32)
    eye = np.eye(n_free)[None]

    def z2_of(q: np.ndarray) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        shape = profile(q[:, 2:3], q[:, 3:4], q[:, 4:5], q[:, 5:6], yy, xx)
        signal = q[:, :1] * shape[0]
        return (values - signal - q[:, 1:2]) ** 2 / (noise + (error * signal) ** 2), shape

    z2, shape = z2_of(p)
    for iteration in range(iterations):
        a, b = p[:, :1], p[:, 1:2]
        signal = a * shape[0]
        residual = values - signal - b
        weight = use / (noise + (error * signal) ** 2)
        jac_arr = jacobian(p, shape, free_beta, yy, xx)
        weighted = jac_arr * weight[:, None, :]
        hessian = weighted @ jac_arr.transpose(0, 2, 1)
        gradient = (weighted @ residual[:, :, None])[:, :, 0]
        diagonal = np.diagonal(hessian, axis1=1, axis2=2)[:, :, None] * eye
        step = np.linalg.solve((hessian + damping[:, None, None] * diagonal).astype(np.float64)
                               + 1e-12 * eye, gradient[:, :, None])[:, :, 0]
        trial = p.copy()
        trial[:, :n_free] += step.astype(np.float32)
        trial[:, 2:4] = np.clip(trial[:, 2:4], -2.0, 2.0)
        trial[:, 4] = np.clip(trial[:, 4], *alpha_range)
        trial[:, 5] = np.clip(trial[:, 5], 1.2, 10.0)
        trial_z2, trial_shape = z2_of(trial)
        better = (trial_z2 * use).sum(axis=1) <= (z2 * use).sum(axis=1)
        p[better] = trial[better]
        z2[better] = trial_z2[better]
        shape = tuple(np.where(better[:, None], new, old)
                      for new, old in zip(trial_shape, shape, strict=True))
        damping = np.where(better, damping / 10, damping * 10)
        if iteration + 1 >= UNCLIPPED:
            use = good & (z2 <= CLIP_SIGMA**2)
    jac_arr = jacobian(p, shape, free_beta, yy, xx)
    weight = use / (noise + (error * p[:, :1] * shape[0]) ** 2)
    hessian = ((jac_arr * weight[:, None, :]) @ jac_arr.transpose(0, 2, 1)).astype(np.float64)
    covariance = _inverse(hessian).astype(np.float32)
    return (p, (z2 * use).sum(axis=1) / np.maximum(use.sum(axis=1) - n_free, 1),
            (good & ~use).sum(axis=1), covariance)


def jacobian(p: np.ndarray, shape: tuple[np.ndarray, ...], free_beta: bool,
              yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    """Derivatives of the model by ``[A, b, y0, x0, α(, β)]`` at the offsets ``yy``,
    ``xx``: (stars, parameters, pixels)."""
    g, fu, u = shape
    a, _, y0, x0, alpha, beta = (p[:, i:i + 1] for i in range(6))
    common = a * 2 * beta / alpha * fu
    jac = [g, np.ones_like(g), common * (yy[None, :] - y0) / alpha,
           common * (xx[None, :] - x0) / alpha, common * (u - 1)]
    if free_beta:
        jac.append(-a * g * np.log(u))
    return np.stack(jac, axis=1)


def model(p: np.ndarray, covariance: np.ndarray, yy: np.ndarray, xx: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray]:
    """Each star's signal at the offsets ``yy``, ``xx`` (pixels) and the model's own
    variance there, from the parameters' covariance (``β`` fixed)."""
    shape = profile(p[:, 2:3], p[:, 3:4], p[:, 4:5], p[:, 5:6], yy, xx)
    jac = jacobian(p, shape, False, yy, xx)
    variance = np.maximum((jac * (covariance @ jac)).sum(axis=1), 0)
    return p[:, :1] * shape[0], variance


def _inverse(hessian: np.ndarray) -> np.ndarray:
    """The inverses of the (stars, n, n) symmetric ``hessian``, scaled by their
    diagonals first (a parameter the data do not constrain gets no variance)."""
    diagonal = np.diagonal(hessian, axis1=1, axis2=2)
    scale = np.where(diagonal > 0, 1 / np.sqrt(np.where(diagonal > 0, diagonal, 1)), 0.0)
    scaled = hessian * scale[:, :, None] * scale[:, None, :]
    eye = np.eye(hessian.shape[1])[None]
    scaled = np.where(diagonal[:, :, None] > 0, scaled, eye)
    inverse = np.linalg.inv(scaled + 1e-9 * eye)
    return np.asarray(inverse * scale[:, :, None] * scale[:, None, :])
