"""Master calibration frames: bias, dark (as a rate) and flat.

Each builder reads its frames once through :func:`~nightlog.reduction.combine.combine`
(so any stack size works within the memory limit), applies the earlier
calibrations on the way in, and returns a
:class:`~nightlog.reduction.master_frame.MasterResult`: the master's frame, bit plane
and statistics. How the frames are combined is a
:class:`~nightlog.reduction.master_options.CombineOptions`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt
from astropy import units as u
from astropy.nddata import CCDData

from nightlog.errors import CombineError
from nightlog.reduction.bias_share import bias_error_size, bias_share
from nightlog.reduction.calibrate import subtract_bias, subtract_dark
from nightlog.reduction.combine import CombineResult, combine
from nightlog.reduction.dark_plane import calibrated_dark_uncertainty
from nightlog.reduction.flat_plane import flat_uncertainty
from nightlog.reduction.flat_response import dark_region
from nightlog.reduction.hot_limit import hot_limit, record_hot_limit
from nightlog.reduction.mask import MASK_DTYPE, MaskBit
from nightlog.reduction.master_frame import (
    MasterResult,
    combined_unit,
    master_frame,
    no_data_flags,
    robust_statistics,
)
from nightlog.reduction.master_options import CombineOptions
from nightlog.reduction.read_noise_map import noisy_pixels, read_noise_map
from nightlog.reduction.rejection import Method
from nightlog.reduction.scaling import RegionLike, ScaleStat, region_level, resolve_region
from nightlog.reduction.stack import FrameInput, FrameSteps, Prepare
from nightlog.reduction.step_summary import sampled_frame_statistics

__all__ = [
    "DEFAULT_FLAT_MIN",
    "make_master_bias",
    "make_master_dark",
    "make_master_flat",
]

#: Normalised flat values below this are not trusted: set to 1 and flagged DEAD (a
#: pixel) or UNILLUMINATED (a region: the vignetted edge of the field).
DEFAULT_FLAT_MIN = 0.1

#: A step of a master's preparation that needs the frame's place in the stack.
IndexedStep = Callable[[CCDData, int], CCDData]


def _chain(plain: Sequence[Prepare | None], indexed: Sequence[IndexedStep | None] = ()
           ) -> FrameSteps | None:
    """The ``plain`` steps (the frame alone), then the ``indexed`` ones (the frame and
    its index), as one preparation that :func:`combine` may run on several frames at
    once."""
    def of_frame(step: Prepare) -> IndexedStep:
        return lambda ccd, _i: step(ccd)

    steps = ([of_frame(s) for s in plain if s is not None]
             + [s for s in indexed if s is not None])
    return FrameSteps(tuple(steps)) if steps else None


def _run(frames: Sequence[FrameInput], options: CombineOptions, prepare: FrameSteps | None,
         scale: Sequence[float] | ScaleStat | None = None,
         scale_region: RegionLike = None, offset_response: float | None = None
         ) -> CombineResult:
    o = options
    return combine(frames, method=o.method, clip=o.clip, nlow=o.nlow, nhigh=o.nhigh,
                   scale=scale, scale_region=scale_region, prepare=prepare,
                   memory_limit=o.memory_limit, scratch_dir=o.scratch_dir, threads=o.threads,
                   frame_stat=sampled_frame_statistics, offset_response=offset_response)


def _read_noise_uncertainty(result: CombineResult, method: Method, read_noise_adu: float
                            ) -> npt.NDArray[np.float32]:
    """A master bias's standard deviation from its frames' read noise (ADU): ``σ/√n``
    of the ``n`` values kept (the median's ``1.2533σ/√n``, the sum's ``σ√n``). The
    spread of five values of each pixel is itself uncertain by a third, and its
    ``ddof=0`` form is biased low (by ``√(4/5)`` for five)."""
    n = result.count.astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        if method == "sum":
            unc = np.float32(read_noise_adu) * np.sqrt(n)
        else:
            factor = 1.2533 if method == "median" else 1.0
            unc = np.float32(factor * read_noise_adu) / np.sqrt(n)
    return np.where(n > 0, unc, np.nan).astype(np.float32)


def make_master_bias(frames: Sequence[FrameInput], *, prepare: Prepare | None = None,
                     options: CombineOptions | None = None, noise_map: bool = False,
                     noisy_factor: float = 3.0,
                     quantisation_step: float | None = None,
                     read_noise_adu: float | None = None) -> MasterResult:
    """Combine bias frames into a master bias.

    Parameters
    ----------
    frames : sequence of ndarray, CCDData or FrameLoader
        Bias frames (ADU); never modified.
    prepare : callable or None
        Applied to each frame as read (e.g. overscan subtraction and trimming).
    options : CombineOptions or None
        Combination; default a one-pass MAD-clipped (3/3) average; give
        ``ClipSpec(spread='noise', light=False, ...)`` when the read noise is known.
    noise_map : bool
        Also measure each pixel's read noise (a second read of the frames, one
        at a time) and flag ``NOISY`` the pixels above ``noisy_factor`` × its
        median (CMOS random-telegraph pixels).
    noisy_factor : float
        Threshold of NOISY, in medians of the map.
    quantisation_step : float or None
        ADU between converter values; its variance is taken out of the map.
    read_noise_adu : float or None
        The frames' read noise (ADU, e.g. measured on a pair of them): the
        master's uncertainty is then it over ``√n`` of the values kept (without a
        read-noise map), instead of the spread of each pixel's values.

    Returns
    -------
    MasterResult
        Master in ADU; ``level`` its median, ``noise`` its robust standard
        deviation; pixels where nothing survived carry ``NO_DATA`` (value NaN);
        with ``noise_map`` the map in ``read_noise_map``.

    Raises
    ------
    CombineError, ShapeMismatchError, UnreadableFileError
        As :func:`combine`.
    """
    options = options or CombineOptions()
    result = _run(frames, options, _chain([prepare]))
    level, noise = robust_statistics(result.data)
    flags = no_data_flags(result)
    modelled = (_read_noise_uncertainty(result, options.method, read_noise_adu)
                if read_noise_adu is not None and read_noise_adu > 0 and not noise_map
                else None)
    rn_map, n_noisy = None, 0
    if noise_map:
        rn_map = read_noise_map(frames, result.data, prepare=prepare,
                                quantisation_step=quantisation_step)
        noisy = noisy_pixels(rn_map, factor=noisy_factor) & ~result.mask
        flags[noisy] |= MASK_DTYPE(MaskBit.NOISY)
        n_noisy = int(np.count_nonzero(noisy))
    ccd = master_frame(result, combined_unit(result), flags, f"Master bias of {len(frames)} frames",
                  uncertainty=modelled)
    ccd.header["IMAGETYP"] = "MASTER BIAS"
    if rn_map is not None:
        ccd.header["NNOISYPX"] = (n_noisy, f"NOISY: read noise > {noisy_factor:g}x median")
    return MasterResult(ccd=ccd, n_frames=len(frames), level=level, noise=noise,
                        frame_stats=list(result.frame_stats), scales=result.scales,
                        read_noise_map=rn_map, noisy_pixels=n_noisy)


def _exposures(exptimes: Sequence[float] | None, n: int, what: str) -> list[float]:
    if exptimes is None or len(exptimes) != n:
        raise CombineError(f"{what}: {n} exposure times are needed, got "
                           f"{None if exptimes is None else len(exptimes)}")
    values = [float(t) for t in exptimes]
    if not all(np.isfinite(t) and t > 0 for t in values):
        raise CombineError(f"{what}: exposure times must be finite and > 0 s, got {values}")
    return values


def make_master_dark(frames: Sequence[FrameInput], exptimes: Sequence[float], *,
                     bias: CCDData | None = None, prepare: Prepare | None = None,
                     scale_to_rate: bool = True, hot_threshold: float | None = None,
                     hot_nsigma: float = 5.0,
                     options: CombineOptions | None = None) -> MasterResult:
    """Combine dark frames into a dark-current rate (or a fixed-exposure dark).

    Parameters
    ----------
    frames : sequence of ndarray, CCDData or FrameLoader
        Dark frames (ADU); never modified.
    exptimes : sequence of float
        Exposure (dark) time of each frame, seconds, > 0.
    bias : CCDData or None
        Master bias subtracted from each frame (after ``prepare``).
    prepare : callable or None
        Applied to each frame as read, before the bias subtraction.
    scale_to_rate : bool
        ``True``: divide each bias-subtracted frame by its exposure and combine
        to a rate in ADU/s. ``False``: for cameras whose dark signal does not
        scale with time, combine as is to a master at the one common exposure
        (``EXPTIME`` in the header).
    hot_threshold : float or None
        Rate (ADU/s; ADU when not a rate) above which a pixel is HOT; default a
        robust ``median + hot_nsigma * 1.4826 MAD`` of the master.
    hot_nsigma : float
        Robust threshold when ``hot_threshold`` is None.
    options : CombineOptions or None
        Combination; default a one-pass MAD-clipped (3/3) average.

    Returns
    -------
    MasterResult
        ``level`` is the median rate, ``hot_pixels`` the number flagged HOT.

    Raises
    ------
    CombineError
        Wrong number of exposure times, non-positive ones, or different ones with
        ``scale_to_rate=False``; and as :func:`combine`.
    """
    times = _exposures(exptimes, len(frames), "make_master_dark")
    if not scale_to_rate and len(set(times)) > 1:
        raise CombineError(f"darks that do not scale must share one exposure, got {times}")
    subtract = None if bias is None else _bias_step(bias)
    scale = [1.0 / t for t in times] if scale_to_rate else None
    options = options or CombineOptions()
    bias_error = None if bias is None else bias_error_size(bias)
    result = _run(frames, options, _chain([prepare, subtract]), scale,
                  offset_response=bias_error)
    flags = no_data_flags(result)
    values = result.data  # NaN where nothing survived (CombineResult): no masked copy
    # The robust limit found once: recorded, the frames' bit planes read it back.
    limit = hot_limit(values, nsigma=hot_nsigma) if hot_threshold is None else hot_threshold
    hot = (values > limit) & ~result.mask
    flags[hot] |= MASK_DTYPE(MaskBit.HOT)
    level, noise = robust_statistics(result.data)
    unit = combined_unit(result) / u.s if scale_to_rate else combined_unit(result)
    ccd = master_frame(result, unit, flags, f"Master dark of {len(frames)} frames, "
                  + ("rate per second" if scale_to_rate else f"{times[0]:g} s exposure"),
                  uncertainty=None if bias is None else calibrated_dark_uncertainty(
                      result, bias, options.method, options.clip, bias_error=bias_error))
    ccd.header["IMAGETYP"] = "MASTER DARK"
    ccd.header["EXPTIME"] = (1.0 if scale_to_rate else times[0], "s; 1 for a dark rate")
    if hot_threshold is None:
        record_hot_limit(ccd.header, hot_nsigma, limit)
    share = None if bias is None else bias_share(result, flags == 0)
    return MasterResult(ccd=ccd, n_frames=len(frames), level=level, noise=noise,
                        frame_stats=list(result.frame_stats), scales=result.scales,
                        hot_pixels=int(np.count_nonzero(hot)), bias_share=share)


def _own_mask(before: CCDData, after: CCDData) -> CCDData:
    """``after`` with the mask and bit plane of ``before``.

    A master's defects (a dark's HOT pixels, say) are flagged in the products it
    calibrates, not carried into the frames of another master: a masked pixel is
    left out of the stack, and a flat with its hot pixels left out would have no
    value there. Its *values* are still subtracted, and a pixel where the master
    has none (NaN) stays NaN, so the stack leaves it out.
    """
    return CCDData(after.data, unit=after.unit, uncertainty=after.uncertainty,
                   mask=None if before.mask is None else np.array(before.mask, copy=True),
                   flags=None if before.flags is None else np.array(before.flags, copy=True),
                   meta=after.meta)


def _values_of(master: CCDData) -> CCDData:
    """A master's values and header only, for the frames of another master: the stack
    combines values and finds its own uncertainty from their scatter, and the frame
    keeps its own mask (:func:`_own_mask`), so neither is propagated per frame."""
    return CCDData(master.data, unit=master.unit, meta=master.meta)


def _bias_step(bias: CCDData) -> Prepare:
    bias = _values_of(bias)

    def step(ccd: CCDData) -> CCDData:
        return _own_mask(ccd, subtract_bias(ccd, bias))

    return step


def _dark_step(dark: CCDData, times: Sequence[float]) -> IndexedStep:
    unit = u.Unit(dark.unit)
    is_rate = unit.is_equivalent(u.adu / u.s) or unit.is_equivalent(u.electron / u.s)
    dark_exposure = None if is_rate else float(dark.header.get("EXPTIME", 0.0))
    dark = _values_of(dark)

    def step(ccd: CCDData, i: int) -> CCDData:
        return _own_mask(ccd, subtract_dark(ccd, dark, dark_exposure=dark_exposure,
                                            data_exposure=times[i]))

    return step


def make_master_flat(frames: Sequence[FrameInput], *, bias: CCDData | None = None,
                     dark: CCDData | None = None, exptimes: Sequence[float] | None = None,
                     prepare: Prepare | None = None, scale_region: RegionLike = None,
                     scale_stat: ScaleStat = "median", min_value: float = DEFAULT_FLAT_MIN,
                     options: CombineOptions | None = None) -> MasterResult:
    """Combine flat frames into a flat normalised to 1 in a region.

    Each prepared, bias- and dark-subtracted flat is divided by its own median (or
    mode) *in* ``scale_region`` before combining, and the combined flat by its level
    there (the whole frame would mis-scale flats whose gradient changes). Its
    uncertainty is the frames' noise model through the combination, with the
    bias's and dark's shares (:func:`~nightlog.reduction.flat_plane.flat_uncertainty`).

    Parameters
    ----------
    frames : sequence of ndarray, CCDData or FrameLoader
        Flat frames of one filter (ADU); never modified.
    bias : CCDData or None
        Master bias, subtracted first.
    dark : CCDData or None
        Master dark (a rate in ADU/s, or a fixed-exposure dark with ``EXPTIME``),
        scaled to each flat's exposure and subtracted; needs ``exptimes``.
    exptimes : sequence of float or None
        Exposure of each flat, seconds (needed with ``dark``).
    prepare : callable or None
        Applied to each frame as read, before bias and dark.
    scale_region : str, pair of slices or None
        FITS section or slices where levels are measured; default the central
        half of each axis.
    scale_stat : {'median', 'mode'}
        Level statistic.
    min_value : float
        Normalised values below this (default 0.1), and pixels where nothing
        survived, are set to 1 (dividing by the flat leaves them unchanged) and
        flagged ``DEAD`` (``NO_DATA`` for the latter), ``UNILLUMINATED`` where many
        neighbours are below it too (:func:`~nightlog.reduction.flat_response.dark_region`).
    options : CombineOptions or None
        Combination; default a one-pass MAD-clipped (3/3) average.

    Returns
    -------
    MasterResult
        Dimensionless flat; ``level`` the median raw level (ADU) of the frames,
        ``noise`` the robust scatter of the flat, ``low_pixels`` the count reset
        to 1.

    Raises
    ------
    CombineError
        A dark without exposure times, a region level not positive; as :func:`combine`.
    SectionError
        A malformed region.
    """
    steps: list[Prepare | None] = [prepare]
    if bias is not None:
        steps.append(_bias_step(bias))
    darken = None if dark is None else _dark_step(
        dark, _exposures(exptimes, len(frames), "make_master_flat with a dark"))
    options = options or CombineOptions()
    result = _run(frames, options, _chain(steps, [darken]), scale_stat, scale_region)
    # The combination is NaN where nothing survived already: no masked copy.
    norm = region_level(result.data,
                        resolve_region(scale_region, result.data.shape), scale_stat)
    if not norm > 0:
        raise CombineError(f"the combined flat's {scale_stat} in the region is {norm}")
    data = np.divide(result.data, np.float32(norm), dtype=np.float32)
    unc = flat_uncertainty(result, options.method, options.clip, bias=bias, dark=dark,
                           exptimes=exptimes)
    unc /= np.float32(norm)  # a new array of its own
    flags = no_data_flags(result)
    with np.errstate(invalid="ignore"):
        low = ~(data >= min_value) & ~result.mask
    # Below the limit with many neighbours is the field's dark edge (vignetted, not
    # reached by light); a pixel, a pair or a column there is a defect.
    dark_field = dark_region(low)
    flags[low & dark_field] |= MASK_DTYPE(MaskBit.UNILLUMINATED)
    flags[low & ~dark_field] |= MASK_DTYPE(MaskBit.DEAD)
    reset = low | result.mask
    data[reset] = 1.0
    unc[reset] = 0.0
    # The kept pixels in memory order: all of them, without the copy, when none was reset.
    _, noise = robust_statistics(data[~reset] if reset.any() else data.reshape(-1))
    ccd = master_frame(result, u.dimensionless_unscaled, flags,
                  f"Master flat of {len(frames)} frames, normalised by the {scale_stat} "
                  f"of the region", data=data, uncertainty=unc)
    ccd.header["IMAGETYP"] = "MASTER FLAT"
    levels = [1.0 / s for s in result.scales]
    return MasterResult(ccd=ccd, n_frames=len(frames), level=float(np.median(levels)),
                        noise=noise, frame_stats=list(result.frame_stats),
                        scales=result.scales, low_pixels=int(np.count_nonzero(low)))

