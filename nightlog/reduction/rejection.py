"""Pixel rejection and combination of one tile of a stack.

A *tile* is ``N`` frames by ``P`` pixels. Every pixel's ``N`` values are sorted
once; after that each rejection step only moves two indices per pixel, because
every rejection rule used here removes a prefix and/or a suffix of the sorted
values:

* min/max rejection (``nlow``/``nhigh``) drops the lowest and highest ranks;
* sigma clipping drops values below ``centre - low * sigma`` and above
  ``centre + high * sigma``, which in sorted order are also a prefix and a suffix.

So the survivors of a pixel are always the contiguous run ``sorted[lo:hi]``; the
median of the survivors is read at the middle of the run, and their sum and sum
of squares come from cumulative sums in ``float64`` (shifted by a per-pixel
reference value so that the variance does not cancel catastrophically). This
replaces the slow NaN-masked medians of masked-array implementations with one
sort and a few gathers per iteration.

Non-finite input values (and masked input pixels, which the reader turns into
NaN) never take part: they sort to the end and are excluded from the start.
A clip about the mean by the standard deviation or the noise model needs no order
at all: :mod:`~nightlog.reduction.mean_clip` computes it without sorting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from nightlog.errors import CombineError
from nightlog.reduction import _sorted_columns as _cols
from nightlog.reduction._sorted_columns import NETWORK_MAX_FRAMES, sort_columns, take
from nightlog.reduction.iraf_rejection import reject_by_frame
from nightlog.reduction.mean_clip import clip_about_mean, mean_clip_applies
from nightlog.reduction.run_sums import RunSums, same_value

__all__ = ["MAD_TO_SIGMA", "MEDIAN_EFFICIENCY", "ClipSpec", "TileResult", "combine_tile"]

#: 1.4826 * MAD estimates the standard deviation of a normal distribution.
MAD_TO_SIGMA = 1.482602218505602
#: The standard error of a median of normal samples is sqrt(pi/2) = 1.2533 times
#: that of the mean.
MEDIAN_EFFICIENCY = 1.2533141373155003

Method = Literal["average", "median", "sum"]
Spread = Literal["std", "mad", "noise", "avsigclip", "sigclip"]
Centre = Literal["median", "mean"]


@dataclass(frozen=True, slots=True)
class ClipSpec:
    """Iterated sigma clipping of each pixel's values across the stack.

    Parameters
    ----------
    low, high : float or None
        Rejection thresholds in units of the spread, below and above the centre.
        ``None`` disables that side. Defaults 3 and 3.
    spread : {'std', 'mad', 'noise'}
        How sigma is estimated from the surviving values of a pixel:

        ``'std'``
            their standard deviation (``ddof=0``, as ``astropy.stats.sigma_clip``).
            With few frames an outlier inflates the very spread it is measured
            against: with ``N`` values the largest possible ``|z|`` is
            ``(N-1)/sqrt(N)``, 1.79 for ``N=5``, so a 3-sigma clip can never
            reject anything. Use ``'mad'`` or ``'noise'`` for small stacks.
        ``'mad'``
            1.4826 times the median absolute deviation from the centre (robust).
        ``'noise'``
            the detector noise model of IRAF ``ccdclip``:
            ``sigma**2 = (read_noise/gain)**2 + centre/gain`` in ADU (``centre``
            clipped at 0); needs ``read_noise`` (electrons) and ``gain``
            (electrons/ADU). When frames were scaled, sigma is computed for the
            unscaled level and multiplied by the mean scale factor (with
            ``frame_scales=True``: by each frame's own factor, at its own level).
            With ``light=False`` (biases) the level carries no Poisson term.
        ``'sigclip'``
            IRAF ``sigclip``: ``sqrt(sum((x - centre)**2) / (n - 1))`` of the
            survivors, about the centre.
        ``'avsigclip'``
            IRAF ``avsigclip``: ``sigma = k·sqrt(max(1, centre))``, with ``k``
            measured from the stack once per image line before rejection (see
            :mod:`~nightlog.reduction.iraf_rejection`).
    centre : {'median', 'mean'}
        Centre of the surviving values. Default ``'median'``.
    max_iters : int or None
        Maximum number of clipping passes; ``None`` iterates until nothing more
        is rejected. ``1`` reproduces ``ccdproc.combine(sigma_clip=True)``.
    read_noise : float or None
        Read noise in electrons (``spread='noise'`` only).
    gain : float or None
        Gain in electrons per ADU (``spread='noise'`` only).
    nkeep : int or None
        IRAF ``nkeep``: at least this many values of each pixel are kept (``>= 0``)
        or at most ``-nkeep`` are rejected (``< 0``) by the clip, the rejected
        values with the smallest residuals given back first. ``None`` (default):
        no such limit.
    frame_scales : bool
        Compute the noise of ``'noise'`` and ``'avsigclip'`` in each frame's own
        units (its own scale factor) instead of at the mean scale. Default False.
    light : bool
        Whether the frames collected light (``'noise'`` only). ``False`` for
        biases: their level is the amplifier's offset, not electrons, so sigma is
        the read noise alone. Default True.

    ``'avsigclip'``, ``'sigclip'``, ``nkeep`` and ``frame_scales`` need each value's
    frame and
    run in :func:`~nightlog.reduction.iraf_rejection.reject_by_frame` instead of
    the sorted fast path.

    Raises
    ------
    CombineError
        Negative thresholds, unknown names, or a noise model without its
        parameters.
    """

    low: float | None = 3.0
    high: float | None = 3.0
    spread: Spread = "std"
    centre: Centre = "median"
    max_iters: int | None = None
    read_noise: float | None = None
    gain: float | None = None
    nkeep: int | None = None
    frame_scales: bool = False
    light: bool = True

    @property
    def by_frame(self) -> bool:
        """Whether this clip needs each value's frame (the IRAF engine)."""
        return (self.spread in ("avsigclip", "sigclip") or self.nkeep is not None
                or self.frame_scales)

    def __post_init__(self) -> None:
        for name in ("low", "high"):
            value = getattr(self, name)
            if value is not None and not value >= 0:
                raise CombineError(f"clip threshold {name}={value!r} must be >= 0 or None")
        if self.spread not in ("std", "mad", "noise", "avsigclip", "sigclip"):
            raise CombineError(f"unknown clip spread {self.spread!r}: use 'std', 'mad', "
                               "'noise', 'avsigclip' or 'sigclip'")
        if self.frame_scales and self.spread not in ("noise", "avsigclip", "sigclip"):
            raise CombineError(
                "frame_scales applies to the 'noise', 'avsigclip' and 'sigclip' spreads")
        if self.nkeep is not None and (isinstance(self.nkeep, bool)
                                       or not isinstance(self.nkeep, int)):
            raise CombineError(f"nkeep={self.nkeep!r} must be an integer or None")
        if self.centre not in ("median", "mean"):
            raise CombineError(f"unknown clip centre {self.centre!r}: use 'median' or 'mean'")
        if self.max_iters is not None and self.max_iters < 1:
            raise CombineError(f"max_iters={self.max_iters} must be >= 1 or None")
        if self.spread == "noise":
            if self.read_noise is None or self.gain is None:
                raise CombineError("spread='noise' needs read_noise (e-) and gain (e-/ADU)")
            if not self.gain > 0 or not self.read_noise >= 0:
                raise CombineError(
                    f"noise model needs gain > 0 and read_noise >= 0, got gain={self.gain}, "
                    f"read_noise={self.read_noise}"
                )


@dataclass(slots=True)
class TileResult:
    """Combined values of the ``P`` pixels of one tile (all 1-D, length ``P``)."""

    data: npt.NDArray[np.float32]
    uncertainty: npt.NDArray[np.float32]
    count: npt.NDArray[np.uint16]


def _survivor_median(x: npt.NDArray[np.float32], lo: npt.NDArray[np.intp],
                     hi: npt.NDArray[np.intp]) -> npt.NDArray[np.float64]:
    """Median of the sorted run ``x[lo:hi, p]`` of each pixel (``x`` is ``(N, P)``)."""
    last = x.shape[0] - 1
    n = np.maximum(hi - lo, 1)
    a = take(x, np.minimum(lo + (n - 1) // 2, last)).astype(np.float64)
    b = take(x, np.minimum(lo + n // 2, last)).astype(np.float64)
    return 0.5 * (a + b)


def _survivor_mad(x: npt.NDArray[np.float32], lo: npt.NDArray[np.intp],
                  hi: npt.NDArray[np.intp], centre: npt.NDArray[np.float64],
                  of_median: bool = False) -> npt.NDArray[np.float64]:
    """Median absolute deviation of ``x[lo:hi, p]`` about ``centre`` (their median when
    ``of_median``: merged from the run's halves when it is the same for every pixel)."""
    if of_median and lo.size and lo.min() == lo.max() and hi.min() == hi.max():
        return _cols.uniform_run_mad(x, int(lo[0]), int(hi[0]), centre)
    ranks = np.arange(x.shape[0])[:, None]
    dev = np.abs(x - centre[None, :])
    dev[(ranks < lo[None, :]) | (ranks >= hi[None, :])] = np.inf
    return _survivor_median(sort_columns(dev), np.zeros_like(lo), hi - lo)


def _rank(x: npt.NDArray[np.float32], bound: npt.NDArray[np.float64],
          lo: npt.NDArray[np.intp], hi: npt.NDArray[np.intp], *, strict: bool
          ) -> npt.NDArray[np.intp]:
    """First index in ``[lo, hi]`` of each sorted column whose value is not below
    ``bound`` (``strict``: ``>= bound``; otherwise ``> bound``).

    A vectorised binary search: log2(N) gathers instead of comparing all N
    values of every pixel (for small stacks the comparisons are cheaper).
    """
    if x.shape[0] <= NETWORK_MAX_FRAMES:
        below = (x < bound) if strict else (x <= bound)
        rank = np.count_nonzero(below, axis=0)
        clipped: npt.NDArray[np.intp] = np.clip(rank, lo, hi)
        return clipped
    first, last = lo.copy(), hi.copy()
    top = x.shape[0] - 1
    while True:
        open_ = first < last
        if not open_.any():
            return first
        mid = (first + last) // 2
        value = take(x, np.minimum(mid, top))
        right = (value < bound) if strict else (value <= bound)
        right &= open_
        first = np.where(right, mid + 1, first)
        last = np.where(open_ & ~right, mid, last)


def _same_ranks(x: npt.NDArray[np.float32], *, nlow: int, nhigh: int, method: Method
                ) -> TileResult:
    """:func:`combine_tile` of a sorted tile whose every pixel has all ``N`` values and
    no clip: every pixel keeps the same ranks ``[lo, hi)``, held as two numbers
    instead of per-pixel arrays, with the same operations on each pixel's values."""
    n_frames, n_pix = x.shape
    lo = min(nlow, n_frames)
    hi = max(n_frames - nhigh, lo)
    n = hi - lo
    mean, var = RunSums(x, n_frames, upto=hi).moments(lo, hi)
    std = np.sqrt(var, out=var)  # the moments' own arrays: in place from here
    rootn = np.sqrt(np.asarray(max(n, 1)))
    if method == "median":
        data = _survivor_median(x, np.full(n_pix, lo, dtype=np.intp),
                                np.full(n_pix, hi, dtype=np.intp))
        std *= MEDIAN_EFFICIENCY
        unc = np.divide(std, rootn, out=std)
    elif method == "average":
        data, unc = mean, np.divide(std, rootn, out=std)
    else:
        data, unc = np.multiply(mean, n, out=mean), np.multiply(std, rootn, out=std)
    data32, unc32 = data.astype(np.float32), unc.astype(np.float32)
    if n == 0:
        data32[...], unc32[...] = np.nan, np.nan
    return TileResult(data=data32, uncertainty=unc32,
                      count=np.full(n_pix, n, dtype=np.uint16))


def _clip(x: npt.NDArray[np.float32], lo: npt.NDArray[np.intp], hi: npt.NDArray[np.intp],
          sums: RunSums, clip: ClipSpec, mean_scale: float) -> None:
    """Move ``lo``/``hi`` in place until the clip converges or ``max_iters`` is reached.

    Only pixels whose survivors changed in the previous pass are revisited: a
    pixel whose survivors did not change would compute the same bounds again.
    """
    active = np.flatnonzero(hi - lo > 0)
    iteration = 0
    while active.size and (clip.max_iters is None or iteration < clip.max_iters):
        iteration += 1
        sub = active.size < x.shape[1]
        xa = x[:, active] if sub else x
        la, ha = lo[active], hi[active]
        mean, var = sums.moments(la, ha, active if sub else None)
        centre = _survivor_median(xa, la, ha) if clip.centre == "median" else mean
        if clip.spread == "std":
            sigma = np.sqrt(var)
        elif clip.spread == "mad":
            sigma = MAD_TO_SIGMA * _survivor_mad(xa, la, ha, centre, clip.centre == "median")
        else:
            assert clip.read_noise is not None and clip.gain is not None
            level = np.maximum(centre / mean_scale, 0.0) if clip.light else 0.0
            sigma = mean_scale * np.sqrt((clip.read_noise / clip.gain) ** 2 + level / clip.gain)
        new_lo, new_hi = la, ha
        if clip.low is not None:
            new_lo = _rank(xa, centre - clip.low * sigma, la, ha, strict=True)
        if clip.high is not None:
            new_hi = _rank(xa, centre + clip.high * sigma, la, ha, strict=False)
        new_hi = np.maximum(new_hi, new_lo)
        changed = (new_lo != la) | (new_hi != ha)
        lo[active] = new_lo
        hi[active] = new_hi
        active = active[changed & (new_hi > new_lo)]


def combine_tile(tile: npt.NDArray[np.float32], *, method: Method, clip: ClipSpec | None,
                 nlow: int, nhigh: int, weights: npt.NDArray[np.float64] | None,
                 mean_scale: float = 1.0, scales: npt.NDArray[np.float64] | None = None,
                 line_length: int | None = None, overwrite: bool = False) -> TileResult:
    """Reject outliers and combine the ``N`` values of each of ``P`` pixels.

    Parameters
    ----------
    tile : ndarray, shape (N, P), float32
        One value per frame and pixel, already scaled; NaN means "no value". Not
        modified.
    method : {'average', 'median', 'sum'}
        Combination of the survivors. ``'sum'`` is the plain sum of the survivors
        (not rescaled for rejected values), as ``ccdproc``.
    clip : ClipSpec or None
        Sigma clipping, applied after min/max rejection.
    nlow, nhigh : int
        Number of lowest/highest valid values to drop first.
    weights : ndarray, shape (N,), or None
        Per-frame weights for ``'average'`` and ``'sum'``.
    mean_scale : float
        Mean per-frame scale factor (for the ``'noise'`` spread).
    scales : ndarray, shape (N,), or None
        Each frame's scale factor, for a clip that works by frame
        (:attr:`ClipSpec.by_frame`); default all ``mean_scale``.
    line_length : int or None
        Pixels per image line of the tile (``'avsigclip'`` measures its factor
        per line); default the whole tile.
    overwrite : bool
        The caller hands ``tile`` over (a C-ordered float32 array of its own):
        the kernel may sort it in place instead of copying it. Default False.

    Returns
    -------
    TileResult
        ``data`` (NaN where nothing survived), ``uncertainty`` and ``count``.
        The uncertainty is ``std/sqrt(n)`` for the average, ``1.2533 std/sqrt(n)``
        for the median and ``std*sqrt(n)`` for the sum, with ``std`` the
        population standard deviation (``ddof=0``) of the ``n`` survivors.
    """
    if clip is not None and clip.by_frame:
        if scales is None:
            scales = np.full(tile.shape[0], mean_scale)
        keep = reject_by_frame(tile, clip, nlow=nlow, nhigh=nhigh, scales=scales,
                               line_length=line_length)
        survivors = np.where(keep, tile, np.float32(np.nan)).astype(np.float32)
        return combine_tile(survivors, method=method, clip=None, nlow=0, nhigh=0,
                            weights=weights, mean_scale=mean_scale)
    if mean_clip_applies(clip, method=method, nlow=nlow, nhigh=nhigh,
                         weighted=weights is not None):
        assert clip is not None
        data, unc, count = clip_about_mean(tile, clip, method=method, mean_scale=mean_scale)
        return TileResult(data=data, uncertainty=unc, count=count)
    n_frames, n_pix = tile.shape
    reuse = (overwrite and weights is None and tile.dtype == np.float32
             and tile.flags.c_contiguous and tile.flags.writeable)
    x = tile if reuse else np.array(tile, dtype=np.float32, order="C")
    finite = np.isfinite(x)
    uniform = bool(finite.all())
    if uniform:
        valid = np.full(n_pix, n_frames, dtype=np.intp)
    else:
        valid = np.count_nonzero(finite, axis=0)
        x[~finite] = np.inf  # sorts last, beyond ``valid``
    del finite
    x = sort_columns(x)
    if uniform and clip is None and weights is None:
        return _same_ranks(x, nlow=nlow, nhigh=nhigh, method=method)
    lo = np.minimum(np.full(n_pix, nlow, dtype=np.intp), valid)
    hi = np.maximum(valid - nhigh, lo).astype(np.intp)
    # Runs only shrink from ``[lo, hi)`` (clipping moves their ends inwards).
    sums = RunSums(x, valid, upto=int(hi.max(initial=0)))
    if clip is not None:
        _clip(x, lo, hi, sums, clip, mean_scale)
    n = hi - lo
    mean, var = sums.moments(lo, hi)
    std = np.sqrt(var)
    rootn = np.sqrt(same_value(np.maximum(n, 1)))
    if method == "median":
        data, unc = _survivor_median(x, lo, hi), MEDIAN_EFFICIENCY * std / rootn
    elif weights is not None:
        total, wsum = _cols.weighted_survivor_sums(tile, weights, x, lo, hi)
        with np.errstate(invalid="ignore", divide="ignore"):
            data = total / wsum if method == "average" else total
        unc = std / rootn if method == "average" else std * rootn
    elif method == "average":
        data, unc = mean, std / rootn
    else:
        data, unc = mean * n, std * rootn
    empty = n == 0
    data32, unc32 = data.astype(np.float32), unc.astype(np.float32)
    data32[empty], unc32[empty] = np.nan, np.nan
    return TileResult(data=data32, uncertainty=unc32, count=n.astype(np.uint16))

