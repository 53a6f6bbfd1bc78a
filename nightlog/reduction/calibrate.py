"""Bias, dark and flat-field correction with uncertainty and mask propagation.

Each function takes a frame and a master and returns a new frame:

* :func:`subtract_bias` — ``ccd - bias``;
* :func:`subtract_dark` — ``ccd - k × dark``, with ``k`` the science exposure for a
  dark *rate* (ADU/s), the exposure ratio for a fixed-exposure dark, or 1 when the
  camera's darks do not scale;
* :func:`flat_correct` — ``ccd / (flat / norm)``.

Propagation (independent errors): variances add for subtraction (the dark's
scaled by ``k²``), and for division the *relative* errors add in quadrature,
``σ² = σ_c²/f² + c²σ_f²/f⁴``. Boolean masks are OR-ed, and so are the
``uint16`` bit planes (:class:`~nightlog.reduction.mask.MaskBit`) that travel
as ``ccd.flags``. The data come out as float32.

The steps record themselves with the IRAF keywords ``ZEROCOR``, ``DARKCOR`` and
``FLATCOR``, and refuse to be applied twice. :func:`subtract_bias` also refuses
to mix overscan and full-bias subtraction (see :mod:`nightlog.reduction.overscan`).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from astropy import units as u
from astropy.nddata import CCDData

from nightlog.errors import ReductionError, ShapeMismatchError
from nightlog.reduction._cards import add_history, header_of, set_card
from nightlog.reduction._frame import new_frame
from nightlog.reduction._propagation import (
    Float32Array,
    or_flags,
    or_masks,
    std_in_place,
    subtract_scaled,
    variance_rows,
)
from nightlog.reduction._row_blocks import BLOCK_ROWS
from nightlog.reduction.bias_share import bias_share_factor
from nightlog.reduction.mask import MASK_DTYPE, MaskBit

__all__ = ["flat_correct", "subtract_bias", "subtract_dark"]


def _check_pair(ccd: CCDData, master: CCDData, what: str) -> None:
    if not isinstance(ccd, CCDData) or not isinstance(master, CCDData):
        raise ReductionError(f"{what}: frame and master must both be CCDData")
    if ccd.shape != master.shape:
        raise ShapeMismatchError(
            f"{what}: frame of shape {ccd.shape} and master of shape {master.shape} differ"
        )


def _refuse_repeat(ccd: CCDData, key: str, what: str) -> None:
    if key in ccd.meta:
        raise ReductionError(f"{what} was already applied to this frame ({key}={ccd.meta[key]!r})")


def _unit_factor(source: u.UnitBase, target: u.UnitBase, what: str) -> float:
    try:
        return float(u.Unit(source).to(u.Unit(target)))
    except u.UnitConversionError as err:
        raise ReductionError(f"{what}: unit {source} cannot be converted to {target}") from err


def _good_mean(values: Float32Array, mask: npt.NDArray[np.bool_] | None) -> float:
    """Mean (float64 accumulation) of the finite values outside ``mask``; NaN if none."""
    good = np.isfinite(values)
    if mask is not None:
        good &= ~mask
    n = int(np.count_nonzero(good))
    if n == 0:
        return float("nan")
    if n == values.size:
        return float(np.sum(values, dtype=np.float64) / n)
    return float(np.sum(values, where=good, dtype=np.float64) / n)


def subtract_bias(ccd: CCDData, master: CCDData, *, check_overscan: bool = True) -> CCDData:
    """Subtract a master bias.

    Parameters
    ----------
    ccd : CCDData
        Frame in ADU (or any unit convertible from the master's).
    master : CCDData
        Master bias of the same shape. With overscan subtraction in use it must be
        built from overscan-corrected biases and carries only residual structure.
    check_overscan : bool, optional
        Refuse a frame and master that disagree on overscan subtraction (the
        ``OVERSCAN`` keyword); only checked when the master has a header. Default True.

    Returns
    -------
    CCDData
        New float32 frame ``ccd - master``; variance ``σ_c² + σ_b²``; masks OR-ed;
        header ``ZEROCOR`` and HISTORY added.

    Raises
    ------
    ShapeMismatchError
        Different shapes.
    ReductionError
        Incompatible units, a bias already subtracted (``ZEROCOR``), or frame and
        master disagree on overscan subtraction.
    """
    _check_pair(ccd, master, "subtract_bias")
    _refuse_repeat(ccd, "ZEROCOR", "bias subtraction")
    if check_overscan and len(master.meta):
        frame_os, master_os = "OVERSCAN" in ccd.meta, "OVERSCAN" in master.meta
        if frame_os != master_os:
            raise ReductionError(
                "the frame is {}overscan-subtracted but the master bias is {}: subtract the "
                "overscan from every frame (masters included) or from none".format(
                    "" if frame_os else "not ", "" if master_os else "not")
            )
    factor = _unit_factor(master.unit, ccd.unit, "subtract_bias")
    data, var = subtract_scaled(ccd, master, factor)
    header = header_of(ccd)
    set_card(header, "ZEROCOR", "master bias subtracted")
    add_history(header, "Master bias subtracted")
    return new_frame(ccd, data, header, uncertainty=std_in_place(var),
                     mask=or_masks(ccd.mask, master.mask),
                     flags=or_flags(ccd.flags, master.flags))


def _seconds(value: float | u.Quantity, what: str) -> float:
    if isinstance(value, u.Quantity):
        try:
            magnitude = float(value.to_value(u.s))
        except u.UnitConversionError as err:
            raise ReductionError(f"{what} must be a time, not {value.unit}") from err
        value = magnitude
    seconds = float(value)
    if not np.isfinite(seconds) or seconds < 0:
        raise ReductionError(f"{what} must be a finite time >= 0 s, not {value!r}")
    return seconds


def subtract_dark(
    ccd: CCDData,
    dark: CCDData,
    *,
    dark_exposure: float | u.Quantity | None = None,
    data_exposure: float | u.Quantity,
    scale: bool = True,
    rate: bool | None = None,
    shared_bias: tuple[npt.ArrayLike, float] | tuple[npt.ArrayLike, float, float] | None = None,
) -> CCDData:
    """Subtract a master dark, scaled to the frame's exposure.

    Parameters
    ----------
    ccd : CCDData
        Bias-subtracted frame (ADU).
    dark : CCDData
        Bias-subtracted master dark: either a *rate* (unit ``ccd.unit / s``, e.g.
        ADU/s, or ``rate=True``) or a dark of ``dark_exposure`` seconds.
    dark_exposure : float or Quantity, optional
        Exposure of a fixed-exposure dark, seconds (float) or a time Quantity.
        Leave ``None`` for a rate.
    data_exposure : float or Quantity
        Dark time of ``ccd`` (``DARKTIME`` when the camera records it, else
        ``EXPTIME``), seconds or a time Quantity.
    scale : bool, optional
        ``True`` (default): scale the dark by ``data_exposure`` (rate) or by
        ``data_exposure / dark_exposure``. ``False``: subtract it unscaled, for
        cameras whose dark signal does not grow linearly with time (then the dark
        must match the exposure and be in the frame's unit).
    rate : bool, optional
        Whether ``dark`` is a rate; ``None`` (default) decides from its unit.
    shared_bias : (array_like, float) or (array_like, float, float), optional
        ``(σ_b², s)`` or ``(σ_b², s, q)`` when the dark was made with the master
        bias subtracted from ``ccd``: that bias's variance (ADU², already in
        ``ccd``'s), the dark's share ``s`` of its error (``1/t`` s⁻¹ for a rate of
        darks of one exposure ``t``, 1 for a fixed-exposure dark; the mean over
        the pixels for mixed exposures, :mod:`~nightlog.reduction.bias_share`)
        and the part ``q`` of ``s²`` the dark's own uncertainty does not hold
        (default ``s²``; 0 when it holds each pixel's ``s²σ_b²``). The dark then
        carries ``-s`` times the bias's error, and the frame ``(1 - k·s)`` times
        it: its variance holds ``(1 - 2k·s + k²q) σ_b²`` instead of ``σ_b²``
        (with ``q = s²``, 0 for a dark of the frame's own exposure: ``ccd - dark``
        has no bias left in it).

    Returns
    -------
    CCDData
        New float32 frame ``ccd - k·dark``; variance ``σ_c² + k²σ_d²`` (with
        ``shared_bias``, plus ``(k²q - 2k·s) σ_b²``); masks OR-ed; ``DARKCOR``
        and HISTORY in the header.

    Raises
    ------
    ShapeMismatchError
        Different shapes.
    ReductionError
        Dark already subtracted (``DARKCOR``); a rate with ``scale=False``; a
        fixed-exposure dark without ``dark_exposure`` (or with one of 0 s);
        negative or non-finite exposure; units that do not convert.
    """
    _check_pair(ccd, dark, "subtract_dark")
    _refuse_repeat(ccd, "DARKCOR", "dark subtraction")
    data_s = _seconds(data_exposure, "data_exposure")
    per_second = u.Unit(ccd.unit) / u.s
    is_rate = u.Unit(dark.unit).is_equivalent(per_second) if rate is None else rate
    if is_rate:
        if not scale:
            raise ReductionError("a dark rate must be scaled by the exposure (scale=True)")
        if dark_exposure is not None:
            raise ReductionError("dark_exposure makes no sense for a dark rate")
        unit_factor = (_unit_factor(dark.unit, per_second, "subtract_dark")
                       if u.Unit(dark.unit).is_equivalent(per_second)
                       else _unit_factor(dark.unit, ccd.unit, "subtract_dark"))
        factor = data_s * unit_factor
        how = f"rate x {data_s:.6g} s"
    else:
        unit_factor = _unit_factor(dark.unit, ccd.unit, "subtract_dark")
        if not scale:
            factor, how = unit_factor, "unscaled"
        else:
            if dark_exposure is None:
                raise ReductionError(
                    "a fixed-exposure dark needs dark_exposure (or give a dark rate)"
                )
            dark_s = _seconds(dark_exposure, "dark_exposure")
            if dark_s == 0:
                raise ReductionError("dark_exposure is 0 s: a dark of no exposure cannot scale")
            factor = unit_factor * data_s / dark_s
            how = f"x {data_s:.6g}/{dark_s:.6g} s"
    data, var = subtract_scaled(ccd, dark, factor)
    header = header_of(ccd)
    set_card(header, "DARKCOR", f"master dark subtracted, {how}")
    add_history(header, f"Master dark subtracted ({how}, factor {factor:.6g})")
    if shared_bias is not None and var is not None:
        bias_var, share = shared_bias[0], float(shared_bias[1])
        square = float(shared_bias[2]) if len(shared_bias) > 2 else None
        left = bias_share_factor(factor, share, square)
        var = np.maximum(var + np.float32(left - 1.0) * np.asarray(bias_var, np.float32),
                         np.float32(0.0))
        add_history(header, "The dark shares the master bias: its variance x "
                            f"{left:.3g}")
    return new_frame(ccd, data, header, uncertainty=std_in_place(var),
                     mask=or_masks(ccd.mask, dark.mask),
                     flags=or_flags(ccd.flags, dark.flags))


def _divide_by_flat(ccd: CCDData, flat: CCDData, values: Float32Array,
                    flat_mask: npt.NDArray[np.bool_] | None, norm: float
                    ) -> tuple[Float32Array, Float32Array | None, npt.NDArray[np.bool_]]:
    """``ccd / (values / norm)`` and its variance ``σ_c²/f² + c²σ_f²/(norm²f²)``, new
    float32 arrays, and where the normalised flat is unusable (not finite or ≤ 0: the
    divisor is 1 there, and the flat's masked pixels are divided by 1).

    A block of rows at a time (:data:`~nightlog.reduction._propagation.BLOCK_ROWS`),
    each pixel with the float32 operations of the whole-frame form, in its order.
    """
    numerator = np.asarray(ccd.data)
    data = np.empty(numerator.shape, dtype=np.float32)
    unusable = np.empty(numerator.shape, dtype=np.bool_)
    own, flat_var = variance_rows(ccd), variance_rows(flat)
    var = (None if own is None and flat_var is None
           else np.empty(numerator.shape, dtype=np.float32))
    norm32, inverse_norm2 = np.float32(norm), np.float32(1.0 / (norm * norm))
    for r0 in range(0, numerator.shape[0], BLOCK_ROWS):
        rows = slice(r0, r0 + BLOCK_ROWS)
        # The normalised flat, the divisor.
        safe = np.divide(values[rows], norm32, dtype=np.float32)
        if flat_mask is not None:
            safe[flat_mask[rows]] = 1.0
        bad = unusable[rows]
        np.isfinite(safe, out=bad)
        np.logical_not(bad, out=bad)
        bad |= safe <= 0
        safe[bad] = 1.0
        quotient = np.divide(numerator[rows], safe, out=data[rows], dtype=np.float32)
        if var is None:
            continue
        np.square(safe, out=safe)  # from here on, the flat squared
        v = var[rows]
        if own is not None:
            own(rows, out=v)
            v /= safe
        if flat_var is not None:
            term = np.square(quotient)
            term *= flat_var(rows)
            if inverse_norm2 != 1:  # a flat normalised to 1 already: x·1 is x
                term *= inverse_norm2
            term /= safe
            if own is None:
                v[...] = term
            else:
                v += term
    return data, var, unusable


def flat_correct(
    ccd: CCDData,
    flat: CCDData,
    *,
    min_value: float | None = None,
    norm_value: float | None = None,
) -> CCDData:
    """Divide by a flat field normalised to ``norm_value`` (default its mean).

    Parameters
    ----------
    ccd : CCDData
        Bias- and dark-corrected frame.
    flat : CCDData
        Master flat of the same shape (any normalisation).
    min_value : float, optional
        Flat values below this are raised to it before normalising (the flat's
        uncertainty is kept), as in ccdproc, to avoid dividing by tiny numbers.
    norm_value : float, optional
        Normalise the flat by this value (in the flat's units) instead of its mean
        — useful to put several flats on one scale. Must be > 0.

    Returns
    -------
    CCDData
        New float32 frame ``ccd / (flat / norm)`` in the unit of ``ccd``; variance
        ``σ_c²/f² + c²σ_f²/f⁴`` with ``f`` the normalised flat; masks OR-ed.
        Pixels whose normalised flat is ≤ 0 or not finite become NaN and are
        masked (and get :attr:`~nightlog.reduction.mask.MaskBit.DEAD` in ``flags``).
        Masked flat pixels are divided by 1, as in ccdproc. ``FLATCOR`` and
        HISTORY are recorded.

    Raises
    ------
    ShapeMismatchError
        Different shapes.
    ReductionError
        Flat already applied (``FLATCOR``); ``norm_value <= 0``; a mean that is not
        positive.

    Notes
    -----
    The default normalisation is the mean of the finite, unmasked flat values
    (after ``min_value``); ccdproc takes the mean of all values. They agree when
    nothing is masked or non-finite.
    """
    _check_pair(ccd, flat, "flat_correct")
    _refuse_repeat(ccd, "FLATCOR", "flat-field correction")
    values = np.asarray(flat.data, dtype=np.float32)
    if min_value is not None:
        # np.maximum keeps NaN, as the comparison it replaces did.
        values = np.maximum(values, np.float32(min_value))
    flat_mask = None if flat.mask is None else np.asarray(flat.mask, dtype=bool)
    if norm_value is not None:
        if not norm_value > 0:
            raise ReductionError(f"norm_value must be greater than zero, not {norm_value!r}")
        norm = float(norm_value)
    else:
        norm = _good_mean(values, flat_mask)
        if not norm > 0:
            raise ReductionError(f"the flat's mean ({norm}) is not positive")
    data, var, unusable = _divide_by_flat(ccd, flat, values, flat_mask, norm)
    any_unusable = bool(unusable.any())
    if any_unusable:
        if var is not None:
            var[unusable] = np.nan
        data[unusable] = np.nan
    mask = or_masks(ccd.mask, flat.mask)
    flags = or_flags(ccd.flags, flat.flags)
    if any_unusable:
        mask = unusable if mask is None else mask | unusable
        if flags is not None:
            flags[unusable] |= MASK_DTYPE(MaskBit.DEAD)
    header = header_of(ccd)
    set_card(header, "FLATCOR", f"divided by flat normalised by {norm:.6g}")
    add_history(header, f"Flat-field corrected (norm {norm:.6g}, min_value {min_value})")
    return new_frame(ccd, data, header, uncertainty=std_in_place(var), mask=mask, flags=flags)
