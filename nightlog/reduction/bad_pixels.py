"""The bad-pixel plane of a reduced frame, from its masters.

Pure: the frame and its masters in, a new ``uint16`` plane of
:class:`~nightlog.reduction.mask.MaskBit` out. HOT comes from the master dark,
DEAD (a pixel far off its neighbourhood's response) and UNILLUMINATED (vignetted:
the large-scale response low) from the master flat, and every bit each master
carries is kept; NO_DATA marks what is not finite.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt
from astropy.nddata import CCDData

from nightlog.reduction.flat_response import (
    RESPONSE_BOX,
    large_scale_response,
    vignetted_from_flat,
)
from nightlog.reduction.mask import (
    MASK_DTYPE,
    MaskBit,
    dead_pixels_from_flat,
    hot_pixels_from_dark,
)
from nightlog.reduction.science_parameters import ScienceParameters

__all__ = ["BitPlane", "bad_pixel_plane", "count_bits", "master_bits"]

#: A ``uint16`` plane of :class:`~nightlog.reduction.mask.MaskBit` values.
BitPlane = npt.NDArray[np.uint16]


def master_bits(master: CCDData) -> BitPlane | None:
    """A master's bit plane: its integer ``flags`` (as the masters module writes them),
    plus UNSPECIFIED where its boolean ``mask`` is set without a recorded reason."""
    flags, mask = master.flags, master.mask
    has_flags = isinstance(flags, np.ndarray) and flags.dtype.kind in "ui"
    if not has_flags and mask is None:
        return None
    plane = (np.asarray(flags).astype(MASK_DTYPE) if has_flags
             else np.zeros(master.shape, dtype=MASK_DTYPE))
    if mask is not None:
        mask = np.asarray(mask)
        if mask.dtype.kind in "ui":
            plane |= mask.astype(MASK_DTYPE)
        else:
            plane[mask.astype(bool) & (plane == 0)] |= MASK_DTYPE(MaskBit.UNSPECIFIED)
    return plane


def count_bits(bits: BitPlane) -> dict[str, int]:
    """Pixels carrying each bit, by the bit's name in lower case."""
    return {bit.name.lower(): int(np.count_nonzero(bits & MASK_DTYPE(bit)))
            for bit in MaskBit if bit.name is not None}


def _dark_bits(dark: CCDData, params: ScienceParameters) -> BitPlane:
    plane = master_bits(dark)
    plane = np.zeros(dark.shape, dtype=MASK_DTYPE) if plane is None else plane
    hot = hot_pixels_from_dark(dark, nsigma=params.hot_nsigma, absolute=params.hot_threshold)
    plane[hot] |= MASK_DTYPE(MaskBit.HOT)
    return plane


def _flat_bits(flat: CCDData, params: ScienceParameters) -> BitPlane:
    flat_bits = master_bits(flat)
    plane = np.zeros(flat.shape, dtype=MASK_DTYPE) if flat_bits is None else flat_bits.copy()
    flagged = None if flat_bits is None else flat_bits != 0  # reset to 1: no response there
    # The flat's block means, once: both the dead and the vignetted test use them.
    response = large_scale_response(flat, box=RESPONSE_BOX, exclude=flagged)
    dead = dead_pixels_from_flat(flat, low=params.dead_low, high=params.dead_high,
                                 box=RESPONSE_BOX, exclude=flagged, response=response)
    if flagged is not None:
        dead &= ~flagged
    plane[dead] |= MASK_DTYPE(MaskBit.DEAD)
    if params.low_response is not None:
        vignetted = vignetted_from_flat(flat, low=params.low_response, exclude=flagged,
                                        response=response)
        plane[vignetted] |= MASK_DTYPE(MaskBit.UNILLUMINATED)
    return plane


def bad_pixel_plane(ccd: CCDData, *, bias: CCDData | None, dark: CCDData | None,
                    flat: CCDData | None, params: ScienceParameters,
                    crops: Mapping[str, tuple[int, int, int, int]] | None = None
                    ) -> BitPlane:
    """The bits of ``ccd`` (its own ``flags``, if any) and of its masters, as a new plane.

    Parameters
    ----------
    ccd : CCDData
        The calibrated frame; not modified.
    bias, dark, flat : CCDData or None
        The masters it was calibrated with.
    params : ScienceParameters
        ``hot_nsigma``, ``hot_threshold``, ``dead_low``, ``dead_high`` and
        ``low_response`` (``None``: no vignetting flag).
    crops : mapping, optional
        For a subarray frame, the part ``(y0, y1, x0, x1)`` of each full-frame master
        (by role) that covers it: that master's bits are found on the whole master
        (thresholds from the whole detector, as for a full frame) and then cut.

    Returns
    -------
    numpy.ndarray of uint16
        The bit plane, ``ccd``'s shape.
    """
    plane = (np.array(ccd.flags, dtype=MASK_DTYPE) if ccd.flags is not None
             else np.zeros(ccd.shape, dtype=MASK_DTYPE))
    crops = crops or {}
    for role, master, bits_of in (("dark", dark, _dark_bits), ("flat", flat, _flat_bits),
                                  ("bias", bias, _bias_bits)):
        if master is None:
            continue
        bits = bits_of(master, params)
        crop = crops.get(role)
        if crop is not None:
            y0, y1, x0, x1 = crop
            bits = bits[y0:y1, x0:x1]
        plane |= bits
    plane[~np.isfinite(np.asarray(ccd.data))] |= MASK_DTYPE(MaskBit.NO_DATA)
    return plane


def _bias_bits(bias: CCDData, params: ScienceParameters) -> BitPlane:
    plane = master_bits(bias)
    return np.zeros(bias.shape, dtype=MASK_DTYPE) if plane is None else plane
