"""Small PNG pictures of CCD images, stretched as astronomers look at them.

A frame is binned down (block mean, ignoring non-finite pixels) until its longer
side fits ``max_size`` pixels, then stretched with IRAF's zscale
(:class:`astropy.visualization.ZScaleInterval`): the limits follow the bulk of
the pixel values, so sky noise and faint stars show while a few hot pixels or
saturated stars do not flatten the rest to black. Row 0 is drawn at the bottom,
as FITS viewers do. Pure: an array in, PNG bytes out; matplotlib is imported
only when a picture is made.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["DEFAULT_SIZE", "Thumbnail", "bin_to_fit", "zscale_thumbnail"]

DEFAULT_SIZE = 256


@dataclass(frozen=True, slots=True)
class Thumbnail:
    """A PNG picture and its size in pixels."""

    png: bytes
    width: int
    height: int


def bin_to_fit(data: npt.ArrayLike, max_size: int = DEFAULT_SIZE) -> npt.NDArray[np.float64]:
    """``data`` binned by the smallest integer factor that makes both sides ``<= max_size``.

    Each output pixel is the mean of the finite pixels of its block (NaN when the
    block has none); the last partial row and column of blocks are kept.

    Raises
    ------
    ValueError
        ``data`` is not a non-empty 2-D array, or ``max_size`` is below 1.
    """
    array = np.asarray(data, dtype=np.float64)
    if array.ndim != 2 or array.size == 0:
        raise ValueError(f"a thumbnail needs a non-empty 2-D image, not shape {array.shape}")
    if max_size < 1:
        raise ValueError(f"max_size must be at least 1, not {max_size}")
    factor = max(1, math.ceil(max(array.shape) / max_size))
    if factor == 1:
        return array.copy()
    ny, nx = (math.ceil(n / factor) for n in array.shape)
    padded = np.full((ny * factor, nx * factor), np.nan)
    padded[: array.shape[0], : array.shape[1]] = array
    blocks = padded.reshape(ny, factor, nx, factor)
    finite = np.isfinite(blocks)
    counts = finite.sum(axis=(1, 3))
    sums = np.where(finite, blocks, 0.0).sum(axis=(1, 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def zscale_thumbnail(data: npt.ArrayLike, max_size: int = DEFAULT_SIZE) -> Thumbnail:
    """A grey PNG of ``data``: binned to fit ``max_size``, zscale-stretched, row 0 at the bottom.

    Non-finite pixels are drawn black; an image with no finite pixel is all black.

    Raises
    ------
    ValueError
        As :func:`bin_to_fit`.
    """
    from astropy.visualization import ZScaleInterval
    from matplotlib.image import imsave

    small = bin_to_fit(data, max_size)
    finite = np.isfinite(small)
    if finite.any():
        low, high = ZScaleInterval().get_limits(small[finite])
        if not high > low:  # a flat image: show it mid-grey rather than divide by zero
            low, high = low - 0.5, low + 0.5
        scaled = np.clip((small - low) / (high - low), 0.0, 1.0)
    else:
        scaled = np.zeros_like(small)
    scaled[~finite] = 0.0
    buffer = io.BytesIO()
    imsave(buffer, scaled, cmap="gray", vmin=0.0, vmax=1.0, origin="lower", format="png")
    return Thumbnail(png=buffer.getvalue(), width=int(small.shape[1]),
                     height=int(small.shape[0]))
