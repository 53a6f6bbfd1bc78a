"""Reduce one science frame: the lecture's recipe as a single pure function.

:func:`reduce_science` runs, in this order (``docs/reduction.md`` has the science):

1. **saturation** -- pixels at or above the saturation level are flagged on the
   *raw* values, before any arithmetic can move them off the level;
   non-finite raw values are flagged NO_DATA; with a quantisation step (a
   12- or 14-bit converter shifted to 16 bits) raw values that are not
   multiples of it are counted (``QSTEPOFF``) and said in HISTORY;
2. **overscan** -- subtract the per-row overscan level (optional);
3. **trim** -- keep the data section;
4. **bias** -- subtract the master bias;
5. **uncertainty** -- Poisson noise of everything collected (sky, sources *and*
   dark current: the bias-free counts in electrons) plus read noise (each
   pixel's own, from the master bias's read-noise map, when given) plus the
   quantisation variance ``step**2/12``, plus the master bias's variance;
6. **dark** -- subtract the master dark scaled by the exposure (adds its
   variance), first scaled to the frame's set temperature when it was taken at
   another (``params.dark_temperature``); with a second master dark, the two
   are interpolated to the frame's exposure
   (:func:`~nightlog.reduction.dark_interpolation.interpolate_dark`);
7. **flat** -- divide by the normalised master flat (relative errors add);
8. **bad pixels** -- HOT from the master dark, DEAD (a pixel far off its
   neighbourhood's response) and UNILLUMINATED (vignetted: the large-scale
   response low) from the master flat, and the bits the masters carry;
9. **cosmic rays** -- astroscrappy with the camera's gain, read noise and
   saturation, the known bad pixels as ``inmask`` and the propagated variance as
   ``invar`` (see :mod:`nightlog.reduction.cosmics`);
10. **unit** -- in electrons when ``params.unit = 'electron'``; ``GAIN``,
    ``RDNOISE`` and ``SATURATE`` then state what the data are
    (:func:`~nightlog.reduction.interchange.state_detector`).

A master given as ``None`` skips its step; the skip is recorded (``CALSKIP``
card and HISTORY) and in the step list, and the caller decides whether that is
acceptable. Every applied step writes its FITS keyword (``OVERSCAN``, ``TRIM``,
``ZEROCOR``, ``DARKCOR``, ``FLATCOR``, ``CRCOR``) and a HISTORY line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

import numpy as np
from astropy.nddata import CCDData, VarianceUncertainty

from nightlog.errors import ReductionError
from nightlog.reduction._cards import add_history, header_of, set_card
from nightlog.reduction._frame import new_frame
from nightlog.reduction.bad_pixels import (
    MasterPlane,
    bad_pixel_plane,
    count_bits,
)
from nightlog.reduction.calibrate import flat_correct, subtract_bias
from nightlog.reduction.cosmics import detect_cosmic_rays
from nightlog.reduction.interchange import as_output
from nightlog.reduction.mask import MASK_DTYPE, MaskBit, mask_saturated
from nightlog.reduction.overscan import subtract_overscan
from nightlog.reduction.science_dark import dark_parameters, master_dark_for, subtract_master_dark
from nightlog.reduction.science_parameters import OverscanParameters, ScienceParameters
from nightlog.reduction.science_record import ReducedFrame, StepRecorder
from nightlog.reduction.step_summary import summary_median
from nightlog.reduction.trim import trim_image
from nightlog.reduction.uncertainty import create_uncertainty
from nightlog.reduction.window import crop_to_window

__all__ = [
    "OverscanParameters",
    "ScienceParameters",
    "reduce_science",
]


def _exposure(raw: CCDData, params: ScienceParameters) -> float:
    if params.exptime is not None:
        return float(params.exptime)
    value = raw.meta.get("EXPTIME")
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ReductionError("no exposure time: give ScienceParameters.exptime or EXPTIME")
    return float(value)


def reduce_science(
    raw: CCDData,
    *,
    bias: CCDData | None,
    dark: CCDData | None,
    flat: CCDData | None,
    params: ScienceParameters,
    crops: Mapping[str, tuple[int, int, int, int]] | None = None,
    dark2: CCDData | None = None,
    read_noise_map: np.ndarray | None = None,
    masters: MasterPlane | None = None,
) -> ReducedFrame:
    """Reduce a raw science frame with the night's masters.

    Parameters
    ----------
    raw : CCDData
        Raw frame in ADU (uint16 or float), overscan still attached when
        ``params.overscan`` is set; or a frame assembled from amplifiers
        (:func:`~nightlog.reduction.amplifiers.assemble_amplifiers`: electrons,
        ``params.gain = 1``, ``NAMPS`` in the header), whose uncertainty is its read
        noise per pixel: only the Poisson term is added to it.
    bias : CCDData or None
        Master bias (trimmed shape); overscan-corrected when overscan subtraction is on.
    dark : CCDData or None
        Bias-subtracted master dark, a rate (ADU/s) or of ``params.dark_exposure``.
    flat : CCDData or None
        Master flat normalised to 1 (see ``params.flat_norm``).
    params : ScienceParameters
        Camera numbers and step settings.
    crops : mapping, optional
        For a subarray frame, by role (``bias``, ``dark``, ``flat``): the part
        ``(y0, y1, x0, x1)`` of that full-frame master (numpy, its pixels) covering
        the window. The master is cut to it
        (:func:`~nightlog.reduction.window.crop_to_window`) before it is applied;
        its bad pixels are found on the whole master, as for a full frame, and cut
        alike. A ``WINCROP<role letter>`` card and HISTORY record each crop.
    dark2 : CCDData or None
        A second fixed-exposure master dark, longer than ``dark``: the two are
        interpolated to the frame's exposure (glowing CMOS darks).
    read_noise_map : ndarray or None
        Each pixel's read noise in ADU (the master bias's ``RDNOISE``, trimmed
        shape); replaces ``params.read_noise`` in the variance and so in the
        cosmic-ray detection's ``invar``.
    masters : MasterPlane or None
        The bits of these masters found once for a batch of frames
        (:func:`~nightlog.reduction.bad_pixels.master_plane` with the same full
        masters, ``params`` and ``crops``); found here when ``None``.

    Returns
    -------
    ReducedFrame
        New frame, bit plane and step records; the inputs are not modified.

    Raises
    ------
    ShapeMismatchError
        A master does not have the trimmed frame's shape.
    ReductionError
        No exposure time for the dark, a step applied twice (the raw header already
        says so), a step cannot run on its inputs, or ``masters`` was found with
        other thresholds or crops.
    SectionError
        An overscan or trim section is malformed or off the image.
    """
    recorder = StepRecorder()
    crops = dict(crops or {})
    full_masters = {"bias": bias, "dark": dark, "flat": flat}
    bias, dark, flat = (crop_to_window(m, crops[role]) if m is not None and role in crops
                        else m for role, m in full_masters.items())
    # The second dark has the first's geometry, the read-noise map the bias's.
    if dark2 is not None and "dark" in crops:
        dark2 = crop_to_window(dark2, crops["dark"])
    if read_noise_map is not None and "bias" in crops:
        y0, y1, x0, x1 = crops["bias"]
        read_noise_map = np.array(read_noise_map[y0:y1, x0:x1], copy=True)
    data = np.asarray(raw.data)
    bits = np.zeros(data.shape, dtype=MASK_DTYPE)
    if raw.flags is not None and np.asarray(raw.flags).dtype.kind in "ui":
        bits |= np.asarray(raw.flags).astype(MASK_DTYPE)
    if raw.mask is not None:
        bits[np.asarray(raw.mask, dtype=bool)] |= MASK_DTYPE(MaskBit.UNSPECIFIED)

    def saturation() -> tuple[CCDData, Mapping[str, Any]]:
        if params.saturation is not None:
            bits[mask_saturated(data, params.saturation)] |= MASK_DTYPE(MaskBit.SATURATED)
        if data.dtype.kind == "f":
            bits[~np.isfinite(data)] |= MASK_DTYPE(MaskBit.NO_DATA)
        header = header_of(raw)
        nsat = int(np.count_nonzero(bits & MASK_DTYPE(MaskBit.SATURATED)))
        if params.saturation is not None:
            set_card(header, "SATLEVEL", float(params.saturation), "raw saturation level [ADU]")
            set_card(header, "NSATPIX", nsat, "raw pixels at or above SATLEVEL")
        summary: dict[str, Any] = {"saturated": nsat}
        if params.quantisation_step:
            summary["off_step"] = _off_step(data, params.quantisation_step, header)
        # The lecture's first move: float32 before any arithmetic (no uint16 overflow).
        # ``bits`` is this reduction's own plane, used by no later step: handed over.
        ccd = new_frame(raw, np.asarray(data, dtype=np.float32), header, mask=None,
                        flags=bits)
        return ccd, summary

    ccd = recorder.step("saturation", {"level": params.saturation}, saturation)

    if params.overscan is not None:
        ovs = params.overscan

        def overscan() -> tuple[CCDData, Mapping[str, Any]]:
            out = subtract_overscan(ccd, region=ovs.region, skip_columns=ovs.skip_columns,
                                    method=ovs.method, model_degree=ovs.model_degree,
                                    per_row=ovs.per_row, niterate=ovs.niterate,
                                    low_reject=ovs.low_reject, high_reject=ovs.high_reject)
            return out, {"mean_level": float(out.meta["OVSCLEV"])}

        ccd = recorder.step("overscan", asdict(ovs), overscan)
    else:
        recorder.skip("overscan", {}, "switched off")

    section = params.trim
    if section is None:
        section = next((str(ccd.meta[k]) for k in ("TRIMSEC", "DATASEC") if ccd.meta.get(k)),
                       None)
    if section is not None:
        trim_section = section

        def trim() -> tuple[CCDData, Mapping[str, Any]]:
            out = trim_image(ccd, trim_section)
            return out, {"shape": list(out.shape)}

        ccd = recorder.step("trim", {"section": section}, trim)
    else:
        recorder.skip("trim", {}, "no section given and none in the header")

    bias_free = params.overscan is not None
    if bias is not None:
        master_bias = _for_step(bias)

        def bias_step() -> tuple[CCDData, Mapping[str, Any]]:
            out = subtract_bias(ccd, master_bias)
            return out, {"median": _master_median(masters, "bias", master_bias)}

        ccd = recorder.step("bias", {}, bias_step)
        bias_free = True
    else:
        recorder.skip("bias", {}, "no master bias")

    # A frame assembled from amplifiers carries each pixel's read noise as its
    # uncertainty: only the Poisson term is added to it, never a second read noise.
    carried = raw.uncertainty is not None and "NAMPS" in raw.meta
    read_noise = 0.0 if carried else params.read_noise

    def uncertainty() -> tuple[CCDData, Mapping[str, Any]]:
        # Poisson from the bias-free counts, which still hold the dark current: its
        # shot noise stays in the frame after the dark's mean is subtracted.
        rn_map = (None if read_noise_map is None
                  else np.asarray(read_noise_map, dtype=np.float32) * np.float32(params.gain))
        out = create_uncertainty(ccd, gain=params.gain, read_noise=read_noise,
                                 add_to_existing=True, read_noise_map=rn_map,
                                 quantisation_step=params.quantisation_step)
        if not bias_free:
            add_history(out.meta, "Uncertainty overestimated: the bias level was not removed")
        return out, {"median_sigma": summary_median(out.uncertainty.array),
                     "bias_free": bias_free}

    ccd = recorder.step("uncertainty", {
        "gain": params.gain,
        "read_noise": "per pixel, carried by the frame" if carried else params.read_noise,
        "read_noise_map": read_noise_map is not None,
        "quantisation_step": params.quantisation_step},
        uncertainty)

    if dark is not None:
        exposure = _exposure(raw, params)
        master_dark, how = master_dark_for(dark, dark2, params, exposure)
        interpolated = dark2 is not None
        # The batch's median of the master dark holds for it unless scaled or interpolated.
        dark_median = _master_median(masters, "dark", dark) if master_dark is dark else None
        # The master dark's share of the master bias's error (made with the same
        # bias); a temperature-scaled dark is treated as independent (conservative).
        shared = (None if params.dark_bias_share is None or bias is None
                  or bias.uncertainty is None or params.dark_temperature is not None
                  else (bias.uncertainty.represent_as(VarianceUncertainty).array,
                        params.dark_bias_share,
                        (params.dark_bias_share ** 2 if params.dark_bias_share_sq is None
                         else params.dark_bias_share_sq)))

        # Its bits come in with the plane's, unless it holds another dark's (dark2).
        applied_dark = _for_step(master_dark) if master_dark is dark else master_dark

        def dark_step(bias_free_ccd: CCDData = ccd) -> tuple[CCDData, Mapping[str, Any]]:
            return subtract_master_dark(bias_free_ccd, applied_dark, params=params,
                                        exposure=exposure, interpolated=interpolated, how=how,
                                        shared_bias=shared, median=dark_median)

        ccd = recorder.step("dark", dark_parameters(params, exposure, interpolated), dark_step)
        dark = master_dark
    else:
        recorder.skip("dark", {"exptime": params.exptime}, "no master dark")

    if flat is not None:
        master_flat = _for_step(flat, keep_mask=True)

        def flat_step() -> tuple[CCDData, Mapping[str, Any]]:
            out = flat_correct(ccd, master_flat, min_value=params.flat_min,
                               norm_value=params.flat_norm)
            return out, {"median": _master_median(masters, "flat", master_flat)}

        ccd = recorder.step("flat", {"norm": params.flat_norm, "min_value": params.flat_min},
                            flat_step)
    else:
        recorder.skip("flat", {}, "no master flat")

    def bad_pixels() -> tuple[CCDData, Mapping[str, Any]]:
        plane = bad_pixel_plane(ccd, bias=full_masters["bias"], dark=full_masters["dark"],
                                flat=full_masters["flat"], params=params, crops=crops,
                                masters=masters)
        header = header_of(ccd)
        counts = count_bits(plane)
        set_card(header, "NHOTPIX", counts["hot"], "HOT pixels (master dark)")
        set_card(header, "NDEADPIX", counts["dead"], "DEAD pixels (master flat)")
        set_card(header, "NVIGNPIX", counts["unilluminated"],
                 "UNILLUMINATED (vignetted) pixels (master flat)")
        add_history(header, "Bad pixels: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        # The uncertainty is this reduction's own (the uncertainty step made it):
        # shared with the frame of the step before, never copied.
        out = new_frame(ccd, np.asarray(ccd.data, dtype=np.float32), header,
                        uncertainty=None if ccd.uncertainty is None else ccd.uncertainty.array,
                        mask=plane != 0, flags=plane)
        return out, counts

    ccd = recorder.step("bad_pixels", {"hot_nsigma": params.hot_nsigma,
                                       "hot_threshold": params.hot_threshold,
                                       "dead_low": params.dead_low, "dead_high": params.dead_high,
                                       "low_response": params.low_response},
                        bad_pixels)

    if params.cosmic_rays.enabled:
        ccd = recorder.step("cosmic_rays", asdict(params.cosmic_rays),
                            lambda: _cosmic_rays(ccd, params))
    else:
        recorder.skip("cosmic_rays", asdict(params.cosmic_rays), "switched off")

    final_bits = np.asarray(ccd.flags, dtype=MASK_DTYPE)
    header = header_of(ccd)
    for role, crop in sorted(crops.items()):
        kept = f"[{crop[2] + 1}:{crop[3]},{crop[0] + 1}:{crop[1]}]"
        set_card(header, f"WINCROP{role[0].upper()}", kept,
                 f"part of the full-frame {role} master used")
        add_history(header, f"{role} master cropped to the window: {kept} of it")
    if recorder.skipped:
        set_card(header, "CALSKIP", " ".join(s.split(":")[0] for s in recorder.skipped),
                 "reduction steps skipped")
        for reason in recorder.skipped:
            add_history(header, f"Skipped {reason}")
    # Staged without copies, and given to the result: every array is this reduction's.
    staged = CCDData(np.asarray(ccd.data, dtype=np.float32), unit=ccd.unit, meta=header,
                     uncertainty=ccd.uncertainty, mask=final_bits != 0, flags=final_bits,
                     wcs=ccd.wcs)
    result = as_output(staged, unit=params.unit, gain=params.gain,
                       read_noise=params.read_noise, saturation=params.saturation,
                       owned=True)
    return ReducedFrame(ccd=result, bits=final_bits, steps=tuple(recorder.steps))


def _for_step(master: CCDData, *, keep_mask: bool = False) -> CCDData:
    """``master``'s values, uncertainty and header for its step (nothing copied),
    without its bits: the bad-pixel step ORs every master's ``flags`` and mask into
    the frame's plane (:func:`~nightlog.reduction.bad_pixels.master_bits`), and the
    mask is made from that plane, so the steps need not OR frame-sized planes
    first. ``keep_mask``: the flat keeps its mask, which the division reads (its
    masked pixels are divided by 1)."""
    unc = master.uncertainty
    return CCDData(master.data, unit=master.unit, meta=master.meta,
                   mask=master.mask if keep_mask else None,
                   uncertainty=None if unc is None else type(unc)(unc.array, unit=unc.unit,
                                                                  copy=False))


def _master_median(masters: MasterPlane | None, role: str, master: CCDData) -> float:
    """The summary median of the master a step applied: the batch's, found once with
    its bit plane (:func:`~nightlog.reduction.bad_pixels.master_plane`), else taken now."""
    found = None if masters is None else masters.median(role)
    return summary_median(master.data) if found is None else found


def _off_step(data: np.ndarray, step: float, header: Any) -> int:
    """Count raw values that are not multiples of the converter's step, and say so."""
    values = np.asarray(data)
    finite = values[np.isfinite(values)] if values.dtype.kind == "f" else values.ravel()
    off = int(np.count_nonzero(np.mod(finite.astype(np.float64), step) != 0))
    set_card(header, "QSTEP", float(step), "ADU between converter values (bit depth)")
    set_card(header, "QSTEPOFF", off, "raw values not multiples of QSTEP")
    if off:
        add_history(header, f"WARNING: {off} raw values are not multiples of the {step:g} ADU "
                            "step of the profile's bit_depth: wrong bit depth, or data "
                            "rescaled by the capture software; the quantisation variance "
                            "and saturation level may be wrong")
    return off


def _cosmic_rays(ccd: CCDData, params: ScienceParameters) -> tuple[CCDData, Mapping[str, Any]]:
    """Cosmic rays with the known bad pixels and the propagated variance."""
    plane = np.asarray(ccd.flags, dtype=MASK_DTYPE)
    saturated = (plane & MASK_DTYPE(MaskBit.SATURATED)) != 0
    values = np.asarray(ccd.data)[saturated]
    values = values[np.isfinite(values)]
    # Saturated pixels are already in the mask; giving astroscrappy their reduced level
    # also lets it grow the mask over the sharp edges of saturated stars.
    level = float(values.min()) if values.size else None
    variance = None if ccd.uncertainty is None else np.asarray(ccd.uncertainty.array) ** 2
    flags, out = detect_cosmic_rays(
        ccd, gain=params.gain, read_noise=params.read_noise, saturation=level,
        bad_pixels=plane != 0, variance=variance, settings=params.cosmic_rays)
    return out, {"cosmic_ray_pixels": int(flags.sum()), "saturation_reduced": level}
