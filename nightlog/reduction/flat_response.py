"""The flat's large-scale response: vignetting told apart from dead pixels.

A master flat mixes two things: the response of each pixel (dust, dead pixels,
pixel-to-pixel sensitivity) and how much light reaches each part of the detector
(vignetting). Averaged over blocks of :data:`RESPONSE_BOX` pixels the first
disappears and the second remains: a pixel is *vignetted* (``UNILLUMINATED``) when
its block responds little, *dead* (``DEAD``) when it responds far less than its
block (:func:`~nightlog.reduction.mask.dead_pixels_from_flat` with ``box``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from astropy.nddata import CCDData

from nightlog.errors import ReductionError
from nightlog.reduction._row_blocks import BLOCK_ROWS
from nightlog.reduction.order_statistics import median

__all__ = ["RESPONSE_BOX", "dark_region", "large_scale_response", "vignetted_from_flat"]

#: Side (pixels) of the blocks over which :func:`large_scale_response` averages.
RESPONSE_BOX = 16


def _plain(data: CCDData | npt.ArrayLike) -> np.ndarray[Any, Any]:
    if isinstance(data, CCDData):
        return np.asarray(data.data)
    return np.asarray(data)


def large_scale_response(flat: CCDData | npt.ArrayLike, *, box: int = RESPONSE_BOX,
                         exclude: npt.ArrayLike | None = None) -> npt.NDArray[np.float32]:
    """The flat's response averaged over ``box`` × ``box`` pixel blocks.

    Parameters
    ----------
    flat : CCDData or array_like
        A master flat.
    box : int, optional
        Block side in pixels (default :data:`RESPONSE_BOX`). A dead pixel moves its
        block's mean by ``1/box²``, a dead column by ``1/box``; vignetting changes
        little over a block.
    exclude : array_like of bool, optional
        Pixels left out of the means (for example a master's flagged pixels, reset
        to 1). Non-finite values are always left out.

    Returns
    -------
    numpy.ndarray of float32
        Same shape as ``flat``: each pixel holds the mean of its block (NaN for a
        block with no value).

    Raises
    ------
    ReductionError
        ``box`` is smaller than 1, or ``flat`` is not two-dimensional.
    """
    values = np.asarray(_plain(flat), dtype=np.float32)
    if values.ndim != 2:
        raise ReductionError(f"a flat is two-dimensional, not of shape {values.shape}")
    if box < 1:
        raise ReductionError(f"box must be at least 1 pixel, not {box!r}")
    good = np.isfinite(values)
    if exclude is not None:
        good &= ~np.asarray(exclude, dtype=bool)
    ny, nx = values.shape
    py, px = -ny % box, -nx % box
    if not (py or px) and good.all():
        # Whole blocks of values only: the values summed as they are, and every block
        # counts box² of them (the sum of its ones, exactly).
        by, bx = ny // box, nx // box
        sums = values.reshape(by, box, bx, box).sum(axis=(1, 3), dtype=np.float64)
        n = np.full((by, bx), float(box * box))
    else:
        filled = np.where(good, values, np.float32(0.0))
        counts = good.astype(np.float32)
        if py or px:
            filled = np.pad(filled, ((0, py), (0, px)))
            counts = np.pad(counts, ((0, py), (0, px)))
        by, bx = filled.shape[0] // box, filled.shape[1] // box
        sums = filled.reshape(by, box, bx, box).sum(axis=(1, 3), dtype=np.float64)
        n = counts.reshape(by, box, bx, box).sum(axis=(1, 3), dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(n > 0, sums / np.maximum(n, 1.0), np.nan)
    return _bilinear(means, box, (ny, nx))


def _weights(n: int, blocks: int, box: int) -> tuple[npt.NDArray[np.intp],
                                                     npt.NDArray[np.intp],
                                                     npt.NDArray[np.float64]]:
    """For each of ``n`` pixels: the two block centres around it and the weight of
    the second; beyond the first and last centres the line through the two outer
    ones is extended (a vignetted edge keeps falling to the frame's edge)."""
    position = (np.arange(n) - (box - 1) / 2.0) / box
    if blocks == 1:
        zero = np.zeros(n, dtype=np.intp)
        return zero, zero, np.zeros(n)
    first = np.clip(np.floor(position), 0, blocks - 2).astype(np.intp)
    return first, first + 1, position - first


def _bilinear(means: npt.NDArray[np.float64], box: int,
              shape: tuple[int, int]) -> npt.NDArray[np.float32]:
    """Block means interpolated linearly between block centres (extended linearly
    to the edges). A block with no value (NaN) spreads NaN to the pixels that use it."""
    y0, y1, wy = _weights(shape[0], means.shape[0], box)
    x0, x1, wx = _weights(shape[1], means.shape[1], box)
    rows = (means[:, x0] * (1.0 - wx) + means[:, x1] * wx).astype(np.float32)
    first, second = (1.0 - wy).astype(np.float32), wy.astype(np.float32)
    out = np.empty((shape[0], rows.shape[1]), dtype=np.float32)
    # ``rows[y0]·(1 - wy) + rows[y1]·wy`` in float32, a block of rows at a time (the
    # same operations per pixel, in cache instead of through frame-sized temporaries).
    for r0 in range(0, shape[0], BLOCK_ROWS):
        block = slice(r0, r0 + BLOCK_ROWS)
        part = out[block]
        np.take(rows, y0[block], axis=0, out=part, mode="clip")  # unbuffered; in range
        part *= first[block, None]
        part += rows[y1[block]] * second[block, None]
    return out


def vignetted_from_flat(flat: CCDData | npt.ArrayLike, *, low: float = 0.5,
                        box: int = RESPONSE_BOX, exclude: npt.ArrayLike | None = None,
                        response: npt.ArrayLike | None = None,
                        level: float | None = None) -> npt.NDArray[np.bool_]:
    """Flag the vignetted part of a flat: large-scale response below ``low`` × median.

    Parameters
    ----------
    flat : CCDData or array_like
        Master flat (any normalisation).
    low : float, optional
        Fraction of the flat's median (default 0.5).
    box, exclude
        As :func:`large_scale_response`.
    response : array_like, optional
        :func:`large_scale_response` of ``flat`` with ``box`` and ``exclude``, when
        the caller has it already.
    level : float, optional
        The median of the flat's finite pixels outside ``exclude``, when the caller
        has it already.

    Returns
    -------
    numpy.ndarray of bool
        ``True`` where the block's mean response is below the limit; set
        :attr:`~nightlog.reduction.mask.MaskBit.UNILLUMINATED` for them. A single dead pixel is not
        vignetted: that is
        :func:`~nightlog.reduction.mask.dead_pixels_from_flat`'s business.

    Raises
    ------
    ReductionError
        ``low`` not in (0, 1], no finite pixel, or a median that is not positive.
    """
    if not 0 < low <= 1:
        raise ReductionError(f"the low-response limit must be in (0, 1], not {low!r}")
    values = _plain(flat)
    good = np.isfinite(values)
    if exclude is not None:
        good &= ~np.asarray(exclude, dtype=bool)
    if not good.any():
        raise ReductionError("the flat has no finite pixels")
    if level is None:
        level = median(values[good], overwrite=True)
    if not level > 0:
        raise ReductionError(f"the flat's median is {level}, not positive")
    smooth = (np.asarray(response) if response is not None
              else large_scale_response(values, box=box, exclude=exclude))
    with np.errstate(invalid="ignore"):
        return np.asarray(smooth < low * level, dtype=np.bool_)


def dark_region(low: npt.ArrayLike, *, radius: int = 2, min_share: int = 9
                ) -> npt.NDArray[np.bool_]:
    """The pixels of ``low`` that belong to a region rather than to a defect.

    Parameters
    ----------
    low : array_like of bool
        Pixels below a flat's limit.
    radius : int, optional
        Half-side of the neighbourhood (default 2: 5 × 5 pixels).
    min_share : int, optional
        A low pixel belongs to a region when at least this many pixels of its
        neighbourhood (itself included) are low (default 9 of 25: the corner of a
        region has 9, a pixel alone 1, a dead column 5).

    Returns
    -------
    numpy.ndarray of bool
        ``True`` for the low pixels of regions (vignetted, not reached by light).
    """
    mask = np.asarray(low, dtype=bool)
    if not mask.any():
        return np.zeros(mask.shape, dtype=bool)  # no low pixel: no region (nothing to count)
    padded = np.pad(mask.astype(np.int16), radius)
    ny, nx = mask.shape
    side = 2 * radius + 1
    # Sums over the window: along rows, then along columns.
    rows = np.zeros((ny + 2 * radius, nx), dtype=np.int16)
    for dx in range(side):
        rows += padded[:, dx:dx + nx]
    counts = np.zeros((ny, nx), dtype=np.int16)
    for dy in range(side):
        counts += rows[dy:dy + ny]
    return mask & (counts >= min_share)
