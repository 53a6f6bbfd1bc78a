"""A master dark of one set temperature scaled to another.

Dark current roughly doubles every ``T_d`` kelvin (``docs/reduction.md``), so a
bias-subtracted master dark ``D`` taken at ``T₁`` stands for one at ``T₂`` after
multiplying by ``f = 2^((T₂ − T₁) / T_d)``. The factor's uncertainty ``σ_f`` (from
that of ``T_d``) adds to the variance::

    σ² = f² σ_D² + D² σ_f²

The catalogue decides the factor
(:mod:`nightlog.calibration.dark_temperature`); this step only applies it. The
dark must be all dark current: bias-subtracted, of a camera whose darks scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from astropy.nddata import CCDData, StdDevUncertainty

from nightlog.errors import ReductionError
from nightlog.reduction._cards import add_history, header_of, set_card
from nightlog.reduction._frame import new_frame
from nightlog.reduction.hot_limit import forget_hot_limit

__all__ = ["DarkTemperature", "scale_dark_temperature"]


@dataclass(frozen=True)
class DarkTemperature:
    """How the master dark is scaled to the frame's set temperature (the
    :class:`~nightlog.reduction.science_parameters.ScienceParameters` of a frame whose
    dark was taken at another): the arguments of :func:`scale_dark_temperature`.

    Attributes
    ----------
    factor : float
        Dark current at ``to_c`` over that at ``from_c``.
    factor_err : float or None
        Its one-sigma uncertainty.
    from_c, to_c : float
        Set temperatures of the master dark and of the frame, °C.
    note : str
        How the factor was found (ASCII, for HISTORY).
    """

    factor: float
    factor_err: float | None
    from_c: float
    to_c: float
    note: str = ""


def scale_dark_temperature(dark: CCDData, *, factor: float, factor_err: float | None = None,
                           from_c: float, to_c: float, note: str = "") -> CCDData:
    """The master dark ``dark`` (taken at ``from_c``) scaled to ``to_c``.

    Parameters
    ----------
    dark : CCDData
        Bias-subtracted master dark (a rate or a fixed exposure); never modified.
    factor : float
        Dark current at ``to_c`` over that at ``from_c`` (> 0, dimensionless).
    factor_err : float, optional
        One-sigma uncertainty of ``factor``; ``None`` adds nothing to the variance.
    from_c, to_c : float
        Set temperatures of the dark and of the frame, °C.
    note : str
        How the factor was found (written to HISTORY).

    Returns
    -------
    CCDData
        float32 ``factor × dark``; standard deviation
        ``sqrt(factor² σ² + dark² factor_err²)``; masks and bit plane copied;
        ``DARKTSCL`` and HISTORY in the header.

    Raises
    ------
    ReductionError
        A factor that is not a positive finite number, or a negative or non-finite
        ``factor_err``.
    """
    if not (math.isfinite(factor) and factor > 0):
        raise ReductionError(f"a dark's temperature factor must be > 0, not {factor!r}")
    if factor_err is not None and not (math.isfinite(factor_err) and factor_err >= 0):
        raise ReductionError(f"a temperature factor's error must be >= 0, not {factor_err!r}")
    values = np.asarray(dark.data, dtype=np.float64)
    data = (values * factor).astype(np.float32)
    sigma = None
    if dark.uncertainty is not None or factor_err:
        var = np.zeros_like(values)
        if dark.uncertainty is not None:
            s = np.asarray(dark.uncertainty.represent_as(StdDevUncertainty).array,
                           dtype=np.float64)
            var += (factor * s) ** 2
        if factor_err:
            var += (values * factor_err) ** 2
        sigma = np.sqrt(var).astype(np.float32)
    header = header_of(dark)
    forget_hot_limit(header)  # new values: the master's HOT limit does not hold
    set_card(header, "DARKTSCL", float(f"{factor:.6g}"),
             f"dark scaled from {from_c:g} to {to_c:g} C")
    err = "" if factor_err is None else f" +- {factor_err:.2g}"
    add_history(header, f"Dark scaled x{factor:.4g}{err} from set temperature {from_c:g} C "
                        f"to {to_c:g} C" + (f" ({note})" if note else ""))
    return new_frame(dark, data, header, uncertainty=sigma)
