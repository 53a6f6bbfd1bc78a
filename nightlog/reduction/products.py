"""Reduced products as FITS: what ``CCDData.read`` opens, with the bit mask kept.

A product is an HDU list:

``PRIMARY``
    The reduced data as float32, with the raw header plus what each step
    recorded (short keywords and HISTORY), ``BUNIT`` and the WCS if any.
``UNCERT``
    The standard deviation (float32), ``UTYPE = 'StdDevUncertainty'`` so that
    ``CCDData.read`` restores a :class:`~astropy.nddata.StdDevUncertainty`.
``MASK``
    ``CCDData.read`` turns this extension into a boolean mask with
    ``astype(bool)``, so a ``uint16`` bit plane stored here reads back as
    "any bit set" — exactly the boolean mask — while the bits stay in the file
    for :func:`bitmask_of`. One extension serves both; ``MASKTYPE`` says whether
    it holds ``BITPLANE`` values (:class:`~nightlog.reduction.mask.MaskBit`) or a
    plain ``BOOLEAN`` 0/1 mask, and ``MB<bit>`` keywords name the bits.

:func:`to_hdulist` is pure: it builds the HDU list in memory and decides no path;
writing the file is the archive store's business. :func:`read_product` and
:func:`bitmask_of` read a product back.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
from astropy import units as u
from astropy.io import fits
from astropy.nddata import CCDData, StdDevUncertainty
from astropy.wcs import FITSFixedWarning

from nightlog.errors import ReductionError, ShapeMismatchError
from nightlog.reduction import _cards
from nightlog.reduction._frame import new_frame
from nightlog.reduction.mask import MASK_DTYPE, MaskBit

__all__ = ["add_history", "bitmask_of", "read_product", "set_keywords", "to_hdulist"]

# Keywords describing the data layout; astropy writes its own for the new data.
_STRUCTURAL = ("SIMPLE", "XTENSION", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "NAXIS3",
               "EXTEND", "PCOUNT", "GCOUNT", "BZERO", "BSCALE", "BLANK", "CHECKSUM",
               "DATASUM", "EXTNAME", "EXTVER")


def _mask_plane(
    ccd: CCDData, mask_bits: npt.ArrayLike | None
) -> tuple[npt.NDArray[Any], str] | None:
    """The array to store as MASK and its type, or None for no mask."""
    if mask_bits is None and isinstance(ccd.flags, np.ndarray) and ccd.flags.dtype.kind in "ui":
        mask_bits = ccd.flags
    if mask_bits is not None:
        bits = np.asarray(mask_bits)
        if bits.shape != ccd.shape:
            raise ShapeMismatchError(f"mask bits of shape {bits.shape} for data {ccd.shape}")
        if bits.dtype.kind not in "ui" or (bits.size and (bits.min() < 0 or bits.max() > 65535)):
            raise ReductionError("mask bits must be an integer plane with values in 0..65535")
        plane = bits.astype(MASK_DTYPE)
        if ccd.mask is not None:
            # Keep every masked pixel masked in the file, even without a recorded reason.
            plane[np.asarray(ccd.mask, dtype=bool) & (plane == 0)] = MaskBit.UNSPECIFIED
        return plane, "BITPLANE"
    if ccd.mask is None:
        return None
    return np.asarray(ccd.mask, dtype=bool).astype(np.uint8), "BOOLEAN"


def _primary_header(ccd: CCDData) -> fits.Header:
    header = _cards.header_of(ccd)
    for key in _STRUCTURAL:
        header.remove(key, ignore_missing=True, remove_all=True)
    unit = u.Unit(ccd.unit)
    if unit != u.dimensionless_unscaled:
        _cards.set_card(header, "BUNIT", unit.to_string())
    else:
        header.remove("BUNIT", ignore_missing=True)
    if ccd.wcs is not None:
        header.extend(ccd.wcs.to_header(relax=True), useblanks=False, update=True)
    return header


def to_hdulist(ccd: CCDData, *, mask_bits: npt.ArrayLike | None = None) -> fits.HDUList:
    """Build the FITS HDU list of a reduced frame (nothing is written).

    Parameters
    ----------
    ccd : CCDData
        The reduced frame; its uncertainty (any type that converts to a standard
        deviation) and mask are stored when present.
    mask_bits : array_like of int, optional
        ``uint16`` bit plane (:class:`~nightlog.reduction.mask.MaskBit`) to store as
        the mask; default ``ccd.flags`` when that is an integer plane. Pixels set in
        ``ccd.mask`` but with no bit get :attr:`MaskBit.UNSPECIFIED`, so the mask
        read back is the union of both. With no bit plane, ``ccd.mask`` is stored
        as 0/1.

    Returns
    -------
    astropy.io.fits.HDUList
        ``PRIMARY`` (float32 data), then ``UNCERT`` and ``MASK`` when present.

    Raises
    ------
    ShapeMismatchError
        ``mask_bits`` or the mask does not match the data.
    ReductionError
        ``mask_bits`` is not an integer plane within ``uint16``, or the uncertainty
        cannot become a standard deviation.
    """
    header = _primary_header(ccd)
    hdus: list[fits.PrimaryHDU | fits.ImageHDU] = [
        fits.PrimaryHDU(np.asarray(ccd.data, dtype=np.float32), header)]
    if ccd.uncertainty is not None:
        try:
            std = ccd.uncertainty.represent_as(StdDevUncertainty).array
        except TypeError as err:
            raise ReductionError(
                f"cannot store a {type(ccd.uncertainty).__name__} as a standard deviation"
            ) from err
        if np.shape(std) != ccd.shape:
            raise ShapeMismatchError(f"uncertainty of shape {np.shape(std)} for {ccd.shape}")
        unc_header = fits.Header()
        unc_header["UTYPE"] = ("StdDevUncertainty", "uncertainty type for CCDData.read")
        hdus.append(fits.ImageHDU(np.asarray(std, dtype=np.float32), unc_header, name="UNCERT"))
    plane = _mask_plane(ccd, mask_bits)
    if plane is not None:
        array, kind = plane
        mask_header = fits.Header()
        mask_header["MASKTYPE"] = (kind, "BITPLANE: MaskBit values; BOOLEAN: 0/1")
        if kind == "BITPLANE":
            for bit in MaskBit:
                mask_header[f"MB{int(bit)}"] = (bit.name, "mask bit value meaning")
        hdus.append(fits.ImageHDU(array, mask_header, name="MASK"))
    return fits.HDUList(hdus)


def read_product(path: str | os.PathLike[str]) -> CCDData:
    """Open a product written from :func:`to_hdulist` as CCDData.

    Data, uncertainty and boolean mask come back as ``CCDData.read`` gives them,
    and the bit plane (if any) as ``flags``; a product without ``BUNIT`` is read
    as dimensionless. astropy's notes about fixing non-standard date keywords
    while looking for a WCS (``FITSFixedWarning``) are silenced: they concern the
    raw header, not the product.

    Raises
    ------
    ReductionError
        The file cannot be opened or read as CCDData.
    """
    try:
        with fits.open(path) as hdus:
            has_unit = bool(hdus[0].header.get("BUNIT"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            ccd = CCDData.read(path, unit=None if has_unit else u.dimensionless_unscaled)
    except (OSError, ValueError) as err:
        raise ReductionError(f"cannot read product {os.fspath(path)!r}: {err}") from err
    bits = bitmask_of(path)
    if bits is not None:
        ccd.flags = bits
    return ccd


def bitmask_of(path: str | os.PathLike[str]) -> npt.NDArray[np.uint16] | None:
    """The ``uint16`` bit plane of a product, or None when it has no bit plane.

    Raises
    ------
    ReductionError
        The file cannot be opened.
    """
    try:
        with fits.open(path) as hdus:
            if "MASK" not in hdus or hdus["MASK"].header.get("MASKTYPE") != "BITPLANE":
                return None
            return np.array(hdus["MASK"].data, dtype=MASK_DTYPE)
    except OSError as err:
        raise ReductionError(f"cannot read product {os.fspath(path)!r}: {err}") from err


def add_history(ccd: CCDData, *lines: str) -> CCDData:
    """A copy of ``ccd`` with ``lines`` appended as HISTORY (ASCII-escaped, split, never lost)."""
    header = _cards.header_of(ccd)
    for line in lines:
        _cards.add_history(header, line)
    return new_frame(ccd, np.array(ccd.data, copy=True), header)


def set_keywords(ccd: CCDData, keywords: Mapping[str, Any]) -> CCDData:
    """A copy of ``ccd`` with short FITS keywords set (provenance such as ``NLBIAS``).

    Parameters
    ----------
    ccd : CCDData
        Frame to annotate.
    keywords : mapping
        ``{KEY: value}`` or ``{KEY: (value, comment)}``. Keys must be legal
        standard FITS keywords (≤ 8 characters of ``A-Z 0-9 _ -``); string values
        are made printable ASCII (non-ASCII escaped) and cut to fit one card, and
        comments are shortened so astropy never warns.

    Raises
    ------
    ReductionError
        A key is not a legal standard keyword (long names would need HIERARCH).
    """
    header = _cards.header_of(ccd)
    for key, value in keywords.items():
        if isinstance(value, tuple):
            _cards.set_card(header, key, value[0], str(value[1]))
        else:
            _cards.set_card(header, key, value)
    return new_frame(ccd, np.array(ccd.data, copy=True), header)
