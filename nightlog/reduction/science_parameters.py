"""What :func:`~nightlog.reduction.science.reduce_science` is asked to do: the
camera's numbers and the settings of each step, as frozen values a profile fills
in and a product's provenance records (their digest is the product's ``NLPARSHA``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from nightlog.errors import ReductionError
from nightlog.reduction.cosmics import CosmicRaySettings
from nightlog.reduction.dark_temperature import DarkTemperature
from nightlog.reduction.overscan import OverscanMethod

__all__ = ["OUTPUT_UNITS", "OverscanParameters", "ScienceParameters"]

#: Units a reduced frame can be written in.
OUTPUT_UNITS = ("adu", "electron")


@dataclass(frozen=True)
class OverscanParameters:
    """Overscan subtraction (see :func:`~nightlog.reduction.overscan.subtract_overscan`).

    Attributes
    ----------
    region : str or None
        FITS section of the overscan; ``None`` reads ``BIASSEC``.
    skip_columns : int
        Overscan columns next to the data to ignore (residual charge, light leak).
    method : {'median', 'mean', 'clipped_mean'}
        Statistic per row.
    model_degree : int or None
        Degree of a polynomial in the row number fitted to the levels; ``None``
        subtracts the levels themselves.
    per_row : bool
        One level per row (``True``) or one for the frame.
    niterate, low_reject, high_reject : int, float, float
        Rejection of outlying rows from the model fit (IRAF's names; 0 passes:
        none).
    """

    region: str | None = None
    skip_columns: int = 0
    method: OverscanMethod = "median"
    model_degree: int | None = None
    per_row: bool = True
    niterate: int = 0
    low_reject: float = 3.0
    high_reject: float = 3.0


@dataclass(frozen=True)
class ScienceParameters:
    """Everything :func:`reduce_science` needs to know beyond the frames.

    Attributes
    ----------
    gain : float
        e-/ADU.
    read_noise : float
        e- per pixel.
    saturation : float or None
        Raw level (ADU, bias included) at or above which a pixel is SATURATED;
        ``None``: not checked.
    exptime : float or None
        Seconds the dark current accumulated in this frame (dark time); ``None``
        reads ``EXPTIME`` from the raw header.
    overscan : OverscanParameters or None
        ``None`` switches overscan subtraction off.
    trim : str or None
        FITS section to keep; ``None`` uses the header's ``TRIMSEC`` or ``DATASEC``
        and does not trim when it has neither.
    dark_is_rate : bool or None
        Whether the master dark is a rate (per second); ``None`` decides from its unit.
    dark_exposure : float or None
        Exposure (s) of a fixed-exposure master dark.
    darks_scale : bool
        Scale the dark by exposure time; ``False`` for cameras whose dark does not
        grow linearly (the master dark must then match the exposure).
    dark_temperature : DarkTemperature or None
        The master dark is of another set temperature: scale it by this factor
        first (:func:`~nightlog.reduction.dark_temperature.scale_dark_temperature`);
        ``None``: used as it is.
    flat_norm : float or None
        Value the master flat is divided by before use; masters are normalised to 1,
        hence the default. ``None`` re-normalises by the flat's mean (ccdproc).
    flat_min : float or None
        Normalised-flat values below this are raised to it before dividing.
    hot_nsigma : float
        A pixel of the master dark above median + ``hot_nsigma`` robust σ is HOT.
    hot_threshold : float or None
        Absolute HOT threshold in the master dark's units (replaces ``hot_nsigma``).
    dead_low : float
        A pixel of the master flat below ``dead_low`` × the mean response of its
        neighbourhood (a block of ``RESPONSE_BOX`` pixels) is DEAD.
    dead_high : float or None
        If given, a flat pixel above ``dead_high`` × its neighbourhood's is DEAD too.
    low_response : float or None
        A pixel where the flat's large-scale response is below ``low_response`` ×
        its median is UNILLUMINATED (vignetted: flat-fielded, not a defect);
        ``None``: not flagged.
    cosmic_rays : CosmicRaySettings
        Cosmic-ray detection settings (``enabled=False`` skips it).
    unit : {'adu', 'electron'}
        Unit of the reduced frame: ADU (``GAIN`` then states the gain used), or
        electrons (data and uncertainty multiplied by ``gain``; ``GAIN = 1``).
    quantisation_step : float or None
        ADU between the converter's stored values (16 for 12 bits shifted to 16);
        adds ``step**2/12`` ADU² to the variance, and raw values off the step are
        counted and said. ``None``: a full 16-bit converter, nothing added.
    dark_bias_share : float or None
        The master dark was made with the same master bias: its share ``s`` of the
        bias's error averaged over the pixels (``1/t`` s⁻¹ for a rate of darks of
        one exposure ``t``, 1 for a fixed exposure; :mod:`~nightlog.reduction.bias_share`).
        The frame then carries the bias's error ``(1 - k·s)`` times, ``k`` the
        dark's scale (:func:`~nightlog.reduction.calibrate.subtract_dark`).
        ``None``: independent.
    dark_bias_share_sq : float or None
        The mean of ``s²`` (s⁻² for a rate) the master dark's uncertainty does not
        hold already: 0 when it holds each pixel's ``s²σ_b²``; ``None``: the square
        of ``dark_bias_share`` (an older master of darks of one exposure).
    """

    gain: float
    read_noise: float
    saturation: float | None
    exptime: float | None = None
    overscan: OverscanParameters | None = None
    trim: str | None = None
    dark_is_rate: bool | None = None
    dark_exposure: float | None = None
    darks_scale: bool = True
    dark_temperature: DarkTemperature | None = None
    flat_norm: float | None = 1.0
    flat_min: float | None = None
    hot_nsigma: float = 5.0
    hot_threshold: float | None = None
    dead_low: float = 0.5
    dead_high: float | None = None
    low_response: float | None = 0.5
    cosmic_rays: CosmicRaySettings = field(default_factory=CosmicRaySettings)
    unit: str = "adu"
    quantisation_step: float | None = None
    dark_bias_share: float | None = None
    dark_bias_share_sq: float | None = None

    def __post_init__(self) -> None:
        if self.unit not in OUTPUT_UNITS:
            raise ReductionError(f"unit must be one of {', '.join(OUTPUT_UNITS)}, "
                                 f"not {self.unit!r}")
        if not (np.isfinite(self.gain) and self.gain > 0):
            raise ReductionError(f"gain must be positive (e-/ADU), not {self.gain!r}")
        if not (np.isfinite(self.read_noise) and self.read_noise >= 0):
            raise ReductionError(f"read noise must be >= 0 e-, not {self.read_noise!r}")
        if not 0 < self.dead_low < 1:
            raise ReductionError(f"dead_low must be in (0, 1), not {self.dead_low!r}")
        if self.dead_high is not None and not self.dead_high > 1:
            raise ReductionError(f"dead_high must be above 1, not {self.dead_high!r}")
        if self.low_response is not None and not 0 < self.low_response <= 1:
            raise ReductionError(
                f"low_response must be in (0, 1] or None, not {self.low_response!r}")
        if self.quantisation_step is not None and not (
                np.isfinite(self.quantisation_step) and self.quantisation_step >= 1):
            raise ReductionError("quantisation_step must be >= 1 ADU, not "
                                 f"{self.quantisation_step!r}")
        if not self.hot_nsigma > 0:
            raise ReductionError(f"hot_nsigma must be positive, not {self.hot_nsigma!r}")
