"""One master build as a job a worker runs: raw calibration files in, one master file out.

The shape of :mod:`~nightlog.coordinator.reduce_job`: the coordinating process
decides everything that needs the catalogue (the group's frames, the masters to
calibrate them with, version, path, header keywords) and puts it in a small
picklable :class:`MasterJob`; the worker reads the frames, applies the input
checks that need pixels, combines, characterises the detector, writes the master
under a temporary name and renames it, and returns the facts of the file
(:class:`BuiltMaster`), or why it made none (:class:`MasterRefused`). No
SQLAlchemy is imported on this path and no catalogue session is open while the
pixels are combined.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from nightlog.calibration.input_checks import (
    CalibrationInput,
    RegionStats,
    check_levels,
    data_box,
    overscan_columns,
    robust_level,
)
from nightlog.calibration.policy import InputChecks
from nightlog.coordinator.amplifier_frames import frame_loader
from nightlog.coordinator.amplifier_numbers import characterise_amplifiers, first_amplifier
from nightlog.coordinator.night_stability import NightAgreement, night_agreement
from nightlog.coordinator.provenance import master_entries, parameters_digest
from nightlog.coordinator.reduce_job import jsonable
from nightlog.errors import ArchiveFileExists, NightlogError
from nightlog.process_memory import peak_memory, reset_peak_memory
from nightlog.reduction.characterise import gain_from_flats, read_noise_from_biases
from nightlog.reduction.interchange import dark_as_exposure, state_detector, time_cards
from nightlog.reduction.master_frame import MasterResult
from nightlog.reduction.master_options import (
    CombineOptions,
    configured_options,
    describe_combine,
)
from nightlog.reduction.masters import make_master_bias, make_master_dark, make_master_flat
from nightlog.reduction.photon_transfer import gain_from_photon_transfer
from nightlog.reduction.preparation import Preparation
from nightlog.reduction.products import to_hdulist
from nightlog.reduction.window import crop_to_window
from nightlog.sections import Section
from nightlog.settings_sections import CombineSettings
from nightlog.store.images import read_image, read_region, write_hdulist
from nightlog.store.layout import name_beside
from nightlog.store.products import read_product

__all__ = ["BuiltMaster", "MasterJob", "MasterRef", "MasterRefused", "build_master_job"]


@dataclass(frozen=True, slots=True)
class MasterRef:
    """A master a build calibrates its frames with: catalogue id, file and checksum."""

    role: str
    id: int
    path: str
    sha256: str
    level: float | None = None  # a bias master's level (ADU), for the flats' pedestal
    # Windowed frames calibrated with a full-frame master: its part covering the
    # window, (y0, y1, x0, x1) in the master's pixels.
    crop: tuple[int, int, int, int] | None = None
    #: A bias master's read noise measured on a pair of its biases (ADU) and the
    #: number of biases it combines: the photon transfer of the flats subtracts them.
    read_noise_adu: float | None = None
    n_frames: int | None = None


@dataclass(frozen=True, slots=True)
class MasterJob:
    """Everything a worker needs to build one master, as plain values.

    Attributes
    ----------
    kind : {'bias', 'dark', 'flat'}
    roles : tuple of str
        The masters this kind is calibrated with (a dark: bias; a flat: bias, dark),
        found or not.
    inputs : tuple of CalibrationInput
        Every frame of the group that passed the checks needing no pixels, in time
        order.
    considered : tuple of CalibrationInput
        Every frame of the group (for the ``PROVENANCE`` table), and
        ``rejected`` the reasons of those the plan already refused.
    prepare : Preparation
        Overscan and trim of the set-up.
    masters : tuple of MasterRef
        The masters to calibrate the frames with (a dark's bias; a flat's bias
        and dark), each named in the file.
    checks, min_frames, saturation : InputChecks, int, float or None
        The input checks on pixel levels and the frames a master needs after them.
    darks_scale : bool
        Darks combined as rates (ADU/s) rather than at a fixed exposure.
    flat_region : tuple of slice
        Where flats are normalised (trimmed pixels).
    target : str
        Where the master goes (it must not exist; a file there is written beside).
    cards : tuple of (keyword, value, comment)
        Header keywords decided by the plan.
    read_noise_map, noisy_factor, quantisation_step : bool, float, float or None
        A master bias also measures each pixel's read noise (stored as
        ``RDNOISE``) and flags NOISY the pixels above ``noisy_factor`` × its
        median; the converter's quantisation is taken out of the map.
    combine : CombineSettings
        The site's ``[combine]``: the clip of the frames (IRAF's names).
    """

    kind: str
    roles: tuple[str, ...]
    inputs: tuple[CalibrationInput, ...]
    considered: tuple[CalibrationInput, ...]
    rejected: tuple[tuple[int, str], ...]
    prepare: Preparation
    masters: tuple[MasterRef, ...]
    checks: InputChecks
    min_frames: int
    saturation: float | None
    darks_scale: bool
    flat_region: Section
    target: str
    cards: tuple[tuple[str, Any, str], ...]
    memory_limit: int
    scratch_dir: str | None = None
    mode: int = 0o644
    read_noise_map: bool = False
    noisy_factor: float = 3.0
    quantisation_step: float | None = None
    #: ``[combine]`` of the settings: how the frames are clipped.
    combine: CombineSettings = field(default_factory=CombineSettings)
    #: A multi-night master: each input's night (frame id, ISO date), for the check
    #: that every night agrees with the whole (:mod:`~nightlog.coordinator.night_stability`).
    night_of: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True, slots=True)
class BuiltMaster:
    """What a worker made of a :class:`MasterJob`: the file, its figures, its inputs."""

    path: str
    sha256: str
    size: int
    used: tuple[int, ...]
    rejected: tuple[tuple[int, str], ...]
    stats: dict[str, Any]
    parameters: dict[str, Any]
    exptime: float | None
    first_obs: dt.datetime
    last_obs: dt.datetime
    seconds: float
    peak_rss: int | None
    worker: str
    cpu_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class MasterRefused:
    """No master: too few frames passed the checks (``reason``), with every rejection."""

    reason: str
    rejected: tuple[tuple[int, str], ...]


def _region_stats(job: MasterJob, bias_level: float | None
                  ) -> tuple[list[CalibrationInput], dict[int, RegionStats],
                             list[tuple[int, str]]]:
    """Level and noise of each bias or flat's central region (and a flat's bias level)."""
    readable: list[CalibrationInput] = []
    stats: dict[int, RegionStats] = {}
    rejected: list[tuple[int, str]] = []
    for item in job.inputs:
        if job.kind not in ("bias", "flat"):
            readable.append(item)
            continue
        # A multi-amplifier frame is checked on its first amplifier's raw pixels.
        frame = first_amplifier(item)
        try:
            level, noise = robust_level(read_region(frame.path, frame.hdu, data_box(frame)))
        except NightlogError as exc:
            rejected.append((frame.id, f"unreadable: {exc}"))
            continue
        pedestal = 0.0
        if job.kind == "flat":
            # An amplifier's own overscan is subtracted when it is assembled.
            region = (None if job.prepare.overscan is None and item.amplifiers is None
                      else overscan_columns(frame, job.prepare.skip_columns))
            try:
                if region is not None:
                    pedestal += robust_level(read_region(frame.path, frame.hdu, region))[0]
            except NightlogError as exc:
                rejected.append((frame.id, f"unreadable overscan: {exc}"))
                continue
            if item.amplifiers is None:  # an assembled master bias is overscan-free
                pedestal += float(bias_level) if bias_level is not None else 0.0
        stats[frame.id] = RegionStats(level, noise, pedestal)
        # Checked against the saturation of the amplifier measured.
        readable.append(dataclasses.replace(item, saturation=frame.saturation))
    return readable, stats, rejected


def _characterise(kind: str, frames: Sequence[CalibrationInput], prepare: Preparation,
                  bias: Any, bias_ref: MasterRef | None = None,
                  region: Section | None = None,
                  bias_read_noise_adu: float | None = None) -> dict[str, Any]:
    """Read noise from the first two biases; gain from the first two flats (with the
    frames' read noise, else the median of the master bias's read-noise map) and, by
    photon transfer, from every usable pair of the flats (:func:`_photon_transfer`)."""
    if len(frames) < 2:
        return {}
    if frames[0].amplifiers is not None:
        return characterise_amplifiers(kind, frames, bias)
    gain = frames[0].gain
    # One overscan level per frame: it takes the bias level away without adding the
    # row-to-row noise of a per-row estimate to the differences measured here.
    prepare = prepare.one_level()
    out: dict[str, Any] = {}
    try:
        a = prepare(read_image(frames[0].path, frames[0].hdu))
        b = prepare(read_image(frames[1].path, frames[1].hdu))
        n = _pair_pixels(a, b)
        if kind == "bias":
            rn = read_noise_from_biases(a, b, clip_sigma=5.0, gain=gain)
            # The standard error of a standard deviation from n values: σ / √(2(n - 1)).
            err = rn.adu / np.sqrt(2.0 * (n - 1)) if n > 1 else None
            return {"read_noise_adu": rn.adu, "read_noise_e": rn.electrons,
                    "read_noise_adu_err": err,
                    "read_noise_e_err": None if err is None or gain is None else err * gain}
        if kind == "flat" and bias is not None:
            read_noise_adu = ((frames[0].read_noise or 0.0) / (gain or 1.0)
                              if frames[0].read_noise else bias_read_noise_adu)
            g = gain_from_flats(a, b, master_bias=bias, read_noise_adu=read_noise_adu)
            # G ∝ 1 / var(Δ); a variance from n values has relative error √(2/(n - 1))
            # (the read-noise share of var(Δ), small for flats, is neglected).
            out["gain_from_flats"] = g
            out["gain_err"] = g * np.sqrt(2.0 / (n - 1)) if n > 1 else None
    except NightlogError as exc:
        out["characterisation_error"] = str(exc)
    if kind == "flat" and bias is not None:
        out.update(_photon_transfer(frames, prepare, bias, bias_ref, region))
    return out


def _photon_transfer(frames: Sequence[CalibrationInput], prepare: Preparation, bias: Any,
                     bias_ref: MasterRef | None, region: Section | None) -> dict[str, Any]:
    """The gain by photon transfer over all the flats (``gain_ptc`` and its error,
    pairs used and rejected), or why there is none (``gain_ptc_error``).

    The read noise subtracted is the master bias's own (a pair of its biases, ADU:
    no gain needed), else the header's divided by the header's gain. The whole
    trimmed frame is measured: every static pattern (vignetting, the pixel
    response) cancels in the scaled differences, and the error of a variance
    falls as one over the root of the pixel count (the flat scale region, a
    quarter of the frame, left the simulated night's gain 1 % out).
    """
    rn_adu = bias_ref.read_noise_adu if bias_ref is not None else None
    source = "master bias"
    if not (isinstance(rn_adu, int | float) and rn_adu > 0):
        first = frames[0]
        if not (first.read_noise and first.gain):
            return {"gain_ptc_error": "no read noise in ADU: neither the master bias nor "
                                      "the header gives one"}
        rn_adu, source = first.read_noise / first.gain, "header"
    n_bias = bias_ref.n_frames if bias_ref is not None and bias_ref.n_frames else None
    bias_noise = rn_adu / (n_bias ** 0.5) if n_bias else 0.0
    try:
        flats = [_float32(prepare(read_image(f.path, f.hdu))) for f in frames]
        ptc = gain_from_photon_transfer(flats, master_bias=bias, read_noise_adu=rn_adu,
                                        master_bias_noise_adu=bias_noise, region=region)
    except NightlogError as exc:
        return {"gain_ptc_error": str(exc)}
    return {**ptc.stats(), "gain_ptc_read_noise": source}


def _float32(ccd: Any) -> Any:
    """The frame's data as float32 with masked pixels NaN (half the memory of float64)."""
    data = np.array(ccd.data, dtype=np.float32)
    if ccd.mask is not None:
        data[np.asarray(ccd.mask, dtype=bool)] = np.nan
    return data


def _pair_pixels(a: Any, b: Any) -> int:
    """Pixels valid in both frames of a pair (finite, unmasked)."""
    good = np.isfinite(np.asarray(a.data, dtype=float)) & np.isfinite(
        np.asarray(b.data, dtype=float))
    for frame in (a, b):
        if getattr(frame, "mask", None) is not None:
            good &= ~np.asarray(frame.mask, dtype=bool)
    return int(np.count_nonzero(good))


def level_uncertainty(kind: str, frame_levels: Sequence[float], scales: Sequence[float]
                      ) -> float | None:
    """Standard error of a master's level from its frames: ``std / √n`` of the frames'
    levels in the master's units (a bias's median; a dark's median times its scale,
    1/exposure for a rate; a flat's level, the inverse of its scale); ``None`` with
    fewer than two frames."""
    if kind == "flat":
        per_frame = [1.0 / s for s in scales if s]
    else:
        per_frame = [lv * s for lv, s in zip(frame_levels, scales, strict=False)]
    values = np.array([v for v in per_frame if np.isfinite(v)], dtype=float)
    if values.size < 2:
        return None
    return float(np.std(values, ddof=1) / np.sqrt(values.size))


def _pair_read_noise(job: MasterJob, accepted: Sequence[CalibrationInput], *,
                     as_combined: bool) -> float | None:
    """The read noise (ADU) of the first pair of biases, ``None`` for other kinds.

    ``as_combined``: of the frames as they are combined (per-row overscan
    included, whose estimate adds its own noise to every row), the spread the
    clip must allow; else with one overscan level per frame, the noise of a
    pixel, which the master's uncertainty states over √N (a MAD of five values
    per pixel left the master 22 % noisier than read noise / √N on a simulated
    LFC night, and the spread of five values states it to a third).
    """
    if job.kind != "bias" or len(accepted) < 2 or accepted[0].amplifiers is not None:
        return None
    prepare = job.prepare if as_combined else job.prepare.one_level()
    try:
        a = prepare(read_image(accepted[0].path, accepted[0].hdu))
        b = prepare(read_image(accepted[1].path, accepted[1].hdu))
        return float(read_noise_from_biases(a, b, clip_sigma=5.0).adu)
    except NightlogError:
        return None  # the MAD clip then; the characterisation says why


def _combine(job: MasterJob, accepted: Sequence[CalibrationInput], bias: Any, dark: Any
             ) -> tuple[MasterResult, CombineOptions, str | None]:
    inputs = [frame_loader(f.path, f.hdu, f.amplifiers) for f in accepted]
    options = CombineOptions(memory_limit=job.memory_limit, scratch_dir=job.scratch_dir)
    c = job.combine
    options, note = configured_options(
        options, kind=job.kind, reject=c.reject, centre=c.centre, lsigma=c.lsigma,
        hsigma=c.hsigma, max_iters=c.max_iters, nkeep=c.nkeep, frame_scales=c.frame_scales,
        gains=[f.gain for f in accepted], read_noises=[f.read_noise for f in accepted],
        read_noise_adu=(None if all(f.read_noise for f in accepted)
                        else _pair_read_noise(job, accepted, as_combined=True)))
    times = [f.exptime or 0.0 for f in accepted]
    if job.kind == "bias":
        return make_master_bias(inputs, prepare=job.prepare, options=options,
                                noise_map=job.read_noise_map, noisy_factor=job.noisy_factor,
                                quantisation_step=job.quantisation_step,
                                read_noise_adu=_pair_read_noise(job, accepted, as_combined=False)
                                ), options, note
    if job.kind == "dark":
        return make_master_dark(inputs, times, bias=bias, prepare=job.prepare,
                                scale_to_rate=job.darks_scale, options=options), options, note
    return make_master_flat(inputs, bias=bias, dark=dark,
                            exptimes=times if dark is not None else None,
                            prepare=job.prepare, scale_region=job.flat_region,
                            options=options), options, note


def _nights_agree(job: MasterJob, accepted: Sequence[CalibrationInput],
                  loaded: dict[str, Any], whole: Any) -> NightAgreement:
    night_of = dict(job.night_of)
    nights: dict[str, list[CalibrationInput]] = {}
    for f in accepted:
        nights.setdefault(night_of.get(f.id, "?"), []).append(f)
    return night_agreement(
        whole, sorted(nights.items()),
        lambda frames: _combine(job, frames, loaded.get("bias"), loaded.get("dark"))[0].ccd)


def _as_written(job: MasterJob, ccd: Any, accepted: Sequence[CalibrationInput]) -> Any:
    """The master as its file states it, for nightlog and for ccdproc alike.

    A dark rate becomes the counts of a 1 s exposure (``EXPTIME = 1``, ``BUNIT =
    'adu'``); ``GAIN`` and ``RDNOISE`` are the catalogue's (none for a normalised
    flat, which has no gain); ``SATURATE`` is dropped (the raw level means nothing
    once the bias is gone); the time cards span the first to the last exposure.
    """
    if job.kind == "dark":
        ccd = dark_as_exposure(ccd)
    first = accepted[0]
    ccd = state_detector(ccd, gain=None if job.kind == "flat" else first.gain,
                         read_noise=None if job.kind == "flat" else first.read_noise,
                         saturation=None)
    last = accepted[-1]
    end = last.obs_time + dt.timedelta(seconds=last.exptime or 0.0)
    for keyword, value, comment in time_cards(first.obs_time, end):
        ccd.header[keyword] = (value, comment)
    return ccd


def build_master_job(job: MasterJob) -> BuiltMaster | MasterRefused:
    """Check, combine and characterise the frames of ``job``; write the master.

    Returns
    -------
    BuiltMaster or MasterRefused
        The file's facts, or why no master was made (too few frames passed).

    Raises
    ------
    NightlogError
        A file cannot be read or written, or the combination refuses the data.
    """
    start, cpu_start = time.perf_counter(), time.process_time()
    reset_peak_memory()  # this build's own peak, not the worker's last job's
    by_role = {m.role: m for m in job.masters}
    bias_ref = by_role.get("bias")
    readable, stats, unreadable = _region_stats(
        job, None if bias_ref is None else bias_ref.level)
    accepted, by_level = check_levels(job.kind, readable, stats, job.checks,
                                      saturation=job.saturation)
    rejected = (*job.rejected, *unreadable, *by_level)
    if len(accepted) < job.min_frames:
        reason = (f"{len(accepted)} usable frame(s) after checks, {job.min_frames} needed"
                  + (f"; rejected: {'; '.join(r for _, r in rejected[:3])}"
                     if rejected else ""))
        return MasterRefused(reason, tuple(rejected))

    stored = {m.role: read_product(m.path) for m in job.masters}
    loaded = {role: product.ccd for role, product in stored.items()}
    for m in job.masters:
        if m.crop is not None:
            loaded[m.role] = crop_to_window(loaded[m.role], m.crop)
    result, options, note = _combine(job, accepted, loaded.get("bias"), loaded.get("dark"))
    agreement = None
    if job.night_of:
        agreement = _nights_agree(job, accepted, loaded, result.ccd)
        if not agreement.stable:
            return MasterRefused(f"not stable across nights: {agreement.describe()}",
                                 tuple(rejected))
    parameters: dict[str, Any] = {
        "preparation": job.prepare.describe(), "combine": describe_combine(options),
        "flat_scale": "median of the profile's flat scale region"}
    crops = {m.role: loaded[m.role].meta["WINCROP"] for m in job.masters if m.crop is not None}
    if crops:
        parameters["crops"] = crops
    if note is not None:
        parameters["combine_note"] = note
    if agreement is not None:
        parameters["night_scatter"] = agreement.scatter
    digest = parameters_digest(parameters)

    ccd = result.ccd
    header: fits.Header = ccd.header
    for keyword, value, comment in job.cards:
        header[keyword] = (value, comment)
    header["NCOMBINE"] = (len(accepted), "frames combined")
    for f in accepted:
        header.add_history(f"input {os.path.basename(f.path)[:40]} sha256 {f.sha256[:16]}")
    for m in job.masters:
        header.add_history(f"{m.role} master {os.path.basename(m.path)[:40]} "
                           f"sha256 {m.sha256[:16]}")
        if m.crop is not None:
            header.add_history(f"{m.role} master cropped to the window: "
                               f"{loaded[m.role].meta['WINCROP']} of it")
    header["NLPARSHA"] = (digest, "SHA-256 of the master parameters")
    ccd = _as_written(job, ccd, accepted)
    reasons = dict(rejected)
    hdul = to_hdulist(ccd, provenance=master_entries(job.considered, reasons, by_role),
                      read_noise=result.read_noise_map)
    try:
        out = write_hdulist(job.target, hdul, mode=job.mode)
    except ArchiveFileExists:
        # Written meanwhile by a concurrent build of the same version (whose commit
        # will win or lose on the unique version): never overwrite it.
        out = write_hdulist(name_beside(Path(job.target)), hdul, mode=job.mode)

    figures: dict[str, Any] = {
        "level": result.level, "noise": result.noise,
        "hot_pixels": result.hot_pixels, "low_pixels": result.low_pixels,
        "frame_levels": [s.median for s in result.frame_stats],
        "rejected": len(rejected),
        "masters_used": {role: (by_role[role].id if role in by_role else None)
                         for role in job.roles},
    }
    if accepted and accepted[0].amplifiers is not None:
        # Assembled from amplifiers, each times its gain: the level is in electrons.
        figures["level_unit"] = "e-"
    if result.read_noise_map is not None:
        figures["noisy_pixels"] = result.noisy_pixels
        figures["read_noise_map_median_adu"] = float(np.nanmedian(result.read_noise_map))
    figures["level_err"] = level_uncertainty(
        job.kind, [s.median for s in result.frame_stats], list(result.scales))
    if job.kind == "dark":
        figures["hot_pixels_err"] = float(np.sqrt(result.hot_pixels))  # a Poisson count
        if "bias" in by_role and result.bias_share is not None:
            # Each frame less the master bias, times its scale: the master carries
            # minus the mean scale of the frames each pixel kept times the bias's
            # error (science.dark_bias_share). With mixed exposures the clip keeps
            # the long darks' rates more often than the short ones', so the mean of
            # all the scales (16 x the bias's error for the LFC's 7/70/300 s darks
            # at 300 s) is far off: the combination measures it per pixel, and the
            # master's uncertainty holds each pixel's share of the bias's error.
            figures["bias_share"], figures["bias_share_sq"] = result.bias_share
            figures["bias_share_in_plane"] = True
    gain = job.considered[0].gain if job.considered else None
    if job.kind == "dark" and gain:
        figures["dark_current_e_per_s"] = result.level * gain if job.darks_scale else None
        figures["dark_current_err"] = (figures["level_err"] * gain
                                       if job.darks_scale and figures["level_err"] is not None
                                       else None)
    noise_map = stored["bias"].read_noise if "bias" in stored else None
    figures.update(_characterise(
        job.kind, accepted, job.prepare, loaded.get("bias"), by_role.get("bias"),
        bias_read_noise_adu=(float(np.nanmedian(noise_map)) if noise_map is not None
                             else None)))
    return BuiltMaster(
        path=str(out.path), sha256=out.sha256, size=out.size,
        used=tuple(f.id for f in accepted), rejected=tuple(rejected),
        stats=jsonable(figures), parameters={**parameters, "digest": digest},
        exptime=accepted[0].exptime, first_obs=accepted[0].obs_time,
        last_obs=accepted[-1].obs_time, seconds=time.perf_counter() - start,
        peak_rss=peak_memory(), worker=f"{socket.gethostname()}:{os.getpid()}",
        cpu_seconds=time.process_time() - cpu_start)
