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


def mode(values: npt.NDArray[np.floating]) -> float:
    """Mode of a sample: the peak of its histogram, refined by a parabola.

    The histogram spans the median plus or minus three robust standard
    deviations (1.4826 MAD) in 2 * sqrt(n) bins (at most 512). For integer-valued
    data (raw ADU) the bins are at least one unit wide, so the mode is the most
    frequent value, as ``scipy.stats.mode`` gives in the lecture.

    Raises
    ------
    CombineError
        No finite value.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        raise CombineError("cannot take the mode of a region without finite values")
    centre = float(np.median(v))
    sigma = 1.482602218505602 * float(np.median(np.abs(v - centre)))
    if sigma == 0.0:
        return centre
    integer = bool(np.all(v == np.round(v)))
    nbins = int(min(512, max(8, 2 * np.sqrt(v.size))))
    lo, hi = centre - 3 * sigma, centre + 3 * sigma
    if integer:
        lo, hi = np.floor(lo) - 0.5, np.ceil(hi) + 0.5
        nbins = int(min(nbins, hi - lo))
    counts, edges = np.histogram(v, bins=nbins, range=(lo, hi))
    k = int(np.argmax(counts))
    width = edges[1] - edges[0]
    peak = 0.5 * (edges[k] + edges[k + 1])
    if integer and width <= 1.0 + 1e-9:
        return float(np.round(peak))
    if 0 < k < nbins - 1:
        a, b, c = (float(x) for x in counts[k - 1:k + 2])
        denom = a - 2 * b + c
        if denom != 0:
            peak += 0.5 * width * (a - c) / denom
    return float(peak)


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
    ys, xs = resolve_region(region, data.shape)  # type: ignore[arg-type]
    values = np.asarray(data[ys, xs], dtype=np.float64)
    if stat == "median":
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            raise CombineError("cannot take the median of a region without finite values")
        return float(np.median(finite))
    if stat == "mode":
        return mode(values)
    raise CombineError(f"unknown scale statistic {stat!r}: use 'median' or 'mode'")
