"""Registering a master made elsewhere (``nightlog calib add``), checked before it is
trusted.

A master built by another pipeline (ccdproc, IRAF, a colleague's script) joins the
catalogue as its group's newest version for a night, so that matching treats it as
any master. Before that it is checked against a catalogued frame of the set-up it
calibrates (``like``; by default the newest frame of the one set-up of the header's
instrument, and for a flat its filter, whose data area has the master's shape):

- **kind**: the one given, or the file's ``NLKIND`` or frame-type keyword, read
  with the frame's instrument profile; the two must agree;
- **set-up**: the instrument, and for flats the filter, for darks the set
  temperature (within the profile's tolerance) and, when the camera's darks do not
  scale, the exposure, where the file's header states them;
- **unit**: ``BUNIT`` must be ``adu`` for a bias, ``adu`` (with its exposure) or
  ``adu / s`` for a dark; a flat is dimensionless or ``adu`` and normalised to 1;
- **shape**: the frame's trimmed data area;
- **overscan**: when the set-up's frames are overscan-subtracted, the master must be
  too and say so with an ``OVERSCAN`` card (and must not when they are not).

The file stays where it is, recorded with its SHA-256 (``provenance --verify`` sees
any later change); its statistics and parameters say ``"external": true``, and it has
no input frames. The group's previous version for that night, if any, is
superseded (and kept). A later ``calib build`` of that night's own frames makes a
newer version again.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from sqlalchemy.orm import Session

from nightlog.calibration.external_checks import (
    check_setup,
    check_unit,
    header_value,
    kind_of,
    obs_time_of,
    refusal,
    unit_text,
)
from nightlog.calibration.grouping import group_of
from nightlog.catalogue.frames import find_frame, newest_per_setup
from nightlog.catalogue.masters import NewMaster, add_master, latest_version
from nightlog.catalogue.models import Frame
from nightlog.coordinator.context import JobContext
from nightlog.errors import ShapeMismatchError
from nightlog.store.products import read_product
from nightlog.store.raw import sha256_of

__all__ = ["AddedMaster", "add_external_master"]



@dataclass(frozen=True, slots=True)
class AddedMaster:
    """A registered external master: its id, group and what it replaced."""

    id: int
    kind: str
    night: dt.date
    version: int
    group_key: str
    path: str
    sha256: str
    unit: str
    superseded: int | None

    def as_dict(self) -> dict[str, Any]:
        """The JSON record of ``nightlog calib add --format json``."""
        return {"id": self.id, "kind": self.kind, "night": self.night.isoformat(),
                "version": self.version, "group_key": self.group_key, "path": self.path,
                "sha256": self.sha256, "unit": self.unit, "superseded": self.superseded,
                "external": True}


def _frame_like(session: Session, ctx: JobContext, header: fits.Header,
                shape: tuple[int, ...], kind: str | None, where: str) -> Frame:
    """The frame of the one set-up the header's instrument (and filter) and the shape
    point at; refused when none or several do."""
    instrument = header.get("INSTRUME")
    if not isinstance(instrument, str) or not instrument.strip():
        raise refusal(where, "its header names no instrument (INSTRUME): give --like FRAME")
    stated = kind or str(header.get("NLKIND") or header.get("IMAGETYP") or "")
    filt = header.get("FILTER") if "flat" in stated.lower() else None
    found = [f for f in newest_per_setup(session, instrument.strip(),
                                         filter=filt.strip() if isinstance(filt, str) else None)
             if ctx.preparation_of(f).trimmed_shape((f.naxis2, f.naxis1)) == shape]
    if len(found) != 1:
        raise refusal(where, f"{len(found)} set-ups of {instrument.strip()!r} have its shape "
                             f"{'x'.join(map(str, shape))}: give --like FRAME")
    return found[0]


def add_external_master(session: Session, ctx: JobContext, path: str | os.PathLike[str],
                        like: str | None = None, *, kind: str | None = None,
                        night: dt.date | None = None, software_version: str | None = None
                        ) -> AddedMaster:
    """Check the master file at ``path`` and add it to the catalogue (no commit).

    Parameters
    ----------
    session : Session
        The caller's session; the caller commits.
    ctx : JobContext
        Profiles and archive layout.
    path : str or path-like
        The master file (FITS; primary HDU the image, ``BUNIT`` its unit).
    like : str, optional
        A catalogued frame (id or path) of the set-up the master calibrates: one of
        its inputs, or a frame it is meant for. Default: the newest frame of the one
        set-up of the header's ``INSTRUME`` (and ``FILTER``) with the master's shape.
    kind : str, optional
        ``bias``, ``dark`` or ``flat`` (default: from the header).
    night : datetime.date, optional
        Night the master belongs to (default: the frame's).
    software_version : str, optional
        Recorded with the master (default: nightlog's).

    Returns
    -------
    AddedMaster
        The new master.

    Raises
    ------
    ConfigurationError
        The kind, set-up or unit does not fit (the message says which).
    ShapeMismatchError
        The image is not the shape of the frame's trimmed data area.
    UnreadableFileError
        The file cannot be read as an image.
    NotFoundError
        ``like`` names no frame. Without ``like``: ``ConfigurationError`` when no
        set-up, or several, fit the header and shape.
    """
    where = str(Path(path).resolve())
    ccd = read_product(where).ccd
    header = ccd.header
    frame = (_frame_like(session, ctx, header, ccd.shape, kind, where) if like is None
             else find_frame(session, like))
    profile = ctx.profile_of(frame)
    kind = kind_of(header, kind, profile, where)
    check_setup(header, kind, frame, profile, where)
    expected = ctx.preparation_of(frame).trimmed_shape((frame.naxis2, frame.naxis1))
    if ccd.shape != expected:
        raise ShapeMismatchError(f"cannot add {where} as a master: its image is "
                                 f"{ccd.shape[0]}x{ccd.shape[1]}, frame {frame.id}'s data "
                                 f"area {expected[0]}x{expected[1]}")
    overscanned = ctx.preparation_of(frame).overscan is not None
    if overscanned != ("OVERSCAN" in header):
        raise refusal(where, "the frames of this set-up are overscan-subtracted and the "
                             "master is not (no OVERSCAN card)" if overscanned else
                             "the master is overscan-subtracted (OVERSCAN card) and the "
                             "frames of this set-up are not")
    data = np.asarray(ccd.data, dtype=float)
    is_rate = check_unit(ccd.unit, kind, data, where, profile.darks_scale)
    exptime = None
    if kind == "dark" and not is_rate:
        value = header_value(header, profile.exptime_keywords)
        if value is None:
            raise refusal(where, "a dark in adu must state its exposure (EXPTIME)")
        exptime = float(value)
    spec = group_of(frame, kind, profile)
    night = night or frame.night
    previous = latest_version(session, spec.key, night)
    when = obs_time_of(header, frame)
    finite = data[np.isfinite(data)]
    level = float(np.median(finite)) if finite.size else math.nan
    noise = float(1.4826 * np.median(np.abs(finite - level))) if finite.size else math.nan
    sha256 = sha256_of(Path(where))
    # Where its pixels lie (the set-up's trim): a window can then be cut from it.
    source = {"external": True, "source": where, "unit": unit_text(ccd.unit),
              "like_frame": frame.id, "preparation": ctx.preparation_of(frame).describe()}
    n_frames = header.get("NCOMBINE")
    master = add_master(session, NewMaster(
        kind=kind, profile=profile.name, instrument=frame.instrument,
        setup_key=frame.setup_key, group_key=spec.key, group=spec.as_dict(),
        night=night, version=1 if previous is None else previous.version + 1, path=where,
        sha256=sha256, size=Path(where).stat().st_size, first_obs=when, last_obs=when,
        n_frames=int(n_frames) if isinstance(n_frames, int) and n_frames > 0 else 1,
        stats={"external": True, "level": level, "noise": noise},
        parameters=source, software_version=software_version or ctx.software_version,
        filter=frame.filter if kind == "flat" else None, set_temp=frame.set_temp,
        exptime=exptime, is_rate=is_rate,
    ), [], supersedes=None if previous is None else previous.id)
    return AddedMaster(id=master.id, kind=kind, night=night, version=master.version,
                       group_key=spec.key, path=where, sha256=sha256,
                       unit=unit_text(ccd.unit),
                       superseded=None if previous is None else previous.id)
