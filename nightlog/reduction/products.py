"""Reduced products as FITS: what ``CCDData.read`` opens, with the bit mask kept.

A product is an HDU list:

``PRIMARY``
    The reduced data as float32, with the raw header plus what each step
    recorded (short keywords and HISTORY), ``BUNIT`` (empty for dimensionless
    data, which ``CCDData.read`` then reads as such) and the WCS if any. Raw cards
    that are not FITS-legal are repaired or dropped, each with a HISTORY line
    (:func:`~nightlog.reduction.interchange.legal_header`).
``UNCERT``
    The standard deviation (float32), ``UTYPE = 'StdDevUncertainty'`` so that
    ``CCDData.read`` restores a :class:`~astropy.nddata.StdDevUncertainty`.
``MASK``
    ``CCDData.read`` turns this extension into a boolean mask with
    ``astype(bool)``, so a ``uint16`` bit plane stored here reads back as
    "any bit set" — exactly the boolean mask — while the bits stay in the file
    for the store's reader (:func:`nightlog.store.products.read_product`). One
    extension serves both; ``MASKTYPE`` says whether it holds ``BITPLANE`` values
    (:class:`~nightlog.reduction.mask.MaskBit`) or a plain ``BOOLEAN`` 0/1 mask, and
    ``MB<bit>`` keywords name the bits.
``RDNOISE``
    A master bias of a CMOS camera only: each pixel's read noise (float32, ADU,
    ``BUNIT = 'adu'``), measured from the bias stack's scatter; the pixels far
    above its median carry the NOISY bit in ``MASK``. ``CCDData.read`` ignores it.
``PROVENANCE``
    A binary table, one row per file the product (or master) was made from:
    ``STEP`` (``raw``; ``bias``, ``dark``, ``flat`` for a master used in that role;
    ``input`` for a frame combined into a master), ``ID`` (its catalogue id),
    ``PATH``, ``SHA256``, ``USED`` (false for a frame rejected from a master) and
    ``REASON`` (why it was rejected). It is built from
    :class:`ProvenanceEntry` values the caller passes in, so the file carries its
    own lineage even away from the catalogue; ``CCDData.read`` ignores it.

:func:`to_hdulist` is pure: it builds the HDU list in memory and decides no path;
writing the file and reading it back are the archive store's business
(:mod:`nightlog.store.images`, :mod:`nightlog.store.products`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from astropy import units as u
from astropy.io import fits
from astropy.nddata import CCDData, StdDevUncertainty

from nightlog.errors import ReductionError, ShapeMismatchError
from nightlog.reduction import _cards
from nightlog.reduction._frame import new_frame
from nightlog.reduction.interchange import legal_header
from nightlog.reduction.mask import MASK_DTYPE, MaskBit, bit_cards

__all__ = [
    "PROVENANCE_EXTNAME",
    "READ_NOISE_EXTNAME",
    "ProvenanceEntry",
    "add_history",
    "provenance_table",
    "set_keywords",
    "to_hdulist",
]

PROVENANCE_EXTNAME = "PROVENANCE"
#: EXTNAME of a master bias's per-pixel read-noise map (ADU).
READ_NOISE_EXTNAME = "RDNOISE"


# Keywords describing the data layout; astropy writes its own for the new data.
_STRUCTURAL = ("SIMPLE", "XTENSION", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "NAXIS3",
               "EXTEND", "PCOUNT", "GCOUNT", "BZERO", "BSCALE", "BLANK", "CHECKSUM",
               "DATASUM", "EXTNAME", "EXTVER")


@dataclass(frozen=True, slots=True)
class ProvenanceEntry:
    """One file a product or master was made from: a row of its ``PROVENANCE`` table.

    Attributes
    ----------
    step : str
        What the file was used for: ``raw``, a master's role (``bias``, ``dark``,
        ``flat``) or ``input`` (a frame considered for a master).
    path : str
        Where the file was when it was used.
    sha256 : str
        SHA-256 of its bytes when it was used.
    ref : int
        Its catalogue id (frame id, or master id for a master); 0 when unknown.
    used : bool
        False for a frame considered for a master but rejected.
    reason : str
        Why it was rejected (empty when used).
    """

    step: str
    path: str
    sha256: str
    ref: int = 0
    used: bool = True
    reason: str = ""


def _text_column(name: str, values: Sequence[str]) -> fits.Column:
    # FITS character columns hold ASCII: anything else is escaped, never dropped.
    texts = [_cards.fits_text(v) for v in values]
    width = max([1, *(len(t) for t in texts)])
    return fits.Column(name=name, format=f"{width}A", array=np.array(texts, dtype=f"S{width}"))


def provenance_table(entries: Sequence[ProvenanceEntry]) -> fits.BinTableHDU:
    """The ``PROVENANCE`` binary table of ``entries`` (nothing is written).

    Columns ``STEP``, ``ID``, ``PATH``, ``SHA256``, ``USED`` and ``REASON``, one row
    per entry in the order given. Text is stored as printable ASCII (non-ASCII
    characters backslash-escaped), as FITS requires.
    """
    columns = [
        _text_column("STEP", [e.step for e in entries]),
        fits.Column(name="ID", format="K", array=np.array([e.ref for e in entries],
                                                          dtype=np.int64)),
        _text_column("PATH", [e.path for e in entries]),
        _text_column("SHA256", [e.sha256 for e in entries]),
        fits.Column(name="USED", format="L", array=np.array([e.used for e in entries],
                                                            dtype=bool)),
        _text_column("REASON", [e.reason for e in entries]),
    ]
    table = fits.BinTableHDU.from_columns(columns, name=PROVENANCE_EXTNAME)
    table.header["NLPROV"] = (len(entries), "files this HDU list was made from")
    return table


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
    header = legal_header(_cards.header_of(ccd))
    for key in _STRUCTURAL:
        header.remove(key, ignore_missing=True, remove_all=True)
    unit = u.Unit(ccd.unit)
    # An empty BUNIT is what CCDData.read takes as dimensionless (a normalised flat);
    # without any BUNIT it refuses the file.
    _cards.set_card(header, "BUNIT", unit.to_string() if unit != u.dimensionless_unscaled
                    else "", "physical unit of the data")
    if ccd.wcs is not None:
        header.extend(ccd.wcs.to_header(relax=True), useblanks=False, update=True)
    return header


def to_hdulist(ccd: CCDData, *, mask_bits: npt.ArrayLike | None = None,
               provenance: Sequence[ProvenanceEntry] | None = None,
               read_noise: npt.ArrayLike | None = None) -> fits.HDUList:
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
    provenance : sequence of ProvenanceEntry, optional
        The files the frame was made from, stored as the ``PROVENANCE`` table
        (:func:`provenance_table`); none when omitted.
    read_noise : array_like, optional
        A master bias's per-pixel read noise (ADU), stored as ``RDNOISE``.

    Returns
    -------
    astropy.io.fits.HDUList
        ``PRIMARY`` (float32 data), then ``UNCERT`` and ``MASK`` when present,
        ``RDNOISE`` when given, then ``PROVENANCE`` when given.

    Raises
    ------
    ShapeMismatchError
        ``mask_bits`` or the mask does not match the data.
    ReductionError
        ``mask_bits`` is not an integer plane within ``uint16``, or the uncertainty
        cannot become a standard deviation.
    """
    header = _primary_header(ccd)
    hdus: list[fits.PrimaryHDU | fits.ImageHDU | fits.BinTableHDU] = [
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
            for keyword, name, meaning in bit_cards():
                mask_header[keyword] = (name, meaning)
        hdus.append(fits.ImageHDU(array, mask_header, name="MASK"))
    if read_noise is not None:
        noise = np.asarray(read_noise, dtype=np.float32)
        if noise.shape != ccd.shape:
            raise ShapeMismatchError(f"read-noise map of shape {noise.shape} for {ccd.shape}")
        noise_header = fits.Header()
        noise_header["BUNIT"] = ("adu", "read noise of each pixel")
        hdus.append(fits.ImageHDU(noise, noise_header, name=READ_NOISE_EXTNAME))
    if provenance is not None:
        hdus.append(provenance_table(provenance))
    return fits.HDUList(hdus)


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
