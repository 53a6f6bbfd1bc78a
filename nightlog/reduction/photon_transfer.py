"""Gain by photon transfer: every usable pair of flats of a night, not just the first two.

A single pair of flats measures the gain to the precision its pixels allow, but
any defect of that pair (a gradient that moved, a star, a level far from the
others) goes straight into the number. :func:`gain_from_photon_transfer` pairs
the flats of a night by level, measures each pair as
:func:`~nightlog.reduction.characterise.gain_from_flats` does (the second flat
scaled to the first's level, so the pixel-response pattern cancels, and the
read-noise and bias-noise terms subtracted), and fits the photon transfer
relation over all pairs:

    Y_k = X_k / G,   X_k = (1 + r_k)·S1_k,
    Y_k = var(f1 - r_k·f2) - (1 + r_k²)·σ_RN² - (1 - r_k)²·σ_B²

with ``S1_k`` the first flat's level above bias and ``r_k = S1_k/S2_k``. The line
goes through the origin, because the noise terms are subtracted. The variance of
a sample variance of ``n`` pixels is ``2Y²/n``, so the least-squares weights of
the pairs are ``1/X²`` and the fitted slope is the mean of the pairs' ``Y/X``.
That mean is made robust by rejecting, iteratively, pairs whose ``Y/X`` lies
more than ``reject_sigma`` robust standard deviations (1.4826 MAD) from the
median of the others: the pair whose twilight gradient changed, whose levels
could not be matched, or that caught a satellite.

Pure: frames in, a :class:`PhotonTransfer` out; nothing is read or written.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from nightlog.errors import ReductionError, ShapeMismatchError
from nightlog.reduction.characterise import Frame, _values, _variance
from nightlog.sections import Section

__all__ = ["PhotonTransfer", "PhotonTransferPair", "gain_from_photon_transfer"]

_MAD_TO_SIGMA = 1.482602218505602


@dataclass(frozen=True)
class PhotonTransferPair:
    """One pair of flats on the photon transfer curve (ADU and ADU²)."""

    #: Indices of the two flats in the input sequence.
    first: int
    second: int
    #: Mean levels above bias of the two flats.
    level1: float
    level2: float
    #: ``X = (1 + r)·S1``: the signal the shot variance of the difference grows with.
    signal: float
    #: ``Y``: the variance of the scaled difference less the read- and bias-noise terms.
    shot_variance: float
    #: Whether the robust fit kept the pair.
    used: bool

    @property
    def gain(self) -> float:
        """This pair's own gain ``X/Y`` (e⁻/ADU)."""
        return self.signal / self.shot_variance


@dataclass(frozen=True)
class PhotonTransfer:
    """The gain fitted over the flat pairs of a night.

    Attributes
    ----------
    gain : float
        e⁻/ADU: the inverse of the fitted slope of ``Y`` against ``X``.
    gain_err : float
        Its standard error (e⁻/ADU): the larger of what the pixels of the used
        pairs allow (the standard error of a variance of ``n`` pixels is
        ``sqrt(2/n)`` of it) and, with two pairs or more, the scatter of the
        pairs' ``Y/X`` divided by the square root of their number.
    pairs : tuple of PhotonTransferPair
        Every pair formed, used or rejected.
    """

    gain: float
    gain_err: float
    pairs: tuple[PhotonTransferPair, ...]

    @property
    def n_used(self) -> int:
        """Pairs the fit kept."""
        return sum(p.used for p in self.pairs)

    def stats(self) -> dict[str, float | int | list[float]]:
        """The figures a master flat records: ``gain_ptc``, ``gain_ptc_err``,
        ``gain_ptc_pairs`` (pairs used), ``gain_ptc_rejected`` and the levels (ADU)
        of the pairs used, ``gain_ptc_levels``."""
        return {"gain_ptc": self.gain, "gain_ptc_err": self.gain_err,
                "gain_ptc_pairs": self.n_used,
                "gain_ptc_rejected": len(self.pairs) - self.n_used,
                "gain_ptc_levels": [round(p.level1, 2) for p in self.pairs if p.used]}


def _pair_by_level(levels: Sequence[float], tolerance: float) -> list[tuple[int, int]]:
    """Disjoint pairs of flats whose levels agree within ``tolerance`` (relative).

    The flats are taken in order of level and each is paired with the next one
    when they agree, so every pair is as close in level as the night allows and
    no flat is used twice (the pairs' differences stay independent).
    """
    order = sorted(range(len(levels)), key=lambda i: levels[i])
    pairs: list[tuple[int, int]] = []
    k = 0
    while k + 1 < len(order):
        a, b = order[k], order[k + 1]
        mean = 0.5 * (levels[a] + levels[b])
        if abs(levels[a] - levels[b]) <= tolerance * mean:
            pairs.append((min(a, b), max(a, b)))
            k += 2
        else:
            k += 1
    return pairs


def _robust_keep(ratios: npt.NDArray[np.float64], reject_sigma: float) -> npt.NDArray[np.bool_]:
    """Pairs whose ``Y/X`` lies within ``reject_sigma`` robust sigmas of the median of
    the kept ones, iterated until nothing changes (three pairs at least to judge)."""
    keep = np.ones(ratios.size, dtype=bool)
    while keep.sum() >= 3:
        kept = ratios[keep]
        centre = float(np.median(kept))
        spread = _MAD_TO_SIGMA * float(np.median(np.abs(kept - centre)))
        if not spread > 0:
            break
        new = np.abs(ratios - centre) <= reject_sigma * spread
        if np.array_equal(new, keep) or new.sum() < 2:
            break
        keep = new
    return keep


def gain_from_photon_transfer(
    flats: Sequence[Frame],
    *,
    master_bias: Frame,
    read_noise_adu: float,
    master_bias_noise_adu: float = 0.0,
    region: str | Section | None = None,
    level_tolerance: float = 0.2,
    reject_sigma: float = 4.0,
    clip_sigma: float | None = 5.0,
) -> PhotonTransfer:
    """Gain in e⁻/ADU by photon transfer over all usable pairs of ``flats``.

    Parameters
    ----------
    flats : sequence of CCDData or array_like
        Raw (or overscan-corrected) flats of one detector and filter, ADU, well
        below saturation. Masked pixels are left out.
    master_bias : CCDData or array_like
        The master bias subtracted from every flat.
    read_noise_adu : float
        Read noise of one frame in ADU (from a pair of biases, the profile or the
        header); its variance is subtracted from every pair.
    master_bias_noise_adu : float, optional
        Per-pixel noise of the master bias (``σ_RN/√N``); it enters as
        ``(1 - r)²·σ_B²`` only.
    region : str or tuple of slice, optional
        Where to measure: a flat, well-exposed part of the chip.
    level_tolerance : float, optional
        Two flats form a pair when their levels differ by at most this fraction
        of their mean level. Default 0.2.
    reject_sigma : float, optional
        Pairs whose ``Y/X`` lies further than this many robust standard
        deviations from the median of the pairs are left out of the fit. Default 4.
    clip_sigma : float, optional
        Outlier rejection within each difference image (cosmic rays, stars),
        in standard deviations; ``None`` keeps every pixel. Default 5.

    Returns
    -------
    PhotonTransfer
        The gain, its standard error and every pair.

    Raises
    ------
    ReductionError
        Fewer than two flats; no two flats within the level tolerance; a flat
        whose level above bias is not positive; a negative read noise; or no pair
        whose variance exceeds its read-noise term (flats too faint).
    ShapeMismatchError
        Frames of different shapes.
    """
    if len(flats) < 2:
        raise ReductionError(f"photon transfer needs at least two flats, not {len(flats)}")
    if not read_noise_adu >= 0:
        raise ReductionError(f"read_noise_adu must be >= 0, not {read_noise_adu!r}")
    if not level_tolerance >= 0:
        raise ReductionError(f"level_tolerance must be >= 0, not {level_tolerance!r}")
    bias = _values(master_bias, region)
    signals: list[npt.NDArray[np.float64]] = []
    for frame in flats:
        values = _values(frame, region)
        if values.shape != bias.shape:
            raise ShapeMismatchError(
                f"flat of shape {values.shape} against a master bias of {bias.shape}")
        # float32 signals: a night of large flats held at half the memory; the
        # statistics below accumulate in float64.
        signals.append((values - bias).astype(np.float32))
    levels = [float(np.nanmean(s, dtype=np.float64)) for s in signals]
    for i, level in enumerate(levels):
        if not level > 0:
            raise ReductionError(f"flat {i}: level above bias {level} is not positive")
    pairs = _pair_by_level(levels, level_tolerance)
    if not pairs:
        raise ReductionError(
            f"no two of the {len(flats)} flats have levels within {level_tolerance:.0%} "
            f"of each other (levels {[round(v, 1) for v in levels]} ADU)")
    measured: list[tuple[int, int, float, float, float, float]] = []
    # Standard error of each pair's Y/X: that of a variance of n pixels, sqrt(2/n)
    # relative to the whole variance of the difference, read noise included.
    ratio_err: list[float] = []
    for a, b in pairs:
        s1, s2 = signals[a], signals[b]
        good = np.isfinite(s1) & np.isfinite(s2)
        v1, v2 = s1[good].astype(np.float64), s2[good].astype(np.float64)
        level1, level2 = float(np.mean(v1)), float(np.mean(v2))
        ratio = level1 / level2
        var_diff = _variance(v1 - ratio * v2, clip_sigma)
        noise = (1.0 + ratio**2) * read_noise_adu**2 + (1.0 - ratio) ** 2 * \
            master_bias_noise_adu**2
        shot = var_diff - noise
        if shot > 0:
            measured.append((a, b, level1, level2, (1.0 + ratio) * level1, shot))
            ratio_err.append(math.sqrt(2.0 / int(good.sum())) * var_diff
                             / ((1.0 + ratio) * level1))
    if not measured:
        raise ReductionError("no pair of flats has a variance above its read-noise term: "
                             "the flats are too faint")
    ratios = np.array([m[5] / m[4] for m in measured])
    keep = _robust_keep(ratios, reject_sigma)
    slope = float(np.mean(ratios[keep]))
    gain = 1.0 / slope
    n_used = int(keep.sum())
    expected = math.sqrt(float(np.sum(np.array(ratio_err)[keep] ** 2))) / n_used
    slope_err = expected
    if n_used >= 2:
        # The scatter of the pairs, when it exceeds what their pixels allow (a
        # changing illumination, non-linearity), is the honest error.
        slope_err = max(expected, float(np.std(ratios[keep], ddof=1)) / math.sqrt(n_used))
    return PhotonTransfer(
        gain=gain, gain_err=gain * slope_err / slope,
        pairs=tuple(PhotonTransferPair(first=a, second=b, level1=l1, level2=l2, signal=x,
                                       shot_variance=y, used=bool(k))
                    for (a, b, l1, l2, x, y), k in zip(measured, keep, strict=True)))
