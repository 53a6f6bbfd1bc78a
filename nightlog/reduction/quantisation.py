"""The variance a converter's rounding adds to a Gaussian read noise, and its inverse.

A value of analogue noise ``σ`` rounded to the nearest multiple of the step ``Δ``
(a 12-bit converter shifted to 16 bits: ``Δ = 16`` stored ADU) has a variance that
depends on where its mean falls within a step. Over the pixels of a sensor that
position is uniform (each pixel's offset differs), and the expected variance is

    V(σ) = E_u[ Var(round(u + σZ)) ]        (u uniform on a step, Z normal)

Sheppard's correction ``V = σ² + Δ²/12`` is this expectation to better than
``10⁻⁴ Δ²`` for ``σ ≥ 0.4 Δ`` (the rounding error is then uniform and
uncorrelated with the noise) and exact in the limit; below it ``V`` falls under
``σ² + Δ²/12`` (at ``σ = 0.1 Δ`` to ``0.056 Δ²``: a noise-free value is never
rounded differently twice), so subtracting ``Δ²/12`` there takes out too much.
:func:`analogue_variance` inverts ``V`` exactly: Sheppard's subtraction where it
holds, the tabulated expectation below. It is the inverse for a *population* of
pixels; one pixel's variance below 0.4 Δ depends on where its own offset falls in
the step (near an edge it flips between two values, mid-step it never moves), so
a map of pixels subtracts :func:`rounding_excess` at the population's read noise
rather than inverting each pixel.

Pure: arrays in, arrays out.
"""

from __future__ import annotations

import functools

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr

from nightlog.errors import ReductionError

__all__ = ["analogue_variance", "quantised_variance", "rounding_excess"]

#: Above this σ/Δ, Sheppard's ``σ² + Δ²/12`` is the expectation to 10⁻⁶ Δ².
_SHEPPARD_FROM = 0.6
#: Positions of the mean within a step averaged over, and σ/Δ tabulated below it.
_PHASES = 256
_TABLE = 241


def _expected_unit(sigma: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """``V(σ)`` for a unit step, by summing the rounded normal's probabilities."""
    u = (np.arange(_PHASES) + 0.5) / _PHASES
    j = np.arange(-12, 13, dtype=np.float64)[:, None, None]
    s = np.maximum(sigma, 1e-12)[None, :, None]
    p = ndtr((j + 0.5 - u) / s) - ndtr((j - 0.5 - u) / s)
    first = (p * j).sum(axis=0)
    second = (p * j * j).sum(axis=0)
    out: npt.NDArray[np.float64] = (second - first**2).mean(axis=1)
    return out


@functools.cache
def _unit_table() -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """``(σ/Δ, V/Δ²)`` from 0 to :data:`_SHEPPARD_FROM` (computed once, on first use)."""
    sigma = np.linspace(0.0, _SHEPPARD_FROM, _TABLE)
    values = _expected_unit(sigma)
    values[0] = 0.0  # a noise-free value always rounds the same way
    return sigma, values


def _check_step(step: float) -> float:
    if not (np.isfinite(step) and step > 0):
        raise ReductionError(f"the quantisation step must be > 0 ADU, not {step!r}")
    return float(step)


def quantised_variance(sigma: npt.ArrayLike, step: float) -> npt.NDArray[np.float64]:
    """Expected variance (ADU²) of a Gaussian noise ``sigma`` (ADU) rounded to ``step``.

    Parameters
    ----------
    sigma : array_like
        Analogue noise, ADU (>= 0).
    step : float
        ADU between converter values, > 0.

    Returns
    -------
    numpy.ndarray of float64
        ``V(σ)``, the variance averaged over the position of the mean in a step:
        ``σ² + step²/12`` from ``σ = 0.6 step``, the exact sum below.

    Raises
    ------
    ReductionError
        ``step`` not a positive number.
    """
    d = _check_step(step)
    s = np.asarray(sigma, dtype=np.float64) / d
    grid, values = _unit_table()
    low = np.interp(s, grid, values)
    return np.where(s >= _SHEPPARD_FROM, s**2 + 1.0 / 12.0, low) * d * d


def analogue_variance(measured: npt.ArrayLike, step: float) -> npt.NDArray[np.float64]:
    """The analogue variance (ADU²) whose rounding to ``step`` has variance ``measured``.

    Parameters
    ----------
    measured : array_like
        Variance of the stored (rounded) values, ADU²; NaN stays NaN.
    step : float
        ADU between converter values, > 0.

    Returns
    -------
    numpy.ndarray of float64
        ``σ²`` with ``quantised_variance(σ, step) == measured``: ``measured -
        step²/12`` where Sheppard's correction holds, the inverse of the tabulated
        expectation below; 0 for a measured variance of 0 or less.

    Raises
    ------
    ReductionError
        ``step`` not a positive number.
    """
    d = _check_step(step)
    v = np.asarray(measured, dtype=np.float64) / (d * d)
    grid, values = _unit_table()
    # V is increasing in σ: interpolate σ on V below the table's end.
    low = np.interp(np.maximum(v, 0.0), values, grid) ** 2
    out = np.where(v >= values[-1], v - 1.0 / 12.0, low) * d * d
    return np.where(np.isnan(v), np.nan, out)


def rounding_excess(sigma: float, step: float) -> float:
    """What rounding adds, on average over the pixels, to the variance of a Gaussian
    noise ``sigma`` (ADU): ``V(σ) - σ²`` ADU², ``step²/12`` from ``σ = 0.6 step``,
    less below (0 for a noise-free value).

    Raises
    ------
    ReductionError
        ``step`` not a positive number.
    """
    return float(quantised_variance(sigma, step)) - float(sigma) ** 2
