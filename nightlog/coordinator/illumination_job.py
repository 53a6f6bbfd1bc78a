"""Building one night-sky illumination model as a job a worker runs.

As a master build (:mod:`~nightlog.coordinator.master_job`), the part that takes
the time runs in a worker without the catalogue: each science frame of the group
is reduced in memory exactly as its product will be, but for the cosmic-ray step
(the median across the frames rejects cosmic rays) and the illumination itself
(:func:`~nightlog.coordinator.reduce_job.reduce_in_memory`); the pure core makes
the model of them (:func:`~nightlog.reduction.sky_illumination.
night_sky_illumination`), and the file is written under a temporary name and
renamed. The coordinating process records it
(:mod:`~nightlog.coordinator.illumination`).
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from astropy.nddata import CCDData

from nightlog.coordinator.reduce_job import ReduceJob, jsonable, reduce_in_memory
from nightlog.reduction.products import ProvenanceEntry, to_hdulist
from nightlog.reduction.sky_illumination import SkyFlatOptions, night_sky_illumination
from nightlog.store.images import write_hdulist
from nightlog.store.layout import name_beside

__all__ = ["BuiltIllumination", "IlluminationJob", "build_illumination_job"]


@dataclass(frozen=True, slots=True)
class IlluminationJob:
    """Everything a worker needs to build one illumination model, as plain values.

    Attributes
    ----------
    frames : tuple of ReduceJob
        Each science frame's reduction (cosmic rays off, no illumination, no
        quality record, nothing written).
    options : SkyFlatOptions
        Masking, combination and fit settings.
    scale_region : tuple of int or None
        ``(y0, y1, x0, x1)`` (numpy) of the flat's scale region, over which the
        model is normalised to 1; ``None``: the whole frame.
    target : str
        Where the model goes (it must not exist).
    cards : tuple of (keyword, value, comment)
        Header keywords of the file (kind, night, version, masters, software).
    provenance : tuple of ProvenanceEntry
        Rows of the file's ``PROVENANCE`` table.
    mode : int
        Permission bits of the file.
    """

    frames: tuple[ReduceJob, ...]
    options: SkyFlatOptions
    scale_region: tuple[int, int, int, int] | None
    target: str
    cards: tuple[tuple[str, Any, str], ...]
    provenance: tuple[ProvenanceEntry, ...]
    mode: int = 0o644


@dataclass(frozen=True, slots=True)
class BuiltIllumination:
    """The model file a worker made, and the figures the catalogue keeps of it."""

    path: str
    sha256: str
    size: int
    stats: dict[str, Any]
    seconds: float
    worker: str


def _sky_frame(ccd: CCDData) -> CCDData:
    """Only what the model reads (pixels, mask, header): the uncertainty and the bit
    plane of every frame held at once would double the worker's memory."""
    return CCDData(ccd.data, unit=ccd.unit, mask=ccd.mask, meta=ccd.meta)


def build_illumination_job(job: IlluminationJob) -> BuiltIllumination:
    """Reduce the group's frames in memory, model their sky, write the model.

    Raises
    ------
    NightlogError
        A frame or master cannot be read, a raw file changed, or the model cannot
        be made (too few frames, no sky, too few valid blocks).
    """
    start = time.perf_counter()
    frames = [_sky_frame(reduce_in_memory(frame)[1].ccd) for frame in job.frames]
    region = None
    if job.scale_region is not None:
        y0, y1, x0, x1 = job.scale_region
        region = (slice(y0, y1), slice(x0, x1))
    made = night_sky_illumination(frames, options=job.options, scale_region=region)
    header = made.model.header
    for keyword, value, comment in job.cards:
        header[keyword] = (value, comment)
    hdul = to_hdulist(made.model, provenance=list(job.provenance))
    target = Path(job.target)
    out = write_hdulist(target if not target.exists() else name_beside(target), hdul,
                        mode=job.mode)
    stats = jsonable({
        "skies": list(made.skies), "masked_fractions": list(made.masked_fractions),
        "uncovered_fraction": made.uncovered_fraction, "residual_rms": made.residual_rms,
        "min": float(made.model.data.min()), "max": float(made.model.data.max()),
        "norm": header["ILLUMNRM"],
        "coefficients": [header[f"ILLUMC{i}"] for i in range(len(
            [k for k in header if str(k).startswith("ILLUMC")]))],
    })
    return BuiltIllumination(path=str(out.path), sha256=out.sha256, size=out.size,
                             stats=stats, seconds=time.perf_counter() - start,
                             worker=f"{socket.gethostname()}:{os.getpid()}")
