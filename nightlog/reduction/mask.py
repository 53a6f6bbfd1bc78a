"""The bad-pixel mask: one documented bit per reason a pixel is not trusted.

A reduced product carries a ``uint16`` bit plane in which each set bit says
*why* a pixel is suspect (see :class:`MaskBit`); the boolean ``CCDData.mask``
is simply "any bit set". Keeping the reasons apart matters: a saturated star
core and a hot pixel are both unusable for photometry, but only the second is
a property of the detector that should be the same from night to night.

The detectors here return **boolean** arrays (one reason each); combine them
into a bit plane with :func:`combine_masks`, and turn a bit value back into
words with :func:`describe_bits`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
from astropy.nddata import CCDData

from nightlog.errors import ReductionError, ShapeMismatchError
from nightlog.reduction.flat_response import large_scale_response
from nightlog.reduction.hot_limit import hot_limit
from nightlog.reduction.order_statistics import median

__all__ = [
    "MASK_DTYPE",
    "UNUSABLE",
    "MaskBit",
    "bit_cards",
    "combine_masks",
    "dead_pixels_from_flat",
    "describe_bits",
    "hot_pixels_from_dark",
    "mask_saturated",
    "pixels_with",
]

#: dtype of every bit plane nightlog writes (room for 16 reasons).
MASK_DTYPE = np.uint16



class MaskBit(enum.IntFlag):
    """Reasons a pixel is masked; the values are stored in FITS files, never renumber.

    SATURATED = 1
        The raw value reached the saturation (or non-linearity) level in ADU.
    HOT = 2
        Dark current far above the detector's typical rate, from the master dark.
        The pixel's value is calibrated as any other (its flat value comes from
        the flats); it only carries this bit.
    DEAD = 4
        A pixel whose own response is far below (or above) that of its
        neighbourhood, from the master flat: a defect of the pixel.
    COSMIC_RAY = 8
        Hit by a cosmic ray in this exposure (from cosmic-ray detection).
    NO_DATA = 16
        No valid value: not a finite number, or outside the illuminated/read area.
    UNILLUMINATED = 32
        Vignetted: the flat's large-scale response is below the low-response
        limit (little light reaches this part of the detector). Flat-fielded like
        any pixel, with the larger uncertainty that follows; not a defect.
    OVERSCAN_BAD = 64
        The overscan level for this row could not be estimated reliably.
    UNSPECIFIED = 128
        Masked by an earlier step that recorded no reason (a boolean mask only).
    NOISY = 256
        Read noise far above the detector's typical one, from the master bias's
        per-pixel read-noise map (a CMOS random-telegraph pixel): its value is
        calibrated, its variance uses its own read noise, and cosmic-ray
        detection leaves it alone.

    :class:`~astropy.nddata.CCDData` keeps only a boolean ``mask``; the bit plane
    travels beside it as ``ccd.flags`` through the reduction steps.
    """

    SATURATED = 1
    HOT = 2
    DEAD = 4
    COSMIC_RAY = 8
    NO_DATA = 16
    UNILLUMINATED = 32
    OVERSCAN_BAD = 64
    UNSPECIFIED = 128
    NOISY = 256


_DESCRIPTIONS: dict[MaskBit, str] = {
    MaskBit.SATURATED: "saturated",
    MaskBit.HOT: "hot pixel (master dark)",
    MaskBit.DEAD: "dead or low-response pixel (master flat)",
    MaskBit.COSMIC_RAY: "cosmic ray",
    MaskBit.NO_DATA: "no valid data",
    MaskBit.UNILLUMINATED: "vignetted: low large-scale response (master flat)",
    MaskBit.OVERSCAN_BAD: "unreliable overscan level",
    MaskBit.UNSPECIFIED: "masked, reason not recorded",
    MaskBit.NOISY: "noisy pixel: high read noise (master bias map)",
}
_DESCRIPTIONS_BY_VALUE: dict[int, str] = {int(k): v for k, v in _DESCRIPTIONS.items()}

#: Bits that make a pixel's value unusable; UNILLUMINATED (vignetted) is not one of
#: them: such a pixel is flat-fielded and its uncertainty says how much less light
#: it had. Select good data with ``~pixels_with(plane, UNUSABLE)``.
UNUSABLE = MaskBit(sum(int(b) for b in MaskBit if b is not MaskBit.UNILLUMINATED))

# Short meanings for the product header (a card's comment holds 47 characters
# after an 8-character value).
_CARD_TEXT: dict[MaskBit, str] = {
    MaskBit.SATURATED: "raw value at or above SATLEVEL",
    MaskBit.HOT: "hot pixel: master dark above the hot limit",
    MaskBit.DEAD: "dead pixel: response far off its neighbours'",
    MaskBit.COSMIC_RAY: "cosmic ray hit in this exposure",
    MaskBit.NO_DATA: "no valid value (not finite, not read)",
    MaskBit.UNILLUMINATED: "vignetted: low large-scale flat response",
    MaskBit.OVERSCAN_BAD: "overscan level of the row unreliable",
    MaskBit.UNSPECIFIED: "masked by an earlier step, no reason kept",
    MaskBit.NOISY: "noisy: read noise far above the median's",
}


def _plain(data: CCDData | npt.ArrayLike) -> np.ndarray[Any, Any]:
    """The pixel array of ``data`` (no copy when it is already an array)."""
    if isinstance(data, CCDData):
        return np.asarray(data.data)
    return np.asarray(data)


def mask_saturated(data: CCDData | npt.ArrayLike, level: float) -> npt.NDArray[np.bool_]:
    """Flag pixels at or above the saturation level.

    Parameters
    ----------
    data : CCDData or array_like
        A **raw** frame, in ADU, before bias or overscan subtraction: the
        saturation level is a property of the ADC/full well in raw counts.
    level : float
        Saturation (or non-linearity) level in ADU; pixels ``>= level`` are flagged.

    Returns
    -------
    numpy.ndarray of bool
        ``True`` where saturated; set :attr:`MaskBit.SATURATED` for them.

    Raises
    ------
    ReductionError
        ``level`` is not a finite number.
    """
    if not np.isfinite(level):
        raise ReductionError(f"saturation level must be finite, not {level!r}")
    return _plain(data) >= level


def hot_pixels_from_dark(
    dark_rate: CCDData | npt.ArrayLike,
    *,
    nsigma: float = 5.0,
    absolute: float | None = None,
) -> npt.NDArray[np.bool_]:
    """Flag hot pixels in a master dark.

    Parameters
    ----------
    dark_rate : CCDData or array_like
        Master dark, preferably as a rate (ADU/s or e⁻/s) so that the threshold
        means the same for every exposure time.
    nsigma : float, optional
        Robust threshold: a pixel is hot when it exceeds
        ``median + nsigma * 1.4826 * MAD`` of the frame. Robust statistics keep the
        hot pixels themselves from inflating the threshold.
    absolute : float, optional
        If given, use this absolute threshold instead, in the units of ``dark_rate``
        (for example 1 e⁻/s), and ignore ``nsigma``.

    Returns
    -------
    numpy.ndarray of bool
        ``True`` for hot pixels; set :attr:`MaskBit.HOT` for them.

    Raises
    ------
    ReductionError
        ``nsigma`` is not positive, or the frame has no finite pixels.

    Notes
    -----
    When the dark is nearly noiseless (MAD of zero) the robust threshold reduces
    to "above the median", which would flag half the frame; in that case only
    pixels strictly above the median by more than the float32 resolution of the
    median are flagged.
    """
    values = _plain(dark_rate)
    if absolute is not None:
        return values > absolute
    return values > hot_limit(values, nsigma=nsigma)


def dead_pixels_from_flat(
    flat: CCDData | npt.ArrayLike,
    *,
    low: float = 0.5,
    high: float | None = None,
    box: int | None = None,
    exclude: npt.ArrayLike | None = None,
    response: npt.ArrayLike | None = None,
    level: float | None = None,
) -> npt.NDArray[np.bool_]:
    """Flag dead and low-response (optionally over-responsive) pixels in a flat.

    Parameters
    ----------
    flat : CCDData or array_like
        Master flat (any normalisation: the thresholds are relative to its median).
    low : float, optional
        Pixels whose response is below ``low`` × median are flagged (default 0.5).
    high : float, optional
        If given, pixels above ``high`` × median are flagged too.
    box : int, optional
        If given, the thresholds are relative to the pixel's neighbourhood (the
        mean response of its ``box`` × ``box`` block,
        :func:`~nightlog.reduction.flat_response.large_scale_response`)
        instead of the flat's median: a pixel in a vignetted corner is then dead
        only when it responds far less than the pixels around it.
    exclude : array_like of bool, optional
        With ``box``: pixels left out of the neighbourhood means.
    response : array_like, optional
        With ``box``: those means already computed
        (:func:`~nightlog.reduction.flat_response.large_scale_response` of ``flat``
        with the same ``box`` and ``exclude``), so that a caller who also needs
        them computes them once.
    level : float, optional
        The median of the flat's finite pixels, when the caller has it already.

    Returns
    -------
    numpy.ndarray of bool
        ``True`` for dead/low-response pixels and non-finite values; set
        :attr:`MaskBit.DEAD` for them.

    Raises
    ------
    ReductionError
        The flat has no finite pixels, a non-positive median, or ``low >= high``.
    """
    values = _plain(flat)
    if high is not None and low >= high:
        raise ReductionError(f"low ({low}) must be below high ({high})")
    finite = np.isfinite(values)
    if not finite.any():
        raise ReductionError("the flat has no finite pixels")
    if level is None:
        level = median(values[finite], overwrite=True)
    if not level > 0:
        raise ReductionError(f"the flat's median is {level}, not positive")
    reference: Any = level
    if box is not None:
        local = (np.asarray(response) if response is not None
                 else large_scale_response(values, box=box, exclude=exclude))
        known = np.isfinite(local)
        # Every block has a mean (the common case): the means themselves, no copy.
        reference = local if known.all() else np.where(known, local, level)
    bad = ~finite
    with np.errstate(invalid="ignore"):
        bad |= values < low * reference
        if high is not None:
            bad |= values > high * reference
    return np.asarray(bad, dtype=np.bool_)


def combine_masks(
    *planes: npt.ArrayLike,
    flags: Mapping[MaskBit, npt.ArrayLike] | None = None,
) -> npt.NDArray[np.uint16]:
    """Combine bit planes and boolean masks into one ``uint16`` bit plane.

    Parameters
    ----------
    *planes : array_like of int
        Existing bit planes (for example a master's mask); they are OR-ed.
    flags : mapping of MaskBit to array_like of bool, optional
        Boolean masks, each setting its bit where ``True``.

    Returns
    -------
    numpy.ndarray of uint16
        A new bit plane; the inputs are not modified.

    Raises
    ------
    ShapeMismatchError
        The inputs do not all have the same shape.
    ReductionError
        Nothing to combine, a plane holds values outside ``uint16``, or a flag key
        is not a single :class:`MaskBit`.
    """
    arrays: list[tuple[int, np.ndarray[Any, Any]]] = [(0, np.asarray(p)) for p in planes]
    for bit, mask in (flags or {}).items():
        value = int(bit)
        if value <= 0 or value & (value - 1) or value > np.iinfo(MASK_DTYPE).max:
            raise ReductionError(f"flag key must be a single mask bit, not {bit!r}")
        arrays.append((value, np.asarray(mask, dtype=bool)))
    if not arrays:
        raise ReductionError("combine_masks needs at least one plane or flag")
    shape = arrays[0][1].shape
    for _, array in arrays:
        if array.shape != shape:
            raise ShapeMismatchError(f"mask of shape {array.shape} does not match {shape}")
    out = np.zeros(shape, dtype=MASK_DTYPE)
    for value, array in arrays:
        if value:
            out[array] |= MASK_DTYPE(value)
            continue
        if array.dtype == bool:
            raise ReductionError("a boolean plane needs a bit: pass it in flags={MaskBit.X: mask}")
        if array.size and (array.min() < 0 or array.max() > np.iinfo(MASK_DTYPE).max):
            raise ReductionError("a bit plane holds values outside uint16")
        out |= array.astype(MASK_DTYPE, copy=False)
    return out


def pixels_with(
    plane: npt.ArrayLike, bits: MaskBit | int | None = None
) -> npt.NDArray[np.bool_]:
    """Boolean mask of pixels that have any of ``bits`` set (any bit when ``None``)."""
    array = np.asarray(plane)
    if bits is None:
        return np.asarray(array != 0, dtype=np.bool_)
    return np.asarray((array & int(bits)) != 0, dtype=np.bool_)


def describe_bits(value: int) -> str:
    """Say in words which reasons a mask value carries.

    Parameters
    ----------
    value : int
        A bit-plane value such as ``5``.

    Returns
    -------
    str
        ``'good'`` for 0, otherwise the reasons joined by ``'; '`` in bit order,
        e.g. ``'saturated; dead or low-response pixel (master flat)'``. Bits with
        no meaning are reported as ``'unknown bit N'``.

    Raises
    ------
    ReductionError
        ``value`` is negative.
    """
    value = int(value)
    if value < 0:
        raise ReductionError(f"a mask value cannot be negative: {value}")
    if value == 0:
        return "good"
    words: list[str] = []
    bit = 1
    while bit <= value:
        if value & bit:
            words.append(_DESCRIPTIONS_BY_VALUE.get(bit, f"unknown bit {bit}"))
        bit <<= 1
    return "; ".join(words)


def bit_cards() -> list[tuple[str, str, str]]:
    """Header cards that document the bit plane: ``(keyword, value, comment)``.

    One card per bit, ``MASKB0`` … ``MASKB7`` (the bit number), whose value is the
    bit's name and comment its meaning, e.g.
    ``MASKB2 = 'DEAD' / dead pixel: response far off its neighbours'``. Each fits
    one 80-character card.
    """
    cards = []
    for bit in MaskBit:
        number = int(bit).bit_length() - 1
        cards.append((f"MASKB{number}", str(bit.name), _CARD_TEXT[bit]))
    return cards
