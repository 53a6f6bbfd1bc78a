"""Step 6 of :func:`~nightlog.reduction.science.reduce_science`: the master dark a
science frame is corrected with, and its subtraction.

The master dark is used as it is, or first scaled to the frame's set temperature
(``params.dark_temperature``, :mod:`nightlog.reduction.dark_temperature`), or, with a
second master dark, interpolated to the frame's exposure
(:mod:`nightlog.reduction.dark_interpolation`); then it is subtracted scaled by the
exposure (:func:`~nightlog.reduction.calibrate.subtract_dark`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from astropy import units as u
from astropy.nddata import CCDData

from nightlog.reduction._cards import add_history, set_card
from nightlog.reduction.calibrate import subtract_dark
from nightlog.reduction.dark_interpolation import interpolate_dark
from nightlog.reduction.dark_temperature import scale_dark_temperature
from nightlog.reduction.science_parameters import ScienceParameters
from nightlog.reduction.step_summary import summary_median

__all__ = ["dark_parameters", "master_dark_for", "subtract_master_dark"]


def master_dark_for(dark: CCDData, dark2: CCDData | None, params: ScienceParameters,
                    exposure: float) -> tuple[CCDData, str]:
    """The dark to subtract from a frame of ``exposure`` seconds, and how it was made.

    Parameters
    ----------
    dark : CCDData
        The master dark (the shorter one when ``dark2`` is given); never modified.
    dark2 : CCDData or None
        The longer master dark of an interpolation.
    params : ScienceParameters
        ``darks_scale`` and ``dark_temperature`` are read.
    exposure : float
        Dark time of the frame, seconds.

    Returns
    -------
    (CCDData, str)
        The master dark as it will be subtracted, and the sentence of how.
    """
    how = "linear" if params.darks_scale else "exact exposure"
    master = dark
    scaled = params.dark_temperature
    if scaled is not None:
        master = scale_dark_temperature(dark, factor=scaled.factor, factor_err=scaled.factor_err,
                                        from_c=scaled.from_c, to_c=scaled.to_c, note=scaled.note)
        how += (f"; scaled x{scaled.factor:.4g} from {scaled.from_c:g} C to "
                f"{scaled.to_c:g} C ({scaled.note})")
    if dark2 is not None:
        master = interpolate_dark(dark, dark2, exposure=exposure)
        how = f"interpolated: {master.meta['DARKINTP']}"
    return master, how


def dark_parameters(params: ScienceParameters, exposure: float, interpolated: bool
                    ) -> dict[str, Any]:
    """The dark step's parameters, as its provenance records them."""
    scaled = params.dark_temperature
    return {"exptime": exposure, "dark_exposure": params.dark_exposure,
            "rate": params.dark_is_rate, "scale": params.darks_scale,
            "interpolated": interpolated,
            "temperature_factor": None if scaled is None else scaled.factor}


def subtract_master_dark(ccd: CCDData, master: CCDData, *, params: ScienceParameters,
                         exposure: float, interpolated: bool, how: str,
                         shared_bias: tuple[Any, float] | tuple[Any, float, float] | None = None,
                         median: float | None = None) -> tuple[CCDData, Mapping[str, Any]]:
    """``ccd`` minus ``master`` (from :func:`master_dark_for`), and the step's summary.

    Parameters
    ----------
    ccd : CCDData
        Bias-subtracted frame with its uncertainty.
    master : CCDData
        The dark to subtract.
    params : ScienceParameters
    exposure : float
        Dark time of the frame, seconds.
    interpolated : bool
        ``master`` was interpolated to the exposure (subtracted unscaled).
    how : str
        The sentence of :func:`master_dark_for`.
    shared_bias : (array_like, float) or (array_like, float, float), optional
        The master bias's variance and the master dark's share of it (the dark was
        made with the same bias; :func:`~nightlog.reduction.calibrate.subtract_dark`).
    median : float or None
        The summary median of ``master`` (its unit) when the caller found it
        already (once for a batch of frames); taken here when None.

    Returns
    -------
    (CCDData, mapping)
        The new frame (``DARKCOR``, ``DARKINTP`` or ``DARKTSCL`` and HISTORY) and
        ``median`` (of the master) and ``how``.
    """
    if interpolated:
        out = subtract_dark(ccd, master, data_exposure=exposure, scale=False)
        set_card(out.meta, "DARKINTP", str(master.meta["DARKINTP"]),
                 "dark interpolated between two master darks")
        add_history(out.meta, f"Dark {how}")
    else:
        out = subtract_dark(ccd, master, dark_exposure=dark_exposure(ccd, master, params),
                            data_exposure=exposure, scale=params.darks_scale,
                            rate=params.dark_is_rate, shared_bias=shared_bias)
    scaled = params.dark_temperature
    if scaled is not None:
        set_card(out.meta, "DARKTSCL", float(f"{scaled.factor:.6g}"),
                 f"dark scaled from {scaled.from_c:g} to {scaled.to_c:g} C")
        add_history(out.meta, f"Dark {how}")
    return out, {"median": summary_median(master.data) if median is None else median,
                 "how": how}


def dark_exposure(ccd: CCDData, dark: CCDData, params: ScienceParameters) -> float | None:
    """The master dark's exposure: the parameters', else its ``EXPTIME`` unless a rate.

    A master dark file holds the counts of a 1 s exposure (``EXPTIME = 1``), the
    form ccdproc takes; a dark rate (ADU/s) in memory needs no exposure.
    """
    if params.dark_exposure is not None or params.dark_is_rate:
        return params.dark_exposure
    if u.Unit(dark.unit).is_equivalent(u.Unit(ccd.unit) / u.s):
        return None
    stated = dark.meta.get("EXPTIME")
    if isinstance(stated, int | float) and not isinstance(stated, bool):
        return float(stated)
    return None
