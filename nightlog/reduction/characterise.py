"""Detector characterisation: read noise, gain, bias level and dark current.

Read noise from a pair of biases
    The difference of two biases removes the fixed bias pattern and leaves
    twice the read-noise variance: ``σ_RN = std(b1 - b2) / √2`` (ADU), times the
    gain for electrons.

Gain from a pair of flats
    For bias-subtracted flats with mean levels ``S1`` and ``S2`` in the region,
    the lecture's quick formula ``G = 2S / var(f1 - f2)`` assumes equal levels and
    negligible read noise. Twilight flats never have equal levels, and then the
    pixel-response pattern ``p`` does not cancel: ``f1 - f2`` keeps
    ``(S1 - S2)·p``, whose variance ``(S1 - S2)²·var(p)`` inflates ``var(Δ)`` and
    biases the gain low. :func:`gain_from_flats` scales the second flat to the
    first's level, ``Δ = f1 - r·f2`` with ``r = S1/S2``, so the pattern cancels
    exactly, and then

        var(Δ) = (1 + r)·S1/G + (1 + r²)·σ_RN² + (1 - r)²·σ_B²

    (Poisson, read noise of each flat, and the noise ``σ_B`` of the bias frame
    subtracted from both), which is solved for ``G``. An illumination pattern
    that *changes* between the two flats (a twilight gradient moving) is not
    removed; keep the region small enough that it is flat.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
import numpy.typing as npt
from astropy.nddata import CCDData

from nightlog.errors import ReductionError, ShapeMismatchError
from nightlog.reduction.clipped_values import clip_values
from nightlog.sections import Section, parse_section

__all__ = [
    "DarkCurrent",
    "FrameStatistics",
    "ReadNoise",
    "dark_current",
    "frame_statistics",
    "gain_from_flats",
    "read_noise_from_biases",
]

Frame: TypeAlias = CCDData | npt.ArrayLike
_MAD_TO_SIGMA = 1.482602218505602


@dataclass(frozen=True)
class ReadNoise:
    """Read noise of a detector, per pixel and read."""

    adu: float
    #: In e⁻; ``None`` when no gain was given.
    electrons: float | None


@dataclass(frozen=True)
class FrameStatistics:
    """Robust summary of a frame (or a region of it), in the frame's units."""

    mean: float
    median: float
    std: float
    #: 1.4826 × median absolute deviation: a standard deviation robust to outliers.
    robust_std: float
    minimum: float
    maximum: float
    #: Pixels used (finite and unmasked).
    n_pixels: int


@dataclass(frozen=True)
class DarkCurrent:
    """Typical (median) dark current of a master dark."""

    adu_per_second: float
    #: In e⁻/s; ``None`` when no gain was given.
    electrons_per_second: float | None


def _values(frame: Frame, region: str | Section | None) -> npt.NDArray[np.float64]:
    """Float64 values of ``frame`` in ``region``; masked pixels become NaN."""
    if isinstance(frame, CCDData):
        data = np.array(frame.data, dtype=np.float64)
        if frame.mask is not None:
            data[np.asarray(frame.mask).astype(bool)] = np.nan
    else:
        data = np.array(frame, dtype=np.float64)
    if data.ndim != 2:
        raise ReductionError(f"expected a 2-D frame, got {data.ndim} dimensions")
    if region is None:
        return data
    section = parse_section(region, data.shape) if isinstance(region, str) else region
    return data[section]


def _same_shape(*arrays: npt.NDArray[np.float64]) -> None:
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise ShapeMismatchError(f"frames of different shapes: {sorted(shapes)}")


def _variance(values: npt.NDArray[np.float64], clip_sigma: float | None) -> float:
    finite = values[np.isfinite(values)]
    if finite.size < 2:
        raise ReductionError("fewer than two valid pixels to measure a variance")
    if clip_sigma is not None:
        finite = clip_values(finite, clip_sigma, maxiters=5)
    return float(np.var(finite))


def read_noise_from_biases(
    b1: Frame,
    b2: Frame,
    region: str | Section | None = None,
    *,
    gain: float | None = None,
    clip_sigma: float | None = None,
) -> ReadNoise:
    """Read noise from the difference of two bias frames.

    Parameters
    ----------
    b1, b2 : CCDData or array_like
        Two raw (or equally processed) biases of the same shape, ADU.
    region : str or tuple of slice, optional
        FITS section or numpy slices to measure in (avoid edges and overscan).
    gain : float, optional
        e⁻/ADU, to also give the read noise in electrons.
    clip_sigma : float, optional
        Reject outliers of the difference (cosmic rays, hot pixels) beyond this many
        standard deviations before measuring; ``None`` (default) uses every pixel,
        exactly the lecture's ``sqrt(var(b1 - b2) / 2)``.

    Returns
    -------
    ReadNoise
        ``adu = std(b1 - b2) / √2`` and ``electrons = adu × gain``.

    Raises
    ------
    ShapeMismatchError
        The frames differ in shape.
    ReductionError
        Fewer than two valid pixels, or a gain that is not positive.
    """
    v1, v2 = _values(b1, region), _values(b2, region)
    _same_shape(v1, v2)
    adu = float(np.sqrt(_variance(v1 - v2, clip_sigma) / 2.0))
    if gain is not None and not gain > 0:
        raise ReductionError(f"gain must be positive, not {gain!r}")
    return ReadNoise(adu=adu, electrons=None if gain is None else adu * gain)


def gain_from_flats(
    f1: Frame,
    f2: Frame,
    b1: Frame | None = None,
    b2: Frame | None = None,
    *,
    master_bias: Frame | None = None,
    read_noise_adu: float | None = None,
    master_bias_noise_adu: float = 0.0,
    region: str | Section | None = None,
    clip_sigma: float | None = 5.0,
) -> float:
    """Gain in e⁻/ADU from two flats, unbiased when their levels differ.

    Parameters
    ----------
    f1, f2 : CCDData or array_like
        Two raw flats of the same shape (ADU), well below saturation.
    b1, b2 : CCDData or array_like, optional
        A pair of biases: their mean is subtracted from both flats and, unless
        ``read_noise_adu`` is given, their difference gives the read noise.
    master_bias : CCDData or array_like, optional
        Instead of ``b1, b2``: a master bias to subtract (then ``read_noise_adu`` is
        required). Masked pixels of any frame are left out.
    read_noise_adu : float, optional
        Read noise of one frame in ADU.
    master_bias_noise_adu : float, optional
        Per-pixel noise of ``master_bias`` in ADU (``σ_RN/√N`` for N combined
        biases); its effect is multiplied by ``(1 - r)²`` and usually negligible.
    region : str or tuple of slice, optional
        Where to measure: a flat, well-exposed part of the chip.
    clip_sigma : float, optional
        Outlier rejection on the scaled difference (cosmic rays, stars in twilight
        flats), in standard deviations; ``None`` keeps every pixel. Default 5.

    Returns
    -------
    float
        ``G = (1 + r)·S1 / (var(f1 - r·f2) - (1 + r²)·σ_RN² - (1 - r)²·σ_B²)``.

    Raises
    ------
    ReductionError
        No bias given (both a pair and a master, or neither); a master without
        ``read_noise_adu``; a non-positive level; or a variance that the read-noise
        term already exceeds (flats too faint).
    ShapeMismatchError
        Frames of different shapes.
    """
    if (b1 is None) != (b2 is None):
        raise ReductionError("give both biases of the pair (b1 and b2) or neither")
    if (b1 is None) == (master_bias is None):
        raise ReductionError("give either a bias pair (b1, b2) or master_bias")
    v1, v2 = _values(f1, region), _values(f2, region)
    if b1 is not None and b2 is not None:
        w1, w2 = _values(b1, region), _values(b2, region)
        _same_shape(v1, v2, w1, w2)
        bias = 0.5 * (w1 + w2)
        if read_noise_adu is None:
            read_noise_adu = read_noise_from_biases(w1, w2, clip_sigma=clip_sigma).adu
        # The mean of two biases carries half a read-noise variance.
        bias_var = read_noise_adu**2 / 2.0
    else:
        if read_noise_adu is None:
            raise ReductionError("with a master bias, read_noise_adu is required")
        bias = _values(master_bias, region)
        _same_shape(v1, v2, bias)
        bias_var = master_bias_noise_adu**2
    s1, s2 = v1 - bias, v2 - bias
    good = np.isfinite(s1) & np.isfinite(s2)
    level1, level2 = float(np.mean(s1[good])), float(np.mean(s2[good]))
    if not (level1 > 0 and level2 > 0):
        raise ReductionError(f"flat levels above bias must be positive: {level1}, {level2}")
    ratio = level1 / level2
    var_diff = _variance(s1[good] - ratio * s2[good], clip_sigma)
    noise = (1.0 + ratio**2) * read_noise_adu**2 + (1.0 - ratio) ** 2 * bias_var
    shot = var_diff - noise
    if not shot > 0:
        raise ReductionError(
            f"variance of the flat difference ({var_diff:.4g} ADU²) does not exceed the "
            f"read-noise term ({noise:.4g} ADU²): the flats are too faint"
        )
    return (1.0 + ratio) * level1 / shot


def frame_statistics(frame: Frame, region: str | Section | None = None) -> FrameStatistics:
    """Mean, median, standard deviations and range of a frame's valid pixels.

    For a master bias the median is its bias level; for a single bias the robust
    standard deviation approximates the read noise (but prefer
    :func:`read_noise_from_biases`, which removes fixed patterns).

    Raises
    ------
    ReductionError
        No finite, unmasked pixel in the region.
    """
    values = _values(frame, region)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        raise ReductionError("no valid pixels to summarise")
    median = float(np.median(finite))
    return FrameStatistics(
        mean=float(np.mean(finite)),
        median=median,
        std=float(np.std(finite)),
        robust_std=_MAD_TO_SIGMA * float(np.median(np.abs(finite - median))),
        minimum=float(finite.min()),
        maximum=float(finite.max()),
        n_pixels=int(finite.size),
    )


def dark_current(
    master_dark: Frame,
    *,
    exposure: float | None = None,
    gain: float | None = None,
    region: str | Section | None = None,
) -> DarkCurrent:
    """Median dark current of a bias-subtracted master dark.

    Parameters
    ----------
    master_dark : CCDData or array_like
        A dark rate (ADU/s) or, with ``exposure``, a dark of that many seconds.
    exposure : float, optional
        Seconds of a fixed-exposure dark; ``None`` for a rate.
    gain : float, optional
        e⁻/ADU, to also give e⁻/s.
    region : str or tuple of slice, optional
        Where to measure.

    Raises
    ------
    ReductionError
        ``exposure`` or ``gain`` not positive, or no valid pixel.
    """
    if exposure is not None and not exposure > 0:
        raise ReductionError(f"exposure must be positive, not {exposure!r}")
    if gain is not None and not gain > 0:
        raise ReductionError(f"gain must be positive, not {gain!r}")
    rate = frame_statistics(master_dark, region).median / (exposure or 1.0)
    return DarkCurrent(adu_per_second=rate,
                       electrons_per_second=None if gain is None else rate * gain)
