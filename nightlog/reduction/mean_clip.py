"""Sigma clipping about the mean, without sorting.

When a clip's centre is the mean and its spread the standard deviation or the
detector noise model (``ClipSpec(centre='mean', spread='std'|'noise')``, the
algorithm of ``ccdproc.combine(sigma_clip=True)``), and no min/max rejection,
weights or median are asked for, each pass needs only the count, sum and sum of
squares of each pixel's survivors. This module keeps those three per pixel and
subtracts what each pass rejects, instead of sorting every pixel's values and
forming prefix sums (the general path of :mod:`~nightlog.reduction.rejection`):
the first pass reads the tile a few times, and later passes revisit only the
pixels that lost a value (outliers are rare), so nothing grows with ``log N``.

It keeps the values the sorted path keeps: a value survives while it is neither
below ``centre - low * sigma`` nor above ``centre + high * sigma`` (float64
bounds, compared with the float32 values exactly), and non-finite values never
take part. The sums are float64 sums of the values shifted by a per-pixel
reference (the first frame's value), so the variance does not cancel; for
integer ADU every sum is an exact integer, as in ``ccdproc``'s float64
arithmetic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from nightlog.reduction.rejection import ClipSpec

__all__ = ["clip_about_mean", "mean_clip_applies"]


def mean_clip_applies(clip: ClipSpec | None, *, method: str, nlow: int, nhigh: int,
                      weighted: bool) -> bool:
    """Whether :func:`clip_about_mean` computes this combination."""
    return (clip is not None and clip.centre == "mean" and clip.spread in ("std", "noise")
            and not clip.by_frame and nlow == 0 and nhigh == 0 and not weighted
            and method in ("average", "sum"))


def _at_least(bound: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
    """The smallest float32 not below each bound: ``x >= b`` iff ``x >= result``."""
    out = bound.astype(np.float32)
    return np.where(out < bound, np.nextafter(out, np.float32(np.inf)), out)


def _at_most(bound: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
    """The largest float32 not above each bound: ``x <= b`` iff ``x <= result``."""
    out = bound.astype(np.float32)
    return np.where(out > bound, np.nextafter(out, np.float32(-np.inf)), out)


def _sums(d: npt.NDArray[np.float32]) -> tuple[npt.NDArray[np.float64],
                                               npt.NDArray[np.float64]]:
    """Float64 sums of each column of ``d`` and of its squares.

    One float64 copy of the whole tile, summed down its columns (row after row, as a
    loop over the frames would add them) before and after squaring in place: four
    calls instead of two per frame (the squares of float32 values are exact in
    float64).
    """
    wide = d.astype(np.float64)
    s1 = wide.sum(axis=0)
    np.multiply(wide, wide, out=wide)
    return s1, wide.sum(axis=0)


def _sigma(clip: ClipSpec, centre: npt.NDArray[np.float64], var: npt.NDArray[np.float64],
           mean_scale: float) -> npt.NDArray[np.float64]:
    if clip.spread == "std":
        return np.sqrt(var)
    assert clip.read_noise is not None and clip.gain is not None
    level = np.maximum(centre / mean_scale, 0.0) if clip.light else 0.0
    return mean_scale * np.sqrt((clip.read_noise / clip.gain) ** 2 + level / clip.gain)


def clip_about_mean(tile: npt.NDArray[np.float32], clip: ClipSpec, *, method: str,
                    mean_scale: float = 1.0
                    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32],
                               npt.NDArray[np.uint16]]:
    """Clip each pixel's values about their mean and combine the survivors.

    Parameters
    ----------
    tile : ndarray, shape (N, P), float32
        One value per frame and pixel, already scaled, in ADU (or the frames'
        unit); NaN means "no value". Not modified.
    clip : ClipSpec
        A clip for which :func:`mean_clip_applies` holds.
    method : {'average', 'sum'}
        Mean of the survivors, or their plain sum.
    mean_scale : float
        Mean per-frame scale factor (for the ``'noise'`` spread).

    Returns
    -------
    data, uncertainty : ndarray, shape (P,), float32
        The combined value and its standard deviation (``std/sqrt(n)`` for the
        average, ``std*sqrt(n)`` for the sum, ``std`` with ``ddof=0``); NaN
        where nothing survived.
    count : ndarray, shape (P,), uint16
        Survivors of each pixel.
    """
    x = np.asarray(tile, dtype=np.float32)
    n_frames, n_pix = x.shape
    ref = np.array(x[0], dtype=np.float32)
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf: found just below
        d = np.subtract(x, ref, dtype=np.float32)
        s1, s2 = _sums(d)
    keep: npt.NDArray[np.bool_] | None = None
    # A non-finite value makes its column's float64 sum non-finite: one test for all.
    if np.isfinite(s1.sum()):
        n = np.full(n_pix, n_frames, dtype=np.intp)
    else:
        keep = np.isfinite(x)
        bad_ref = ~keep[0]
        if bad_ref.any():
            ref[bad_ref] = 0.0
            with np.errstate(invalid="ignore"):
                np.subtract(x, ref, out=d, dtype=np.float32)
        d[~keep] = 0.0
        n = np.count_nonzero(keep, axis=0)
        s1, s2 = _sums(d)
    # Each pixel's mean and variance as last computed; ``stale`` columns lost a
    # value since (the formulas are the final ones, so the others are reused).
    mean_all = np.zeros(n_pix, dtype=np.float64)
    var_all = np.zeros(n_pix, dtype=np.float64)
    stale = np.flatnonzero(n > 0)
    active = stale
    iteration = 0
    while active.size and (clip.max_iters is None or iteration < clip.max_iters):
        iteration += 1
        whole = active.size == n_pix
        if whole:  # no gathers on the first pass over a full tile
            # Every pixel has all its values before anything is rejected.
            na: float | npt.NDArray[np.float64] = (
                float(n_frames) if keep is None else n.astype(np.float64))
            sa1, sa2, refa = s1, s2, ref
        else:
            na = n[active].astype(np.float64)
            sa1, sa2, refa = s1[active], s2[active], ref[active]
        mean = sa1 / na
        var = sa2 / na
        var -= mean * mean
        np.maximum(var, 0.0, out=var)
        mean_all[active], var_all[active] = mean, var
        stale = active[:0]
        centre = mean + refa
        sigma = _sigma(clip, centre, var, mean_scale)
        xa = x if whole else x[:, active]
        if clip.low is not None:
            out = np.less(xa, _at_least(centre - clip.low * sigma)[None, :])
            if clip.high is not None:
                out |= xa > _at_most(centre + clip.high * sigma)[None, :]
        elif clip.high is not None:
            out = np.greater(xa, _at_most(centre + clip.high * sigma)[None, :])
        else:
            out = np.zeros(xa.shape, dtype=bool)
        if keep is not None:
            out &= keep if whole else keep[:, active]
        hit = np.flatnonzero(out.any(axis=0))
        if not hit.size:
            break
        cols = active[hit]
        rejected = out[:, hit]
        gone = np.where(rejected, d[:, cols], np.float32(0.0))
        g1, g2 = _sums(gone)
        s1[cols] -= g1
        s2[cols] -= g2
        n[cols] -= np.count_nonzero(rejected, axis=0)
        active = stale = cols[n[cols] > 0]
        if clip.max_iters is not None and iteration >= clip.max_iters:
            break  # no pass follows: nothing reads which values survive
        if keep is None:
            keep = np.ones(x.shape, dtype=bool)
        keep[:, cols] &= ~rejected
    if stale.size:
        ns = n[stale].astype(np.float64)
        mean_s = s1[stale] / ns
        mean_all[stale] = mean_s
        var_all[stale] = np.maximum(s2[stale] / ns - mean_s * mean_s, 0.0)
    empty = n == 0
    std = np.sqrt(var_all)
    root = np.sqrt(np.maximum(n, 1).astype(np.float64))
    if method == "average":
        data, unc = mean_all + ref, std / root
    else:
        data, unc = (mean_all + ref) * n, std * root
    data32 = data.astype(np.float32)
    unc32 = unc.astype(np.float32)
    data32[empty] = np.nan
    unc32[empty] = np.nan
    return data32, unc32, n.astype(np.uint16)
