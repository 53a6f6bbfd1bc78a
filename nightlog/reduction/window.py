"""Cropping a full-frame master to the window of a subarray frame.

A frame read out as a window of the detector is calibrated from the masters of
the full readout, each cut to the window: data, uncertainty, mask and bit plane
alike (the cut of :func:`~nightlog.reduction.trim.trim_image`), with ``WINCROP``
and a HISTORY line saying which part of the master was kept. Where the crop lies
is decided by the calibration manager (:mod:`nightlog.calibration.windows`);
this step only cuts.
"""

from __future__ import annotations

from astropy.nddata import CCDData

from nightlog.errors import SectionError
from nightlog.reduction._cards import add_history, set_card
from nightlog.reduction.trim import trim_image
from nightlog.sections import format_section

__all__ = ["crop_to_window"]


def crop_to_window(master: CCDData, crop: tuple[int, int, int, int]) -> CCDData:
    """Cut ``master`` to the pixels ``crop`` names.

    Parameters
    ----------
    master : CCDData
        A master calibration (bias, dark or flat) of the full readout, trimmed.
    crop : tuple of int
        ``(y0, y1, x0, x1)``: rows ``y0`` to ``y1 - 1`` and columns ``x0`` to
        ``x1 - 1`` of the master (numpy, 0-based, end exclusive), in pixels.

    Returns
    -------
    CCDData
        A new frame of shape ``(y1 - y0, x1 - x0)`` (copies, not views), its
        header noting the crop (``WINCROP``, FITS form) and section keywords moved
        as a trim moves them.

    Raises
    ------
    SectionError
        The crop is empty or reaches outside the master.
    """
    y0, y1, x0, x1 = (int(v) for v in crop)
    ny, nx = master.shape
    if not (0 <= y0 < y1 <= ny and 0 <= x0 < x1 <= nx):
        raise SectionError(f"crop rows {y0}:{y1}, columns {x0}:{x1} does not lie inside "
                           f"the master's {nx}x{ny} pixels")
    cut = (slice(y0, y1), slice(x0, x1))
    out = trim_image(master, cut)
    kept = format_section(cut, master.shape)
    set_card(out.meta, "WINCROP", kept, "part of the full-frame master kept")
    add_history(out.meta, f"Cropped to {kept} of the full-frame master for a window")
    return out
