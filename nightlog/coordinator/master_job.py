"""One master build as a job a worker runs: raw calibration files in, one master file out.

The shape of :mod:`~nightlog.coordinator.reduce_job`: the coordinating process
decides everything that needs the catalogue (the group's frames, the masters to
calibrate them with, version, path, header keywords) and puts it in a small
picklable :class:`MasterJob`; the worker reads the frames, applies the input
checks that need pixels, combines, characterises the detector (the measurements
are :mod:`~nightlog.coordinator.master_measurements`), writes the master under a
temporary name and renames it, and returns the facts of the file
(:class:`BuiltMaster`), or why it made none (:class:`MasterRefused`). No
SQLAlchemy is imported on this path and no catalogue session is open while the
pixels are combined.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from nightlog.calibration.input_checks import CalibrationInput, check_levels
from nightlog.calibration.policy import InputChecks
from nightlog.coordinator.amplifier_frames import frame_loader
from nightlog.coordinator.master_measurements import (
    BiasPair,
    characterise_frames,
    level_uncertainty,
    pair_read_noise,
    region_stats,
)
from nightlog.coordinator.night_stability import NightAgreement, night_agreement
from nightlog.coordinator.provenance import master_entries, parameters_digest
from nightlog.coordinator.reduce_job import jsonable
from nightlog.errors import ArchiveFileExists
from nightlog.process_memory import peak_memory, reset_peak_memory
from nightlog.reduction.interchange import dark_as_exposure, state_detector, time_cards
from nightlog.reduction.master_frame import MasterResult
from nightlog.reduction.master_options import (
    CombineOptions,
    configured_options,
    describe_combine,
)
from nightlog.reduction.masters import make_master_bias, make_master_dark, make_master_flat
from nightlog.reduction.preparation import Preparation
from nightlog.reduction.products import to_hdulist
from nightlog.reduction.window import crop_to_window
from nightlog.sections import Section
from nightlog.settings_sections import CombineSettings
from nightlog.store.images import write_hdulist
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
    threads : int
        Cores this build may use: the combination's tiles run in that many threads,
        and with two or more the frames are characterised (read noise, gain) while
        they are combined. The coordinator gives a build the cores that the builds
        running beside it leave (a kind with one group on two workers: both).
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
    threads: int = 1


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


def _combine(job: MasterJob, accepted: Sequence[CalibrationInput], bias: Any, dark: Any,
             pair: BiasPair | None = None
             ) -> tuple[MasterResult, CombineOptions, str | None]:
    inputs = [frame_loader(f.path, f.hdu, f.amplifiers) for f in accepted]
    options = CombineOptions(memory_limit=job.memory_limit, scratch_dir=job.scratch_dir,
                             threads=max(1, job.threads))
    c = job.combine
    options, note = configured_options(
        options, kind=job.kind, reject=c.reject, centre=c.centre, lsigma=c.lsigma,
        hsigma=c.hsigma, max_iters=c.max_iters, nkeep=c.nkeep, frame_scales=c.frame_scales,
        gains=[f.gain for f in accepted], read_noises=[f.read_noise for f in accepted],
        read_noise_adu=(None if all(f.read_noise for f in accepted)
                        else pair_read_noise(job, accepted, as_combined=True)))
    times = [f.exptime or 0.0 for f in accepted]
    if job.kind == "bias":
        return make_master_bias(inputs, prepare=job.prepare, options=options,
                                noise_map=job.read_noise_map, noisy_factor=job.noisy_factor,
                                quantisation_step=job.quantisation_step,
                                read_noise_adu=pair_read_noise(job, accepted, as_combined=False,
                                                               pair=pair)
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
    readable, stats, unreadable = region_stats(
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
    noise_map = stored["bias"].read_noise if "bias" in stored else None

    # The first pair of biases' read noise, measured once for both threads.
    pair = BiasPair(accepted, job.prepare) if job.kind == "bias" else None

    def characterise() -> dict[str, Any]:
        return characterise_frames(
            job.kind, accepted, job.prepare, loaded.get("bias"), by_role.get("bias"),
            bias_read_noise_adu=(float(np.nanmedian(noise_map))
                                 if noise_map is not None and job.kind == "flat" else None),
            bias_pair=pair)

    with ThreadPoolExecutor(max_workers=1) as beside:
        # The frames' own figures need the inputs, not the master: measured on a
        # second core while the first combines (numpy leaves the interpreter lock).
        measured = beside.submit(characterise) if job.threads >= 2 else None
        result, options, note = _combine(job, accepted, loaded.get("bias"),
                                         loaded.get("dark"), pair)
        characterised = measured.result() if measured is not None else None
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
    figures.update(characterised if characterised is not None else characterise())
    return BuiltMaster(
        path=str(out.path), sha256=out.sha256, size=out.size,
        used=tuple(f.id for f in accepted), rejected=tuple(rejected),
        stats=jsonable(figures), parameters={**parameters, "digest": digest},
        exptime=accepted[0].exptime, first_obs=accepted[0].obs_time,
        last_obs=accepted[-1].obs_time, seconds=time.perf_counter() - start,
        peak_rss=peak_memory(), worker=f"{socket.gethostname()}:{os.getpid()}",
        cpu_seconds=time.process_time() - cpu_start)
