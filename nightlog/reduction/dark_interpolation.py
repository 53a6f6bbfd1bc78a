"""The dark of an exposure between two master darks, for cameras whose dark is not linear.

A CMOS sensor's amplifier glow (the corner lit by the readout electronics) grows
faster than linearly with exposure, so a dark rate scaled to a longer exposure
leaves the excess in the corner. With master darks at exposures ``t1 < t < t2``
the dark at ``t`` is, pixel by pixel, the straight line between them::

    D(t) = (1 - w) D1 + w D2,   w = (t - t1) / (t2 - t1)

exact for a signal linear in ``t`` on ``[t1, t2]`` and, for a smooth glow, far
closer than a rate scaled from one of them. The variance follows:
``(1 - w)**2 s1**2 + w**2 s2**2``. Extrapolating (``t`` outside ``[t1, t2]``) is
refused: a glow's curve beyond the last dark is not known.
"""

from __future__ import annotations

import numpy as np
from astropy import units as u
from astropy.nddata import CCDData, StdDevUncertainty

from nightlog.errors import ReductionError, ShapeMismatchError
from nightlog.reduction._cards import add_history, header_of, set_card
from nightlog.reduction._frame import new_frame
from nightlog.reduction.hot_limit import forget_hot_limit
from nightlog.reduction.mask import MASK_DTYPE

__all__ = ["interpolate_dark"]


def _exposure(dark: CCDData, given: float | None, what: str) -> float:
    if given is not None:
        value = float(given)
    else:
        stated = dark.meta.get("EXPTIME")
        if not isinstance(stated, int | float) or isinstance(stated, bool):
            raise ReductionError(f"the {what} dark states no EXPTIME: give its exposure")
        value = float(stated)
    if not (np.isfinite(value) and value >= 0):
        raise ReductionError(f"the {what} dark's exposure must be >= 0 s, not {value!r}")
    return value


def _sigma(dark: CCDData) -> np.ndarray | None:
    if dark.uncertainty is None:
        return None
    return np.asarray(dark.uncertainty.represent_as(StdDevUncertainty).array, dtype=np.float64)


def interpolate_dark(short: CCDData, long: CCDData, *, exposure: float,
                     short_exposure: float | None = None,
                     long_exposure: float | None = None) -> CCDData:
    """The master dark of ``exposure`` seconds, interpolated between two master darks.

    Parameters
    ----------
    short, long : CCDData
        Bias-subtracted master darks of fixed exposures (not rates), same shape
        and unit; never modified.
    exposure : float
        The frame's exposure (dark time), seconds, within the two darks'.
    short_exposure, long_exposure : float, optional
        Their exposures, seconds; default their ``EXPTIME``.

    Returns
    -------
    CCDData
        float32 ``(1 - w) short + w long`` with ``w = (t - t1)/(t2 - t1)``;
        standard deviation ``sqrt((1 - w)² s1² + w² s2²)``; masks and bit planes
        OR-ed; ``EXPTIME = exposure``, ``DARKINTP`` and HISTORY in the header.

    Raises
    ------
    ShapeMismatchError
        The darks differ in shape.
    ReductionError
        A dark rate, units that differ, exposures not increasing, or
        ``exposure`` outside them (never extrapolated).
    """
    if short.shape != long.shape:
        raise ShapeMismatchError(f"interpolate_dark: darks of shapes {short.shape} and "
                                 f"{long.shape}")
    for dark in (short, long):
        unit = u.Unit(dark.unit)
        if unit.is_equivalent(u.adu / u.s) or unit.is_equivalent(u.electron / u.s):
            raise ReductionError("interpolate_dark takes darks of fixed exposure, not rates")
    if u.Unit(short.unit) != u.Unit(long.unit):
        raise ReductionError(f"interpolate_dark: units {short.unit} and {long.unit} differ")
    t1 = _exposure(short, short_exposure, "short")
    t2 = _exposure(long, long_exposure, "long")
    t = float(exposure)
    if not t2 > t1:
        raise ReductionError(f"interpolate_dark: the long dark ({t2:g} s) must be longer "
                             f"than the short one ({t1:g} s)")
    if not t1 <= t <= t2:
        raise ReductionError(f"interpolate_dark: {t:g} s is outside the darks' {t1:g}-{t2:g} s "
                             "(a dark is never extrapolated)")
    w = (t - t1) / (t2 - t1)
    data = ((1.0 - w) * np.asarray(short.data, dtype=np.float64)
            + w * np.asarray(long.data, dtype=np.float64)).astype(np.float32)
    s1, s2 = _sigma(short), _sigma(long)
    sigma = None
    if s1 is not None and s2 is not None:
        sigma = np.sqrt((1.0 - w) ** 2 * s1**2 + w**2 * s2**2).astype(np.float32)
    masks = [np.asarray(d.mask, dtype=bool) for d in (short, long) if d.mask is not None]
    mask = np.logical_or.reduce(masks) if masks else None
    planes = [np.asarray(d.flags).astype(MASK_DTYPE) for d in (short, long)
              if isinstance(d.flags, np.ndarray) and d.flags.dtype.kind in "ui"]
    flags = np.bitwise_or.reduce(planes) if planes else None
    header = header_of(short)
    forget_hot_limit(header)  # new values: the masters' HOT limit does not hold
    set_card(header, "EXPTIME", t, "s; interpolated between two master darks")
    set_card(header, "DARKINTP", f"{t1:g}-{t2:g} s w={w:.4f}",
             "dark interpolated in exposure")
    add_history(header, f"Dark interpolated to {t:g} s between the {t1:g} s and {t2:g} s "
                        f"master darks (weights {1 - w:.4f}, {w:.4f})")
    return new_frame(short, data, header, uncertainty=sigma, mask=mask, flags=flags)
