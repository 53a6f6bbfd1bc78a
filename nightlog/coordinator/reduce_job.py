"""One frame's reduction as a job a worker runs: files in, one product file out.

This is the part of a reduction that takes the time, so it is the part that runs
in worker processes, on this machine or on a Dask cluster reading a shared file
system. It never touches the catalogue (no SQLAlchemy is imported on this path):
the coordinating process decides everything that needs the catalogue beforehand
(masters, inputs key, target path, header keywords, provenance rows) and puts it
in a small picklable :class:`ReduceJob`; the worker reads the raw frame and the
masters, runs the pure reduction core, writes the product under a temporary name
and renames it, and returns the facts of the file (:class:`ReducedFile`) for the
coordinating process to record.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import os
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from astropy.io import fits
from astropy.nddata import CCDData

from nightlog.coordinator.amplifier_frames import frame_loader
from nightlog.coordinator.kept_masters import kept_masters
from nightlog.coordinator.provenance import ILLUMINATION
from nightlog.errors import (
    ArchiveFileExists,
    ChecksumMismatchError,
    ReductionError,
    UnreadableFileError,
)
from nightlog.header.pointing import airmass_of, pixel_scale_of
from nightlog.process_memory import peak_memory, reset_peak_memory
from nightlog.reduction.products import ProvenanceEntry, to_hdulist
from nightlog.reduction.quality import QualityOptions, measure_quality
from nightlog.reduction.science import ScienceParameters, reduce_science
from nightlog.reduction.science_record import ReducedFrame
from nightlog.reduction.sky_illumination import illuminate_reduced
from nightlog.reduction.window import crop_to_window
from nightlog.store.images import read_image, write_hdulist
from nightlog.store.layout import name_beside
from nightlog.store.raw import sha256_of

__all__ = ["QualitySetup", "ReduceJob", "ReducedFile", "jsonable", "reduce_in_memory",
           "reduce_job"]


@dataclass(frozen=True, slots=True)
class QualitySetup:
    """What the quality step needs besides the pixels (see
    :func:`~nightlog.reduction.quality.measure_quality`).

    Attributes
    ----------
    profile : str
        The frame's instrument profile (for the plate scale's source).
    pixel_scale_arcsec : float or None
        The profile's plate scale; ``None``: from the header.
    gain_known : bool
        Whether the gain came from the profile, the header or a master (not a
        default): only then is the sky given in electrons.
    latitude_deg, longitude_deg : float or None
        The site, to compute an airmass the header does not give.
    mid_time : datetime
        Mid-exposure, UTC.
    options : QualityOptions
        Detection and selection settings.
    """

    profile: str
    pixel_scale_arcsec: float | None
    gain_known: bool
    latitude_deg: float | None
    longitude_deg: float | None
    mid_time: dt.datetime
    options: QualityOptions = dataclasses.field(default_factory=QualityOptions)


@dataclass(frozen=True, slots=True)
class ReduceJob:
    """Everything a worker needs to reduce one frame, as plain values.

    Attributes
    ----------
    frame_id : int
        Catalogue id of the raw frame (for the result only).
    raw_path, hdu, raw_sha256 : str, int, str
        The raw file, its image HDU and the SHA-256 the catalogue holds for it; a
        file whose bytes changed since it was catalogued is refused, so a
        product's provenance never names bytes it was not made from.
    masters : tuple of (role, path)
        The master files to apply, by role (``bias``, ``dark``, ``flat``, and
        ``dark2``, the longer of two darks interpolated to the frame's exposure;
        ``illumination``, a night-sky illumination model the frame is divided by
        after its reduction).
        A master bias's read-noise map, when it has one, feeds the variance.
    params : ScienceParameters
        Reduction settings, including the OpenMP thread cap of this worker.
    target : str
        Where the product goes (it must not exist).
    cards : tuple of (keyword, value, comment)
        Header keywords the product carries (provenance, software version).
    provenance : tuple of ProvenanceEntry
        Rows of the product's ``PROVENANCE`` table.
    mode : int
        Permission bits of the product file (the archive root's, see
        :meth:`~nightlog.store.layout.ArchiveLayout.file_mode`).
    crops : tuple of (role, (y0, y1, x0, x1))
        For a subarray frame, the part of each full-frame master that covers
        its window (numpy, master pixels), which the reduction core cuts; a
        master not named is used whole.
    amplifiers : dict or None
        A multi-amplifier frame's amplifiers (``AmplifierLayout.as_json()``): its
        extensions are assembled into one image in electrons before the reduction.
    """

    frame_id: int
    raw_path: str
    hdu: int
    raw_sha256: str
    masters: tuple[tuple[str, str], ...]
    params: ScienceParameters
    target: str
    cards: tuple[tuple[str, Any, str], ...]
    provenance: tuple[ProvenanceEntry, ...]
    mode: int = 0o644
    crops: tuple[tuple[str, tuple[int, int, int, int]], ...] = ()
    amplifiers: dict[str, Any] | None = None
    quality: QualitySetup | None = None


@dataclass(frozen=True, slots=True)
class ReducedFile:
    """What a worker made of a job: the product file and how it was made.

    ``steps`` are the reduction core's step records as JSON-ready dicts;
    ``seconds`` and ``cpu_seconds`` the wall and CPU time of the whole job (read,
    reduce, write); ``peak_rss`` the worker's peak resident memory during the job
    on Linux (since it started elsewhere; ``None`` where the platform does not
    say), in bytes; ``worker`` names the process; ``quality`` the frame's quality
    figures (:class:`~nightlog.reduction.quality.FrameQuality` as JSON, or
    ``{"error": …}`` when they could not be measured; ``None``: not asked for).
    """

    frame_id: int
    path: str
    sha256: str
    size: int
    steps: list[dict[str, Any]]
    seconds: float
    cpu_seconds: float
    peak_rss: int | None
    worker: str
    quality: dict[str, Any] | None = None


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON values (dataclasses as dicts, NaN and inf as None)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: jsonable(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str | int | bool) or value is None:
        return value
    if hasattr(value, "item"):  # numpy scalars
        return jsonable(value.item())
    return str(value)


def _step_records(steps: Sequence[Any]) -> list[dict[str, Any]]:
    return [{"name": s.name, "applied": s.applied, "parameters": jsonable(dict(s.parameters)),
             "summary": jsonable(dict(s.summary)), "seconds": round(s.seconds, 4)}
            for s in steps]


def reduce_in_memory(job: ReduceJob) -> tuple[CCDData, ReducedFrame]:
    """The raw frame of ``job`` and its reduction, nothing written.

    Raises
    ------
    ChecksumMismatchError
        The raw file's bytes are not those the catalogue holds.
    UnreadableFileError
        The raw file is gone or cannot be read.
    NightlogError
        A master cannot be read, or the reduction refuses the data.
    """
    try:
        actual = sha256_of(Path(job.raw_path))
    except FileNotFoundError as exc:
        raise UnreadableFileError(f"{job.raw_path} is gone since it was catalogued: "
                                  "restore it or ingest it again") from exc
    except OSError as exc:
        raise UnreadableFileError(f"cannot read {job.raw_path}: "
                                  f"{exc.strerror or exc}") from exc
    if actual != job.raw_sha256:
        raise ChecksumMismatchError(
            f"{job.raw_path} changed since it was catalogued (SHA-256 {actual[:12]}…, "
            f"catalogue {job.raw_sha256[:12]}…): ingest it again")
    raw = (read_image(job.raw_path, job.hdu) if job.amplifiers is None
           else frame_loader(job.raw_path, job.hdu, job.amplifiers)())
    # The masters and their bit plane are kept from one frame of a batch to the next.
    kept = kept_masters()
    files = kept.files(job.masters)
    loaded = {role: f.ccd for role, f in files.items()}
    bias_file = files.get("bias")
    crops = dict(job.crops)
    reduced = reduce_science(raw, bias=loaded.get("bias"), dark=loaded.get("dark"),
                             flat=loaded.get("flat"), params=job.params,
                             crops=crops,
                             dark2=loaded.get("dark2"),
                             read_noise_map=None if bias_file is None else bias_file.read_noise,
                             masters=kept.plane(job.params, crops))
    if loaded.get(ILLUMINATION) is not None:
        model = loaded[ILLUMINATION]
        if ILLUMINATION in dict(job.crops):
            model = crop_to_window(model, dict(job.crops)[ILLUMINATION])
        reduced = illuminate_reduced(reduced, model)
    return raw, reduced


def reduce_job(job: ReduceJob) -> ReducedFile:
    """Reduce one frame and write its product; return the file's facts.

    Raises
    ------
    ChecksumMismatchError
        The raw file's bytes are not those the catalogue holds.
    UnreadableFileError
        The raw file is gone or cannot be read.
    NightlogError
        A file cannot be read or written, or the reduction refuses the data.
    """
    start, cpu_start = time.perf_counter(), time.process_time()
    reset_peak_memory()
    raw, reduced = reduce_in_memory(job)
    header: fits.Header = reduced.ccd.header
    for keyword, value, comment in job.cards:
        header[keyword] = (value, comment)
    quality = None if job.quality is None else _quality(job, job.quality, raw.header, reduced)
    hdul = to_hdulist(reduced.ccd, mask_bits=reduced.bits, provenance=list(job.provenance))
    try:
        out = write_hdulist(job.target, hdul, mode=job.mode)
    except ArchiveFileExists:
        # Another run reduced this frame from the same inputs meanwhile; write
        # beside its file, and the recording keeps one of the two products.
        out = write_hdulist(name_beside(Path(job.target)), hdul, mode=job.mode)
    return ReducedFile(
        frame_id=job.frame_id, path=str(out.path), sha256=out.sha256, size=out.size,
        steps=_step_records(reduced.steps),
        seconds=time.perf_counter() - start, cpu_seconds=time.process_time() - cpu_start,
        peak_rss=peak_memory(), worker=f"{socket.gethostname()}:{os.getpid()}",
        quality=quality,
    )


_QUALITY_CARDS = (("sky", "NLSKY", "sky level [BUNIT]"),
                  ("sky_noise", "NLSKYNOI", "sky noise per pixel [BUNIT]"),
                  ("n_sources", "NLNSRC", "sources detected"),
                  ("fwhm_px", "NLFWHM", "median FWHM of point sources [pixel]"),
                  ("fwhm_arcsec", "NLFWHMAS", "median FWHM of point sources [arcsec]"),
                  ("ellipticity", "NLELLIP", "median ellipticity of point sources"),
                  ("airmass", "NLAIRMAS", "airmass (source in the catalogue)"))


def _quality(job: ReduceJob, setup: QualitySetup, raw_header: fits.Header,
             reduced: ReducedFrame) -> dict[str, Any]:
    """Measure the quality of the reduced pixels; write its cards on the product.

    A frame whose quality cannot be measured still gets its product: the record
    says why instead.
    """
    scale, scale_source = pixel_scale_of(raw_header, setup.pixel_scale_arcsec, setup.profile)
    airmass, airmass_source = airmass_of(raw_header, latitude_deg=setup.latitude_deg,
                                         longitude_deg=setup.longitude_deg,
                                         mid_time=setup.mid_time)
    try:
        measured = measure_quality(
            reduced.ccd, bits=reduced.bits,
            gain=job.params.gain if setup.gain_known else None,
            pixel_scale_arcsec=scale, pixel_scale_source=scale_source, airmass=airmass,
            airmass_source=airmass_source, options=setup.options)
    except ReductionError as exc:
        return {"error": str(exc)}
    figures: dict[str, Any] = jsonable(measured)
    if not job.params.cosmic_rays.enabled:  # not looked for (a quick-look), not none found
        figures["cosmic_ray_pixels"] = None
        figures["notes"] = [*figures.get("notes", []),
                            "cosmic rays not looked for (detection switched off)"]
    header: fits.Header = reduced.ccd.header
    for key, keyword, comment in _QUALITY_CARDS:
        if figures.get(key) is not None:
            value = figures[key]
            header[keyword] = (round(value, 4) if isinstance(value, float) else value, comment)
    return figures
