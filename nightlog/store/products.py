"""Reading reduced products and masters back: one open per file, everything in it.

The layout is the one :func:`nightlog.reduction.products.to_hdulist` builds: the
reduced data in ``PRIMARY``, the standard deviation in ``UNCERT``, the mask in
``MASK`` (a ``uint16`` bit plane when ``MASKTYPE = 'BITPLANE'``, else 0/1) and the
lineage in the ``PROVENANCE`` table. :func:`read_product` opens the file once and
returns the frame (as ``CCDData.read`` would give it, plus the bit plane as
``flags``) together with its provenance; the pixels are memory-mapped, as astropy
does by default, so a worker pays for the pages it touches. :func:`provenance_of`
reads the table alone, without the pixels.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from astropy import units as u
from astropy.io import fits
from astropy.nddata import CCDData, InverseVariance, StdDevUncertainty, VarianceUncertainty
from astropy.utils.exceptions import AstropyWarning
from astropy.wcs import WCS

from nightlog.errors import UnreadableFileError
from nightlog.reduction.mask import MASK_DTYPE
from nightlog.reduction.products import (
    PROVENANCE_EXTNAME,
    READ_NOISE_EXTNAME,
    ProvenanceEntry,
)

__all__ = ["ProductFile", "provenance_of", "read_product"]

_UNCERTAINTIES = {cls.__name__: cls
                  for cls in (StdDevUncertainty, VarianceUncertainty, InverseVariance)}
# What CCDData.read leaves in the header although the WCS holds it too.
_WCS_KEPT = ("JD-OBS", "MJD-OBS", "DATE-OBS")
_PC = ("PC1_1", "PC1_2", "PC2_1", "PC2_2")
_CD = ("CD1_1", "CD1_2", "CD2_1", "CD2_2")


@dataclass(frozen=True, slots=True)
class ProductFile:
    """What a product or master file holds, read in one go.

    Attributes
    ----------
    ccd : CCDData
        Data, uncertainty and boolean mask as ``CCDData.read`` gives them (a file
        without ``BUNIT`` is dimensionless), with the ``uint16`` bit plane as
        ``flags`` when the file stores one (``None`` for a plain 0/1 mask).
    provenance : tuple of ProvenanceEntry
        The rows of its ``PROVENANCE`` table, in order (empty when it has none).
    read_noise : ndarray of float32 or None
        A master bias's per-pixel read noise (ADU, its ``RDNOISE`` extension).
    """

    ccd: CCDData
    provenance: tuple[ProvenanceEntry, ...]
    read_noise: npt.NDArray[np.float32] | None = None


def read_product(path: str | os.PathLike[str]) -> ProductFile:
    """Open a product or master file once and return its frame and its provenance.

    astropy's warnings are silenced: its notes about fixing non-standard date
    keywords while looking for a WCS (``FITSFixedWarning``) concern the raw header,
    not the product, and a damaged file is an error, not a warning.

    Parameters
    ----------
    path : str or path-like
        A file written from :func:`nightlog.reduction.products.to_hdulist`.

    Returns
    -------
    ProductFile
        The frame (bit plane as ``flags``) and the ``PROVENANCE`` rows.

    Raises
    ------
    UnreadableFileError
        The file is missing or unreadable, its primary HDU holds no image, or its
        ``BUNIT`` or tables are malformed.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyWarning)
            with open(path, "rb") as fh, fits.open(fh) as hdus:
                return ProductFile(ccd=_frame(hdus), provenance=_provenance(hdus),
                                   read_noise=_read_noise(hdus))
    except (OSError, ValueError, KeyError) as err:
        raise UnreadableFileError(f"cannot read product {os.fspath(path)!r}: {err}") from err


def provenance_of(path: str | os.PathLike[str]) -> tuple[ProvenanceEntry, ...]:
    """The ``PROVENANCE`` rows of a product or master file, without reading its pixels.

    Returns
    -------
    tuple of ProvenanceEntry
        In file order; empty when the file has no such table.

    Raises
    ------
    UnreadableFileError
        The file is missing or unreadable, or its table is malformed.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyWarning)
            with open(path, "rb") as fh, fits.open(fh, memmap=False) as hdus:
                return _provenance(hdus)
    except (OSError, ValueError, KeyError) as err:
        raise UnreadableFileError(f"cannot read the provenance of {os.fspath(path)!r}: {err}"
                                  ) from err


def _provenance(hdus: fits.HDUList) -> tuple[ProvenanceEntry, ...]:
    if PROVENANCE_EXTNAME not in hdus:
        return ()
    rows: Sequence[Any] = hdus[PROVENANCE_EXTNAME].data
    return tuple(ProvenanceEntry(step=str(row["STEP"]), path=str(row["PATH"]),
                                 sha256=str(row["SHA256"]), ref=int(row["ID"]),
                                 used=bool(row["USED"]), reason=str(row["REASON"]))
                 for row in rows)


def _frame(hdus: fits.HDUList) -> CCDData:
    """The CCDData of an open product, as ``CCDData.read`` builds it, plus the bit plane."""
    # A tile-compressed file has an empty primary and the data in its first extension.
    primary = next((h for h in hdus if h.is_image and h.data is not None), None)
    if primary is None:
        raise ValueError("the file holds no image")
    header, wcs = _split_wcs(primary.header)
    uncertainty = None
    if "UNCERT" in hdus:
        stored = hdus["UNCERT"]
        kind = _UNCERTAINTIES.get(str(stored.header.get("UTYPE")), StdDevUncertainty)
        uncertainty = kind(np.asarray(stored.data))
    mask = flags = None
    if "MASK" in hdus:
        plane = hdus["MASK"]
        mask = np.asarray(plane.data).astype(bool)
        flags = _bit_plane(plane)
    return CCDData(np.asarray(primary.data), meta=header, unit=_unit(header), mask=mask,
                   uncertainty=uncertainty, wcs=wcs, flags=flags)


def _read_noise(hdus: fits.HDUList) -> npt.NDArray[np.float32] | None:
    if READ_NOISE_EXTNAME not in hdus:
        return None
    return np.array(hdus[READ_NOISE_EXTNAME].data, dtype=np.float32)


def _bit_plane(plane: fits.ImageHDU) -> npt.NDArray[np.uint16] | None:
    if plane.header.get("MASKTYPE") != "BITPLANE":
        return None
    return np.array(plane.data, dtype=MASK_DTYPE)


def _unit(header: fits.Header) -> u.UnitBase:
    """``BUNIT`` as ``CCDData.read`` reads it (``ADU`` is ``adu``); dimensionless without."""
    text = str(header.get("BUNIT", "")).strip()
    if not text:
        return u.dimensionless_unscaled
    if text.lower() == "adu":
        return u.adu
    text = CCDData.known_invalid_fits_unit_strings.get(text, text)
    try:
        return u.Unit(text)
    except ValueError as err:
        raise ValueError(f"BUNIT {text!r} is not a unit") from err


def _split_wcs(header: fits.Header) -> tuple[fits.Header, WCS | None]:
    """The header without its WCS keywords, and the WCS (None when there is none).

    The same split ``CCDData.read`` makes, so a product read here has the same
    header and WCS as one read by astropy.
    """
    try:
        wcs = WCS(header)
    except Exception:  # a malformed WCS leaves the header as it is, as in CCDData.read
        return header.copy(), None
    if not wcs.wcs.ctype[0]:
        return header.copy(), None
    cleaned = header.copy()
    cards = wcs.to_header(relax=True)
    for key in cards:
        if key not in _WCS_KEPT:
            cleaned.remove(key, ignore_missing=True)
    if set(_PC) & set(cards):
        for key in _CD:
            cleaned.remove(key, ignore_missing=True)
    if wcs.sip is not None:
        for poly in ("A", "B", "AP", "BP"):
            order = getattr(wcs.sip, f"{poly.lower()}_order")
            for i in range(order):
                for j in range(order):
                    cleaned.remove(f"{poly}_{i}_{j}", ignore_missing=True)
    return cleaned, wcs
