"""Trimming: cut a frame down to the part of the detector that holds image data.

After overscan subtraction the overscan columns (and any unread or damaged
edges) are cut away, normally to ``TRIMSEC`` or, failing that, ``DATASEC``.
Section keywords are brought along: ``DATASEC`` and ``CCDSEC`` are moved to the
new pixel grid (or removed when they no longer lie on it), ``BIASSEC`` and
``TRIMSEC`` — which no longer describe anything in the trimmed frame — are
removed, the IRAF physical-coordinate offsets ``LTV1/LTV2`` and a world
coordinate system (``ccd.wcs`` or ``CRPIX1/2`` in the header) are shifted, and
``TRIM`` records the section that was kept.
"""

from __future__ import annotations

import numpy as np
from astropy.io import fits
from astropy.nddata import CCDData

from nightlog.errors import ReductionError, SectionError
from nightlog.reduction._cards import add_history, header_of, set_card
from nightlog.reduction._frame import new_frame
from nightlog.sections import Section, format_section, parse_section

__all__ = ["trim_image"]


def _choose_section(ccd: CCDData, section: str | Section | None) -> tuple[Section, str]:
    if section is None:
        for key in ("TRIMSEC", "DATASEC"):
            text = ccd.meta.get(key)
            if text:
                return parse_section(str(text), ccd.shape), key
        raise ReductionError("no section given and the header has neither TRIMSEC nor DATASEC")
    if isinstance(section, str):
        return parse_section(section, ccd.shape), "given section"
    return section, "given section"


def _bounds(sl: slice, size: int) -> tuple[int, int]:
    """``(start, stop)`` of a positive-step slice; reversed or strided slices are refused."""
    start, stop, step = sl.indices(size)
    if step != 1 or stop <= start:
        raise SectionError("trim sections must run forward with step 1 and not be empty")
    return start, stop


def _move_section(header: fits.Header, key: str, shape: tuple[int, int],
                  new_shape: tuple[int, int], y0: int, x0: int) -> None:
    """Re-express section ``key`` on the trimmed grid, clipped to it, or remove it."""
    try:
        rows, cols = parse_section(str(header[key]), shape)
        r0, r1 = _bounds(rows, shape[0])
        c0, c1 = _bounds(cols, shape[1])
    except SectionError:
        del header[key]
        return
    r0, r1 = max(r0 - y0, 0), min(r1 - y0, new_shape[0])
    c0, c1 = max(c0 - x0, 0), min(c1 - x0, new_shape[1])
    if r1 <= r0 or c1 <= c0:
        del header[key]
        return
    set_card(header, key, format_section((slice(r0, r1), slice(c0, c1)), new_shape))


def _move_ccdsec(header: fits.Header, shape: tuple[int, int], y0: int, x0: int,
                 new_shape: tuple[int, int]) -> None:
    """Shift ``CCDSEC`` (chip coordinates of ``DATASEC``) when it maps pixel for pixel."""
    try:
        drows, dcols = parse_section(str(header["DATASEC"]), shape)
        crows, ccols = parse_section(str(header["CCDSEC"]), (1 << 30, 1 << 30))
        dr0, dr1 = _bounds(drows, shape[0])
        dc0, dc1 = _bounds(dcols, shape[1])
        cr0, cr1 = _bounds(crows, 1 << 30)
        cc0, cc1 = _bounds(ccols, 1 << 30)
    except (SectionError, KeyError):
        header.remove("CCDSEC", ignore_missing=True)
        return
    if (dr1 - dr0, dc1 - dc0) != (cr1 - cr0, cc1 - cc0):
        # Binned or otherwise not one-to-one: cannot be shifted honestly.
        header.remove("CCDSEC", ignore_missing=True)
        return
    # The part of DATASEC kept by the trim, expressed in chip coordinates.
    kr0, kr1 = max(dr0, y0), min(dr1, y0 + new_shape[0])
    kc0, kc1 = max(dc0, x0), min(dc1, x0 + new_shape[1])
    if kr1 <= kr0 or kc1 <= kc0:
        header.remove("CCDSEC", ignore_missing=True)
        return
    chip = (slice(cr0 + kr0 - dr0, cr0 + kr1 - dr0), slice(cc0 + kc0 - dc0, cc0 + kc1 - dc0))
    set_card(header, "CCDSEC", format_section(chip, (1 << 30, 1 << 30)))


def trim_image(ccd: CCDData, section: str | Section | None = None) -> CCDData:
    """Cut ``ccd`` to ``section`` (default ``TRIMSEC``, then ``DATASEC``).

    Parameters
    ----------
    ccd : CCDData
        Frame to trim (usually after overscan subtraction).
    section : str or tuple of slice, optional
        FITS section (1-based, inclusive, ``'[1:2048,1:4128]'``) or numpy
        ``(rows, columns)`` slices. ``None`` uses the header's ``TRIMSEC`` and then
        ``DATASEC``.

    Returns
    -------
    CCDData
        New frame (a copy, not a view) of the section, with data, uncertainty and
        mask and ``flags`` cut alike, section keywords moved to the new grid and ``TRIM`` set.

    Raises
    ------
    ReductionError
        No section given and none in the header.
    SectionError
        The section is malformed, off the image, empty, reversed or strided.
    """
    (rows, cols), source = _choose_section(ccd, section)
    y0, y1 = _bounds(rows, ccd.shape[0])
    x0, x1 = _bounds(cols, ccd.shape[1])
    cut = (slice(y0, y1), slice(x0, x1))
    new_shape = (y1 - y0, x1 - x0)
    header = header_of(ccd)
    if "CCDSEC" in header:
        _move_ccdsec(header, ccd.shape, y0, x0, new_shape)
    for key in ("TRIMSEC", "BIASSEC"):
        header.remove(key, ignore_missing=True)
    if "DATASEC" in header:
        _move_section(header, "DATASEC", ccd.shape, new_shape, y0, x0)
    for key, offset in (("LTV1", x0), ("LTV2", y0), ("CRPIX1", x0), ("CRPIX2", y0)):
        value = header.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            header[key] = value - offset
    kept = format_section(cut, ccd.shape)
    set_card(header, "TRIM", kept, "section kept by trimming")
    add_history(header, f"Trimmed to {kept} ({source}) from {ccd.shape[1]}x{ccd.shape[0]}")
    trimmed = new_frame(
        ccd,
        np.array(ccd.data[cut], copy=True),
        header,
        # The uncertainty cut, of its own kind (a variance stays a variance).
        uncertainty=None if ccd.uncertainty is None else ccd.uncertainty.__class__(
            np.array(ccd.uncertainty.array[cut]), unit=ccd.uncertainty.unit, copy=False),
        mask=None if ccd.mask is None else np.array(np.asarray(ccd.mask)[cut]),
        flags=None if ccd.flags is None else np.array(np.asarray(ccd.flags)[cut]),
    )
    if ccd.wcs is not None:
        trimmed.wcs = ccd.wcs.slice(cut)
    return trimmed
