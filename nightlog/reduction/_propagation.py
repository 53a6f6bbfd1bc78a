"""Carrying a frame's uncertainty, mask and bit plane through a calibration step.

Variances add for independent errors; boolean masks are OR-ed, and so are the
``uint16`` bit planes (:class:`~nightlog.reduction.mask.MaskBit`) that travel as
``ccd.flags``. Everything here is float32. Some functions work in place on an array
the caller owns (a new one the step made), said so in each docstring: they are the
steps' bookkeeping, never applied to a caller's input.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
from astropy.nddata import CCDData, StdDevUncertainty, VarianceUncertainty

from nightlog.errors import ReductionError
from nightlog.reduction._row_blocks import BLOCK_ROWS
from nightlog.reduction.mask import MASK_DTYPE

Float32Array = npt.NDArray[np.float32]


#: The rows of a frame's variance: ``rows(slice, out=None)``, float32.
VarianceRows = Callable[..., Float32Array]


def variance_of(ccd: CCDData) -> Float32Array | None:
    """Variance of ``ccd`` in its data units, a new float32 array the caller owns,
    or None when it has no uncertainty."""
    unc = ccd.uncertainty
    if unc is None:
        return None
    if isinstance(unc, StdDevUncertainty):
        return np.square(np.asarray(unc.array), dtype=np.float32)
    if isinstance(unc, VarianceUncertainty):
        return np.array(unc.array, dtype=np.float32, copy=True)
    try:
        var = unc.represent_as(VarianceUncertainty).array
    except TypeError as err:
        raise ReductionError(
            f"cannot propagate a {type(unc).__name__}"
        ) from err
    return np.array(var, dtype=np.float32, copy=True)


def master_variance(master: CCDData) -> Float32Array | None:
    """Variance of a master, float32; may share memory with it (never written to)."""
    unc = master.uncertainty
    if isinstance(unc, VarianceUncertainty):
        return np.asarray(unc.array, dtype=np.float32)
    return variance_of(master)


def add_variance(own: Float32Array | None, other: Float32Array | None,
                 other_scale: float) -> Float32Array | None:
    """``own + other_scale² × other``, in place on ``own`` (an array the caller owns)."""
    if own is None and other is None:
        return None
    scale2 = np.float32(other_scale * other_scale)
    if own is None:
        return np.multiply(other, scale2, dtype=np.float32)
    if other is None:
        return own
    if scale2 == 1:
        own += other
    else:
        own += other * scale2
    return own


def or_masks(a: Any, b: Any) -> npt.NDArray[np.bool_] | None:
    """Logical OR of two boolean masks (either may be None), a new array."""
    if a is None and b is None:
        return None
    if a is None or b is None:
        return np.array(a if b is None else b, dtype=bool, copy=True)
    return np.logical_or(np.asarray(a, dtype=np.bool_), np.asarray(b, dtype=np.bool_))


def or_flags(a: Any, b: Any) -> npt.NDArray[np.uint16] | None:
    """Bitwise OR of two bit planes (``ccd.flags``), a new array; non-integer flags
    are ignored."""
    planes = [np.asarray(f) for f in (a, b)
              if isinstance(f, np.ndarray) and f.dtype.kind in "ui"]
    if not planes:
        return None
    out = planes[0].astype(MASK_DTYPE, copy=True)
    for plane in planes[1:]:
        np.bitwise_or(out, plane, out=out, casting="unsafe")
    return out


def std_in_place(var: Float32Array | None) -> Float32Array | None:
    """Standard deviation, in place on ``var`` (an array the caller owns)."""
    return None if var is None else np.sqrt(var, out=var)


def variance_rows(ccd: CCDData) -> VarianceRows | None:
    """The variance of ``ccd`` a block of rows at a time, as :func:`variance_of` gives
    it (float32, in its data units), or None when it has no uncertainty.

    The function returned takes a row slice and an optional ``out`` array (float32,
    the rows' shape) and returns the rows' variance in ``out``; without ``out``, in an
    array to be read only: a new one (a standard deviation squared), or the rows of
    the frame's own float32 variance themselves, not copied.
    """
    unc = ccd.uncertainty
    if unc is None:
        return None
    if isinstance(unc, StdDevUncertainty):
        std = np.asarray(unc.array)

        def squared(rows: slice, out: Float32Array | None = None) -> Float32Array:
            return np.square(std[rows], dtype=np.float32, out=out)

        return squared
    var = (np.asarray(unc.array) if isinstance(unc, VarianceUncertainty)
           else variance_of(ccd))

    def held(rows: slice, out: Float32Array | None = None) -> Float32Array:
        if out is None:
            return np.asarray(var[rows], dtype=np.float32)
        np.copyto(out, var[rows], casting="unsafe")
        return out

    return held


def subtract_scaled(ccd: CCDData, master: CCDData, factor: float
                    ) -> tuple[Float32Array, Float32Array | None]:
    """``ccd - factor × master`` and its variance ``σ_c² + factor²σ_m²``, as new float32
    arrays (the variance None when neither has an uncertainty).

    Computed a block of :data:`BLOCK_ROWS` rows at a time, each pixel with the float32
    operations of the whole-frame form: ``factor × master`` rounded to float32 first
    (unless ``factor`` is 1), and ``factor²`` as one float32.
    """
    values = np.asarray(ccd.data)
    subtrahend = np.asarray(master.data, dtype=np.float32)
    out = np.empty(values.shape, dtype=np.float32)
    own, other = variance_rows(ccd), variance_rows(master)
    var = None if own is None and other is None else np.empty(values.shape, dtype=np.float32)
    scale = np.float32(factor)
    scale2 = np.float32(factor * factor)
    for r0 in range(0, values.shape[0], BLOCK_ROWS):
        rows = slice(r0, r0 + BLOCK_ROWS)
        part = out[rows]
        if factor != 1:
            np.multiply(subtrahend[rows], scale, out=part, dtype=np.float32)
            np.subtract(values[rows], part, out=part, dtype=np.float32)
        else:
            np.subtract(values[rows], subtrahend[rows], out=part, dtype=np.float32)
        if var is None:
            continue
        v = var[rows]
        if own is None:
            assert other is not None
            np.multiply(other(rows), scale2, out=v, dtype=np.float32)
            continue
        own(rows, out=v)
        if other is not None:
            if scale2 == 1:
                v += other(rows)
            else:
                v += other(rows) * scale2
    return out, var
