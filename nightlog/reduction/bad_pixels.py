"""The bad-pixel plane of a reduced frame, from its masters.

Pure: the frame and its masters in, a new ``uint16`` plane of
:class:`~nightlog.reduction.mask.MaskBit` out. HOT comes from the master dark,
DEAD (a pixel far off its neighbourhood's response) and UNILLUMINATED (vignetted:
the large-scale response low) from the master flat, and every bit each master
carries is kept; NO_DATA marks what is not finite.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
from astropy.nddata import CCDData

from nightlog.errors import ReductionError
from nightlog.reduction.flat_response import (
    RESPONSE_BOX,
    large_scale_response,
    vignetted_from_flat,
)
from nightlog.reduction.hot_limit import recorded_hot_limit
from nightlog.reduction.mask import (
    MASK_DTYPE,
    MaskBit,
    dead_pixels_from_flat,
    hot_pixels_from_dark,
)
from nightlog.reduction.order_statistics import median
from nightlog.reduction.science_parameters import ScienceParameters
from nightlog.reduction.step_summary import summary_median

__all__ = ["BitPlane", "MasterPlane", "bad_pixel_plane", "count_bits", "master_bits",
           "master_plane", "plane_of", "plane_thresholds", "role_bits"]

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
    # How many pixels hold each value, then each bit's share of them. Only the
    # flagged pixels are counted by value (a clean plane is mostly 0, and a full
    # histogram would widen every pixel to an index first): 0 carries no bit.
    flat = np.asarray(bits, dtype=MASK_DTYPE).reshape(-1)
    flagged = flat[flat != 0]
    histogram = np.bincount(flagged) if flagged.size else np.zeros(1, dtype=np.intp)
    values = np.flatnonzero(histogram)
    return {bit.name.lower(): int(histogram[values[(values & int(bit)) != 0]].sum())
            for bit in MaskBit if bit.name is not None}


def _dark_bits(dark: CCDData, params: ScienceParameters) -> BitPlane:
    plane = master_bits(dark)
    plane = np.zeros(dark.shape, dtype=MASK_DTYPE) if plane is None else plane
    # The robust limit its builder found and recorded, else found here.
    limit = (None if params.hot_threshold is not None
             else recorded_hot_limit(dark, params.hot_nsigma))
    hot = (hot_pixels_from_dark(dark, nsigma=params.hot_nsigma, absolute=params.hot_threshold)
           if limit is None else np.asarray(dark.data) > limit)
    plane[hot] |= MASK_DTYPE(MaskBit.HOT)
    return plane


def _flat_bits(flat: CCDData, params: ScienceParameters) -> BitPlane:
    flat_bits = master_bits(flat)
    plane = np.zeros(flat.shape, dtype=MASK_DTYPE) if flat_bits is None else flat_bits.copy()
    flagged = None if flat_bits is None else flat_bits != 0  # reset to 1: no response there
    # The flat's block means, once: both the dead and the vignetted test use them.
    response = large_scale_response(flat, box=RESPONSE_BOX, exclude=flagged)
    # With nothing left out, both tests take the median of the finite pixels: once.
    level = None
    if params.low_response is not None and (flagged is None or not flagged.any()):
        values = np.asarray(flat.data)
        finite = values[np.isfinite(values)]
        level = median(finite, overwrite=True) if finite.size else None
    dead = dead_pixels_from_flat(flat, low=params.dead_low, high=params.dead_high,
                                 box=RESPONSE_BOX, exclude=flagged, response=response,
                                 level=level)
    if flagged is not None:
        dead &= ~flagged
    plane[dead] |= MASK_DTYPE(MaskBit.DEAD)
    if params.low_response is not None:
        vignetted = vignetted_from_flat(flat, low=params.low_response, exclude=flagged,
                                        response=response, level=level)
        plane[vignetted] |= MASK_DTYPE(MaskBit.UNILLUMINATED)
    return plane


@dataclass(frozen=True)
class MasterPlane:
    """The bits a set of masters gives every frame reduced with them, found once.

    HOT (a robust median and MAD of the whole master dark), DEAD and UNILLUMINATED
    (the master flat's block means and median) cost more than all the arithmetic
    of a frame; they depend on the masters and the thresholds alone, so a batch of
    frames reduced with the same masters finds them once
    (:func:`master_plane`) and passes them to every
    :func:`~nightlog.reduction.science.reduce_science`.

    Attributes
    ----------
    plane : numpy.ndarray of uint16
        The masters' bits, cut to the frame (the window) when ``crops`` is set.
        Read only.
    thresholds : tuple
        The parameters the bits were found with (:func:`plane_thresholds`).
    crops : tuple
        The crops they were cut with, sorted by role.
    medians : tuple
        ``(role, median)`` of each master as the frames apply it (cut to the window
        when cropped): the :func:`~nightlog.reduction.step_summary.summary_median`
        its step records, in the master's unit; empty when not found
        (:func:`plane_of` alone), and the steps then take it themselves.
    """

    plane: BitPlane
    thresholds: tuple[float | None, ...]
    crops: tuple[tuple[str, tuple[int, int, int, int]], ...]
    medians: tuple[tuple[str, float], ...] = ()

    def median(self, role: str) -> float | None:
        """The recorded median of the master of ``role``, or None when not found."""
        return dict(self.medians).get(role)

    def check(self, params: ScienceParameters,
              crops: Mapping[str, tuple[int, int, int, int]] | None,
              shape: tuple[int, ...]) -> None:
        """Refuse a plane found with other thresholds, crops or for another shape.

        Raises
        ------
        ReductionError
            The plane does not belong to these parameters, crops or frame shape.
        """
        if self.thresholds != plane_thresholds(params):
            raise ReductionError(
                f"the masters' bit plane was found with thresholds {self.thresholds}, "
                f"not this reduction's {plane_thresholds(params)}: find it again")
        if self.crops != tuple(sorted((crops or {}).items())):
            raise ReductionError("the masters' bit plane was cut for another window")
        if self.plane.size and self.plane.shape != tuple(shape):
            raise ReductionError(f"the masters' bit plane has shape {self.plane.shape}, "
                                 f"the frame {tuple(shape)}")


def plane_thresholds(params: ScienceParameters) -> tuple[float | None, ...]:
    """The parameters a :class:`MasterPlane` depends on: ``hot_nsigma``,
    ``hot_threshold``, ``dead_low``, ``dead_high``, ``low_response``."""
    return (params.hot_nsigma, params.hot_threshold, params.dead_low, params.dead_high,
            params.low_response)


def master_plane(*, bias: CCDData | None, dark: CCDData | None, flat: CCDData | None,
                 params: ScienceParameters,
                 crops: Mapping[str, tuple[int, int, int, int]] | None = None
                 ) -> MasterPlane:
    """The bits of the masters (full-frame ones, as given to ``reduce_science``), once.

    Parameters
    ----------
    bias, dark, flat : CCDData or None
        The full-frame masters.
    params : ScienceParameters
        ``hot_nsigma``, ``hot_threshold``, ``dead_low``, ``dead_high`` and
        ``low_response`` (``None``: no vignetting flag).
    crops : mapping, optional
        For a subarray frame, the part ``(y0, y1, x0, x1)`` of each full-frame master
        (by role) that covers it: that master's bits are found on the whole master
        (thresholds from the whole detector, as for a full frame) and then cut.

    Returns
    -------
    MasterPlane
        The OR of every master's bits (its own flags, HOT, DEAD, UNILLUMINATED).
        With no master at all, its plane is empty (shape ``(0, 0)``) and only the
        frame's own bits are used. Its ``medians``: each master's summary median,
        once for the batch instead of once per frame.
    """
    given = [(role, master) for role, master in (("dark", dark), ("flat", flat), ("bias", bias))
             if master is not None]
    found = {role: role_bits(role, master, params) for role, master in given}
    medians = []
    for role, master in given:
        values = np.asarray(master.data)
        if crops and role in crops:
            y0, y1, x0, x1 = crops[role]
            values = values[y0:y1, x0:x1]
        medians.append((role, summary_median(values)))
    return replace(plane_of(found, params=params, crops=crops), medians=tuple(medians))


def role_bits(role: str, master: CCDData, params: ScienceParameters) -> BitPlane:
    """The bits one full-frame master gives the frames reduced with it.

    Parameters
    ----------
    role : {'bias', 'dark', 'flat'}
        What the master is.
    master : CCDData
        The full-frame master.
    params : ScienceParameters
        The thresholds (:func:`plane_thresholds`).

    Returns
    -------
    numpy.ndarray of uint16
        A new plane: the master's own flags, and HOT (dark), DEAD and UNILLUMINATED
        (flat). :func:`plane_of` joins those of a set of masters.

    Raises
    ------
    ReductionError
        An unknown role.
    """
    if role == "dark":
        return _dark_bits(master, params)
    if role == "flat":
        return _flat_bits(master, params)
    if role == "bias":
        return _bias_bits(master, params)
    raise ReductionError(f"no bits for a master of role {role!r}")


def plane_of(bits: Mapping[str, BitPlane], *, params: ScienceParameters,
             crops: Mapping[str, tuple[int, int, int, int]] | None = None) -> MasterPlane:
    """The :class:`MasterPlane` of a set of masters from each one's :func:`role_bits`.

    Parameters
    ----------
    bits : mapping
        :func:`role_bits` of each master, by role (not modified).
    params : ScienceParameters
        The thresholds the bits were found with.
    crops : mapping, optional
        As :func:`master_plane`.

    Returns
    -------
    MasterPlane
        What :func:`master_plane` of the same masters returns.
    """
    crops = dict(crops or {})
    plane: BitPlane | None = None
    for role in ("dark", "flat", "bias"):
        if role not in bits:
            continue
        part = bits[role]
        crop = crops.get(role)
        if crop is not None:
            y0, y1, x0, x1 = crop
            part = part[y0:y1, x0:x1]
        if plane is None:
            plane = np.array(part, dtype=MASK_DTYPE, copy=True)
        else:
            plane |= part
    found = np.zeros((0, 0), dtype=MASK_DTYPE) if plane is None else plane
    found.flags.writeable = False
    return MasterPlane(plane=found, thresholds=plane_thresholds(params),
                       crops=tuple(sorted(crops.items())))


def bad_pixel_plane(ccd: CCDData, *, bias: CCDData | None, dark: CCDData | None,
                    flat: CCDData | None, params: ScienceParameters,
                    crops: Mapping[str, tuple[int, int, int, int]] | None = None,
                    masters: MasterPlane | None = None) -> BitPlane:
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
        (by role) that covers it (see :func:`master_plane`).
    masters : MasterPlane, optional
        The masters' bits found before (:func:`master_plane` with the same masters,
        parameters and crops); found here when not given.

    Returns
    -------
    numpy.ndarray of uint16
        The bit plane, ``ccd``'s shape.

    Raises
    ------
    ReductionError
        ``masters`` was found with other thresholds or crops, or for another shape.
    """
    if masters is None:
        masters = master_plane(bias=bias, dark=dark, flat=flat, params=params, crops=crops)
    masters.check(params, crops, ccd.shape)
    plane = (np.array(ccd.flags, dtype=MASK_DTYPE) if ccd.flags is not None
             else np.zeros(ccd.shape, dtype=MASK_DTYPE))
    if masters.plane.size:
        plane |= masters.plane
    plane[~np.isfinite(np.asarray(ccd.data))] |= MASK_DTYPE(MaskBit.NO_DATA)
    return plane


def _bias_bits(bias: CCDData, params: ScienceParameters) -> BitPlane:
    plane = master_bits(bias)
    return np.zeros(bias.shape, dtype=MASK_DTYPE) if plane is None else plane
