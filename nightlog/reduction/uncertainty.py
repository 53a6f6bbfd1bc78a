"""Per-pixel uncertainty from the CCD noise model.

For a frame whose bias level has been removed (overscan or master bias), the
variance of a pixel in ADU² is

    σ² = max(S, 0) / g + (R / g)²

with ``S`` the signal in ADU, ``g`` the gain in e⁻/ADU and ``R`` the read noise
in e⁻: Poisson noise of the ``S·g`` collected electrons plus read noise, both
converted back to ADU. Negative values (noise around a zero level) carry no
Poisson term; they are clipped to 0 for it, not turned into NaN. The signal
includes sky, source **and dark current**, so build the uncertainty after
bias/overscan subtraction and *before* subtracting the dark; the masters' own
uncertainties are then added by the calibration steps (variances add).

Two terms for CMOS cameras: a **read-noise map** (``R`` per pixel, from the
master bias, so a random-telegraph pixel carries its own larger noise) replaces
the single figure, and a converter writing fewer than 16 bits shifted up to 16
adds its **quantisation** variance ``q**2 / 12`` ADU² (``q`` the step between
stored values, 16 ADU for 12 bits): the rounding of a uniform error of width
``q``, ``q**2 g**2 / 12`` in e⁻².
"""

from __future__ import annotations

from typing import Any

import numpy as np
from astropy import units as u
from astropy.nddata import CCDData, StdDevUncertainty, VarianceUncertainty

from nightlog.errors import ReductionError
from nightlog.reduction._cards import add_history, header_of
from nightlog.reduction._frame import new_frame
from nightlog.reduction._propagation import variance_rows
from nightlog.reduction._row_blocks import BLOCK_ROWS

__all__ = ["create_uncertainty", "noise_variance"]

_ELECTRON_UNITS = (u.electron, u.ph)


def _value(quantity: float | u.Quantity, unit: u.UnitBase, what: str) -> float:
    if isinstance(quantity, u.Quantity):
        try:
            magnitude = float(quantity.to_value(unit))
        except u.UnitConversionError as err:
            raise ReductionError(f"{what} must be in {unit}, not {quantity.unit}") from err
        quantity = magnitude
    value = float(quantity)
    if not np.isfinite(value) or value < 0:
        raise ReductionError(f"{what} must be finite and >= 0, not {quantity!r}")
    return value


def noise_variance(
    data: np.ndarray, *, gain: float, read_noise: float,
    read_noise_map: np.ndarray | None = None, quantisation_step: float | None = None,
) -> np.ndarray:
    """Variance (ADU²) of bias-free ``data`` (ADU) from Poisson and read noise.

    Parameters
    ----------
    data : numpy.ndarray
        Signal above bias in ADU.
    gain : float
        e⁻/ADU, > 0.
    read_noise : float
        e⁻ (per pixel, per read), >= 0.
    read_noise_map : numpy.ndarray, optional
        e⁻ per pixel (``data``'s shape); replaces ``read_noise`` where finite.
    quantisation_step : float, optional
        ADU between converter values; adds ``step²/12``.

    Returns
    -------
    numpy.ndarray of float32
        ``max(data, 0)/gain + (read_noise/gain)² + step²/12``; NaN where ``data``
        is NaN.

    Raises
    ------
    ReductionError
        ``gain`` not > 0 or ``read_noise`` negative or not finite.
    """
    if not (np.isfinite(gain) and gain > 0):
        raise ReductionError(f"gain must be a positive number of e-/ADU, not {gain!r}")
    if not (np.isfinite(read_noise) and read_noise >= 0):
        raise ReductionError(f"read noise must be >= 0 e-, not {read_noise!r}")
    signal = np.asarray(data, dtype=np.float32)
    read = np.float32((read_noise / gain) ** 2)
    rn = None
    if read_noise_map is not None:
        rn = np.asarray(read_noise_map, dtype=np.float32)
        if rn.shape != signal.shape:
            raise ReductionError(f"read-noise map of shape {rn.shape} for data {signal.shape}")
    quantum = np.float32(0.0)
    if quantisation_step is not None:
        if not (np.isfinite(quantisation_step) and quantisation_step >= 0):
            raise ReductionError(f"quantisation step must be >= 0 ADU, not "
                                 f"{quantisation_step!r}")
        quantum = np.float32(quantisation_step**2 / 12.0)
    # One new array, the rest in place on it. np.maximum keeps NaN, so unknown
    # pixels keep an unknown variance.
    variance = np.maximum(signal, np.float32(0))
    variance /= np.float32(gain)
    if rn is None:
        variance += read
    else:
        rn_var = np.square(rn / np.float32(gain))
        rn_var[~np.isfinite(rn)] = read
        variance += rn_var
    if quantum:
        variance += quantum
    return variance


def create_uncertainty(
    ccd: CCDData,
    *,
    gain: float | u.Quantity,
    read_noise: float | u.Quantity,
    add_to_existing: bool = False,
    read_noise_map: np.ndarray | None = None,
    quantisation_step: float | None = None,
) -> CCDData:
    """Attach a standard-deviation uncertainty from the CCD noise model.

    Parameters
    ----------
    ccd : CCDData
        Bias-free frame in ADU (or in electrons, then ``gain`` is taken as 1).
    gain : float or Quantity
        Gain in e⁻/ADU (a Quantity is converted to ``electron / adu``).
    read_noise : float or Quantity
        Read noise in e⁻.
    add_to_existing : bool, optional
        ``False`` (default): replace any uncertainty ``ccd`` carries, like
        ``ccdproc.create_deviation``. ``True``: add the new variance to the one it
        carries (e.g. a master bias's, subtracted before) — never apply twice.
    read_noise_map : numpy.ndarray, optional
        Read noise of each pixel in e⁻ (the master bias's map times the gain);
        replaces ``read_noise`` where finite.
    quantisation_step : float, optional
        ADU between the converter's values (``2**(16 - bits)``); adds ``step²/12``.

    Returns
    -------
    CCDData
        New frame, data unchanged (float32), with a float32
        :class:`~astropy.nddata.StdDevUncertainty` in the frame's unit.

    Raises
    ------
    ReductionError
        Gain not positive, read noise negative, or units that do not fit.
    """
    data_unit = u.Unit(ccd.unit)
    in_electrons = data_unit in _ELECTRON_UNITS
    gain_value = 1.0 if in_electrons else _value(gain, u.electron / u.adu, "gain")
    rn = _value(read_noise, u.electron, "read noise")
    data = np.asarray(ccd.data)
    carry = add_to_existing and ccd.uncertainty is not None
    if read_noise_map is None and data.ndim == 2 and data.shape[0]:
        # A block of rows at a time, each pixel with the whole-frame operations.
        carried = variance_rows(ccd) if carry else None
        std = np.empty(data.shape, dtype=np.float32)
        for r0 in range(0, data.shape[0], BLOCK_ROWS):
            rows = slice(r0, r0 + BLOCK_ROWS)
            var = noise_variance(data[rows], gain=gain_value, read_noise=rn,
                                 quantisation_step=quantisation_step)
            if carried is not None:
                var += carried(rows)
            np.sqrt(var, out=std[rows])
    else:
        var = noise_variance(data, gain=gain_value, read_noise=rn,
                             read_noise_map=read_noise_map,
                             quantisation_step=quantisation_step)
        if carry:
            var += _carried_variance(ccd.uncertainty)
        std = np.sqrt(var, out=var)
    header = header_of(ccd)
    read = "per-pixel read noise map" if read_noise_map is not None else f"read noise {rn:.4g} e-"
    quantum = (f", quantisation step {quantisation_step:g} ADU" if quantisation_step
               else "")
    add_history(header, f"Uncertainty: Poisson (gain {gain_value:.4g} e-/ADU) and {read}"
                        f"{quantum}{' added to existing' if add_to_existing else ''}")
    return new_frame(ccd, np.asarray(ccd.data, dtype=np.float32), header, uncertainty=std)


def _carried_variance(uncertainty: Any) -> np.ndarray:
    """The variance an uncertainty carries, float32 (read only: may share memory)."""
    if isinstance(uncertainty, StdDevUncertainty):
        return np.square(np.asarray(uncertainty.array), dtype=np.float32)
    if isinstance(uncertainty, VarianceUncertainty):
        return np.asarray(uncertainty.array, dtype=np.float32)
    return np.asarray(uncertainty.represent_as(VarianceUncertainty).array, dtype=np.float32)
