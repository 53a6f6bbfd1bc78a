"""The master flat's uncertainty: its frames' noise model, through its combination.

The scatter of five values of a pixel states that pixel's error to a third, and a
clipped combination's scatter under-states it twice more: the clip cuts the
tails of the values it keeps (their spread is smaller than the frames' noise),
and a clip that rejects good values leaves an average noisier than ``σ/√n``.
On a simulated LFC night (five flats) the master flat's plane said 0.0014 where
its error against the truth was 0.0023.

So the plane is built from what is known well instead:

* the frames' noise as a function of the flat's value, ``m(f) = α·f + β``
  (photon and read noise, in the combined frames' unit), fitted over all the
  pixels to the scatter each pixel's survivors show;
* the combination's two factors for ``n`` frames of equal normal noise,
  measured by putting a fixed normal sample through the same combination
  (:func:`combination_factors`): how much of the frames' variance the
  survivors' scatter shows, and how large the combined value's error is
  against ``σ/√n``;
* the share of the master bias's and the master dark's errors, common to every
  frame and so absent from their scatter: ``⟨sᵢ⟩σ_b`` and ``⟨sᵢtᵢ⟩σ_d`` (``sᵢ``
  each frame's scale, ``tᵢ`` its exposure), added in quadrature; the dark's own
  share of the bias (which lowers the sum a little) is not taken back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from functools import lru_cache

import numpy as np
import numpy.typing as npt
from astropy import units as u
from astropy.nddata import CCDData, VarianceUncertainty

from nightlog.errors import CombineError
from nightlog.reduction.combine import CombineResult
from nightlog.reduction.rejection import ClipSpec, Method, combine_tile

__all__ = ["combination_factors", "flat_uncertainty"]

#: Normal draws per factor: each factor is then known to about 0.2 %.
_DRAWS = 200_000
_SEED = 20240601
#: Bins of the flat's value in which the frames' noise is averaged before the fit.
_BINS = 16
#: At most about this many pixels (evenly spaced) enter the fit: each bin's mean
#: variance is then known to 1 %.
_FIT_PIXELS = 500_000


@lru_cache(maxsize=64)
def _factors(n: int, method: Method, clip: ClipSpec | None) -> tuple[float, float]:
    values = np.random.default_rng(_SEED).standard_normal((n, _DRAWS), dtype=np.float32)
    if clip is not None and clip.spread == "noise":
        # The detector's model, its sigma the frames' own noise: unit sigma here.
        clip = replace(clip, read_noise=1.0, gain=1.0, light=False)
    tile = combine_tile(values, method=method, clip=clip, nlow=0, nhigh=0, weights=None,
                        mean_scale=1.0, scales=np.ones(n))
    kept = tile.count > 0
    error = float(np.std(tile.data[kept].astype(np.float64))) * np.sqrt(n)
    shown = tile.uncertainty[kept].astype(np.float64) ** 2 * tile.count[kept]
    return error, float(np.mean(shown))


def combination_factors(n: int, method: Method, clip: ClipSpec | None
                        ) -> tuple[float, float]:
    """The error of a combination of ``n`` frames, and what its scatter shows of it.

    Parameters
    ----------
    n : int
        Frames combined (>= 1).
    method : {'average', 'median', 'sum'}
        The combination (``'sum'``: of the survivors, as
        :func:`~nightlog.reduction.rejection.combine_tile`).
    clip : ClipSpec or None
        Its rejection; a noise-model clip is taken with the frames' true noise.

    Returns
    -------
    (float, float)
        ``c_err``: the combined value's standard deviation over ``σ/√n`` for frames
        of normal noise ``σ`` (1 for a plain average; about 1.2 for a median of
        five); ``c_var``: the mean over pixels of ``u²·k`` (``u`` the combination's
        uncertainty, ``k`` its survivors) over ``σ²``. Both dimensionless.

    Raises
    ------
    CombineError
        ``n`` below 1.
    """
    if n < 1:
        raise CombineError(f"combination factors need at least one frame, got {n}")
    return _factors(int(n), method, clip)


def _noise_model(result: CombineResult, valid: npt.NDArray[np.bool_], c_var: float
                 ) -> npt.NDArray[np.float64]:
    """The frames' variance at each pixel's value, ``α·f + β``, fitted to the
    survivors' scatter over the valid pixels (binned by value, at most
    ``_FIT_PIXELS`` of them; a pixel whose scatter is 50 times the median's, a
    defect, left out)."""
    where = np.flatnonzero(valid)
    where = where[::max(1, where.size // _FIT_PIXELS)]
    f = result.data.ravel()[where].astype(np.float64)
    v = result.uncertainty.ravel()[where].astype(np.float64) ** 2 * result.count.ravel()[where]
    keep = v < 50.0 * np.median(v)
    f, v = f[keep], v[keep] / c_var
    edges = np.quantile(f, np.linspace(0.0, 1.0, _BINS + 1)[1:-1])
    which = np.searchsorted(edges, f)
    sizes = np.bincount(which, minlength=_BINS).astype(np.float64)
    filled = sizes > 0
    sizes = sizes[filled]
    centres = np.bincount(which, weights=f, minlength=_BINS)[filled] / sizes
    means = np.bincount(which, weights=v, minlength=_BINS)[filled] / sizes
    if sizes.size < 3 or np.ptp(centres) <= 0:
        model = np.full(result.data.shape, float(np.average(means, weights=sizes)))
    else:
        slope, intercept = np.polyfit(centres, means, 1, w=np.sqrt(sizes))
        # ``slope · f + intercept`` in float64, in one array of its own.
        model = np.multiply(result.data, slope, dtype=np.float64)
        model += intercept
    # Never below the quietest bin's noise (no extrapolation to zero or less).
    return np.maximum(model, float(np.min(means)), out=model)


def _add_variance(var: npt.NDArray[np.float64], ccd: CCDData | None, factor: float) -> None:
    """``var += factor × σ²`` of ``ccd`` (in float64), in place; nothing without one."""
    if ccd is None or ccd.uncertainty is None:
        return
    other = np.asarray(ccd.uncertainty.represent_as(VarianceUncertainty).array)
    var += np.multiply(other, factor, dtype=np.float64)


def flat_uncertainty(result: CombineResult, method: Method, clip: ClipSpec | None, *,
                     bias: CCDData | None = None, dark: CCDData | None = None,
                     exptimes: Sequence[float] | None = None) -> npt.NDArray[np.float32]:
    """The combined flat's standard deviation per pixel, before its normalisation.

    Parameters
    ----------
    result : CombineResult
        The flat frames' combination (each frame scaled by ``1/level``).
    method, clip
        How it was combined (:class:`~nightlog.reduction.master_options.CombineOptions`).
    bias : CCDData or None
        The master bias subtracted from every frame (ADU), its uncertainty counted.
    dark : CCDData or None
        The master dark (a rate in ADU/s, or counts of its ``EXPTIME``) subtracted
        from every frame, with ``exptimes``; its uncertainty counted.
    exptimes : sequence of float or None
        Each frame's exposure, seconds.

    Returns
    -------
    ndarray of float32
        In the combined frames' unit (relative to each frame's level); NaN where
        nothing survived.

    Raises
    ------
    CombineError
        No valid pixel.
    """
    n = len(result.scales)
    c_err, c_var = combination_factors(n, method, clip)
    valid = (result.count > 0) & np.isfinite(result.data) & np.isfinite(result.uncertainty)
    if not valid.any():
        raise CombineError("the combined flat has no valid pixel")
    # Every step in place on the model's own float64 array, in the order of
    # ``c_err² · m / n (· n²) + ⟨s⟩² σ_b² + share² σ_d²``.
    var = _noise_model(result, valid, c_var)
    var *= c_err**2
    var /= n
    if method == "sum":
        var *= n * n
    scales = np.asarray(result.scales, dtype=np.float64)
    _add_variance(var, bias, float(np.mean(scales)) ** 2)
    if dark is not None and exptimes is not None:
        unit = u.Unit(dark.unit)
        per = (1.0 if unit.is_equivalent(u.adu / u.s) or unit.is_equivalent(u.electron / u.s)
               else 1.0 / float(dark.header.get("EXPTIME", 1.0) or 1.0))
        share = float(np.mean(scales * np.asarray(exptimes, dtype=np.float64))) * per
        _add_variance(var, dark, share**2)
    np.sqrt(var, out=var)
    var[~valid] = np.nan
    return var.astype(np.float32)
