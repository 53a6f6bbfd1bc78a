"""The master a builder returns: its frame, its bit plane and its statistics.

A :class:`MasterResult` holds a new CCDData (float32 data,
:class:`~astropy.nddata.StdDevUncertainty`, the boolean mask and, as ``flags``, the
``uint16`` :class:`~nightlog.reduction.mask.MaskBit` plane that
:func:`~nightlog.reduction.products.to_hdulist` stores) plus the statistics a
calibration database records. The functions here make that frame from a
combination (:class:`~nightlog.reduction.combine.CombineResult`) and measure it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from astropy import units as u
from astropy.nddata import CCDData, StdDevUncertainty

from nightlog.errors import CombineError
from nightlog.reduction.characterise import FrameStatistics
from nightlog.reduction.combine import CombineResult
from nightlog.reduction.mask import MASK_DTYPE, MaskBit
from nightlog.reduction.order_statistics import median
from nightlog.reduction.step_summary import summary_sample

__all__ = [
    "MasterResult",
    "combined_unit",
    "master_frame",
    "no_data_flags",
    "robust_statistics",
]


@dataclass(frozen=True)
class MasterResult:
    """A master frame and its statistics.

    Attributes
    ----------
    ccd : CCDData
        The master: data, uncertainty, boolean mask and the ``uint16`` MaskBit
        plane as ``flags`` (NO_DATA, HOT, DEAD, UNILLUMINATED).
    n_frames : int
        Frames combined.
    level : float
        Bias: median level (ADU). Dark: median rate (ADU/s, or ADU for a
        fixed-exposure dark). Flat: median of the frames' levels before
        normalisation (ADU).
    noise : float
        Robust standard deviation (1.4826 MAD) of the master, in its unit.
    frame_stats : list of FrameStatistics
        Statistics of each prepared input frame (before scaling).
    scales : list of float
        Factor applied to each frame before combining.
    hot_pixels : int
        Dark only: pixels flagged HOT.
    low_pixels : int
        Flat only: pixels below the threshold, set to 1 and flagged DEAD (or
        UNILLUMINATED, where the whole neighbourhood is below it).
    read_noise_map : ndarray of float32 or None
        Bias only, when asked: each pixel's read noise (ADU), see
        :func:`~nightlog.reduction.read_noise_map.read_noise_map`.
    noisy_pixels : int
        Bias with a map: pixels flagged NOISY.
    bias_share : (float, float) or None
        Dark made with a master bias that has an uncertainty: the mean over its
        valid pixels of ``s``, how much the master falls per unit of the bias's
        error at each pixel (through the combination's rejection), and the mean
        of ``s²`` (s⁻¹ and s⁻² for a rate); the master's uncertainty then holds
        each pixel's ``s²σ_b²`` (see :mod:`~nightlog.reduction.bias_share`).
        ``None`` otherwise.
    """

    ccd: CCDData
    n_frames: int
    level: float
    noise: float
    frame_stats: list[FrameStatistics] = field(default_factory=list)
    scales: list[float] = field(default_factory=list)
    hot_pixels: int = 0
    low_pixels: int = 0
    read_noise_map: npt.NDArray[np.float32] | None = None
    noisy_pixels: int = 0
    bias_share: tuple[float, float] | None = None


def robust_statistics(values: npt.NDArray[np.float32]) -> tuple[float, float]:
    """Median and 1.4826 MAD of a master, on the history's subsample (provenance)."""
    finite = np.asarray(summary_sample(values), dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        raise CombineError("the master has no valid pixel")
    centre = median(finite)
    return centre, 1.482602218505602 * median(np.abs(finite - centre), overwrite=True)


def combined_unit(result: CombineResult) -> u.UnitBase:
    """The unit of the combined frames: electrons for frames assembled from amplifiers
    (``BUNIT = 'electron'``), else ADU."""
    return u.electron if str(result.header.get("BUNIT", "")).strip() == "electron" else u.adu


def master_frame(result: CombineResult, unit: u.UnitBase, flags: npt.NDArray[np.uint16],
                 history: str, data: npt.NDArray[np.float32] | None = None,
                 uncertainty: npt.NDArray[np.float32] | None = None) -> CCDData:
    """A master's CCDData from its combination: a new frame, ``result`` untouched; its
    data and uncertainty are the combination's arrays (or those given), not copies.

    Parameters
    ----------
    result : CombineResult
        The combined frames.
    unit : astropy.units.UnitBase
        The master's unit (ADU, ADU/s, electrons, dimensionless).
    flags : ndarray of uint16
        Its MaskBit plane; the boolean mask is where it is not 0.
    history : str
        A HISTORY card saying what the master is.
    data, uncertainty : ndarray of float32 or None
        Values and standard deviation (in ``unit``) replacing the combination's.
    """
    header = result.header.copy()
    header["HISTORY"] = history
    # The combination's arrays (or those given) were made for this master by its
    # builder: its uncertainty is taken as it is, like its data.
    return CCDData(result.data if data is None else data, unit=unit, mask=flags != 0,
                   flags=flags,
                   uncertainty=StdDevUncertainty(
                       result.uncertainty if uncertainty is None else uncertainty,
                       copy=False),
                   meta=header)


def no_data_flags(result: CombineResult) -> npt.NDArray[np.uint16]:
    """A master's first MaskBit plane: NO_DATA where nothing survived the combination."""
    flags = np.zeros(result.data.shape, dtype=MASK_DTYPE)
    flags[result.mask] |= MASK_DTYPE(MaskBit.NO_DATA)
    return flags
