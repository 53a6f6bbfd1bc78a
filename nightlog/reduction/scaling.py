"""Level of a frame measured in a region: the median or the mode.

Flats are normalised before they are combined, and the combined flat is
normalised to 1, by a level measured in a *named region*. Measuring on the
whole frame is wrong for a flat with an illumination gradient: as the gradient
changes from frame to frame, the whole-frame median moves with it and the frames
are mis-scaled by a percent or more. A central region (the default) or one the
instrument profile names avoids the vignetted corners and overscan.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

from nightlog.errors import CombineError, SectionError
from nightlog.reduction.order_statistics import median
from nightlog.sections import Section, parse_section

__all__ = ["RegionLike", "ScaleStat", "central_region", "mode", "region_level", "resolve_region"]

ScaleStat = Literal["median", "mode"]
RegionLike = str | tuple[slice, slice] | None


def central_region(shape: tuple[int, int]) -> Section:
    """The central half of each axis (a quarter of the area) of an image of ``shape``."""
    ny, nx = shape
    return slice(ny // 4, ny - ny // 4), slice(nx // 4, nx - nx // 4)


def resolve_region(region: RegionLike, shape: tuple[int, int]) -> Section:
    """Turn a FITS section string, a pair of slices or ``None`` into row/column slices.

    Raises
    ------
    SectionError
        A section string that is malformed or reaches outside the image.
    CombineError
        A region that selects no pixel.
    """
    if region is None:
        section = central_region(shape)
    elif isinstance(region, str):
        section = parse_section(region, shape)
    else:
        try:
            rows, cols = region
        except (TypeError, ValueError) as exc:
            raise SectionError(f"a region must be a FITS section or two slices, not {region!r}"
                               ) from exc
        section = (rows, cols)
    ys, xs = section
    if len(range(*ys.indices(shape[0]))) == 0 or len(range(*xs.indices(shape[1]))) == 0:
        raise CombineError(f"region {region!r} selects no pixel of an image of shape {shape}")
    return section


def _half_sample_mode(values: npt.NDArray[np.float64]) -> float:
    """Bickel's half-sample mode of sorted values: keep halving to the densest half."""
    v = values
    while v.size > 3:
        half = (v.size + 1) // 2
        widths = v[half - 1:] - v[: v.size - half + 1]
        start = int(np.argmin(widths))
        v = v[start:start + half]
    if v.size == 3:
        left, right = v[1] - v[0], v[2] - v[1]
        return float(v[1] if left == right else (v[:2].mean() if left < right else v[1:].mean()))
    return float(v.mean())


def mode(values: npt.NDArray[np.floating]) -> float:
    """Mode of a sample.

    Integer-valued data (raw ADU) get the most frequent value, as
    ``scipy.stats.mode`` gives in the lecture (the smallest one on ties).
    Other data get Bickel's half-sample mode, a robust estimator of the peak of
    a continuous distribution.

    Raises
    ------
    CombineError
        No finite value.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        raise CombineError("cannot take the mode of a region without finite values")
    if np.all(v == np.round(v)):
        lo = v.min()
        span = v.max() - lo
        if span < 2**24:
            counts = np.bincount((v - lo).astype(np.int64))
            return float(lo + np.argmax(counts))
    return _half_sample_mode(np.sort(v))


def region_level(data: npt.NDArray[np.floating], region: RegionLike = None,
                 stat: ScaleStat = "median") -> float:
    """Median or mode of the finite pixels of ``data`` inside ``region``.

    Parameters
    ----------
    data : ndarray, 2-D
        Image in any unit; not modified.
    region : str, pair of slices or None
        FITS section (1-based, inclusive), numpy slices, or ``None`` for the
        central half of each axis.
    stat : {'median', 'mode'}
        Statistic; see :func:`mode`.

    Returns
    -------
    float
        The level, in the unit of ``data``.

    Raises
    ------
    CombineError
        Unknown statistic, or no finite pixel in the region.
    SectionError
        A malformed region.
    """
    ys, xs = resolve_region(region, (int(data.shape[0]), int(data.shape[1])))
    region_values = np.asarray(data[ys, xs])
    if stat == "median":
        # The median of the values as float64, without the float64 copy.
        finite = region_values[np.isfinite(region_values)]
        if finite.size == 0:
            raise CombineError("cannot take the median of a region without finite values")
        return median(finite, overwrite=True, dtype=np.float64)
    if stat == "mode":
        return mode(np.asarray(region_values, dtype=np.float64))
    raise CombineError(f"unknown scale statistic {stat!r}: use 'median' or 'mode'")
