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
from astropy import units as u
from astropy.io import fits
from sqlalchemy.orm import Session

from nightlog.calibration.grouping import group_of
from nightlog.catalogue.frames import find_frame, newest_per_setup
from nightlog.catalogue.masters import NewMaster, add_master, latest_version
from nightlog.catalogue.models import Frame
from nightlog.coordinator.context import JobContext
from nightlog.errors import ConfigurationError, ShapeMismatchError
from nightlog.header.profiles import InstrumentProfile
from nightlog.sections import parse_section, section_shape
from nightlog.store.products import read_product
from nightlog.store.raw import sha256_of

__all__ = ["AddedMaster", "add_external_master"]

_KINDS = ("bias", "dark", "flat")
_FLAT_NORM = (0.5, 2.0)


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


def _first(header: fits.Header, keywords: tuple[str, ...]) -> Any:
    for key in keywords:
        value = header.get(key)
        if value is not None and str(value).strip() != "":
            return value.strip() if isinstance(value, str) else value
    return None


def _refuse(path: str, why: str) -> ConfigurationError:
    return ConfigurationError(f"cannot add {path} as a master: {why}")


def _unit_text(unit: u.UnitBase) -> str:
    return "dimensionless" if unit == u.dimensionless_unscaled else unit.to_string()


def _kind_of(header: fits.Header, given: str | None, profile: InstrumentProfile,
             path: str) -> str:
    stated = header.get("NLKIND")
    if stated is None:
        raw = _first(header, profile.type_keywords)
        if raw is not None:
            words = str(raw).upper().replace("MASTER", "").replace("ZERO", "BIAS").split()
            found = {profile.classify(w) for w in words} & set(_KINDS)
            stated = found.pop() if len(found) == 1 else None
    if given is not None and stated is not None and given != stated:
        raise _refuse(path, f"its header says it is a {stated}, not a {given}")
    kind = given or stated
    if kind not in _KINDS:
        raise _refuse(path, "its kind is not stated: give --kind bias, dark or flat")
    return str(kind)


def _check_setup(header: fits.Header, kind: str, frame: Frame, profile: InstrumentProfile,
                 path: str) -> None:
    instrument = _first(header, profile.instrument_keywords)
    if instrument is not None and frame.instrument is not None \
            and str(instrument) != frame.instrument:
        raise _refuse(path, f"made for instrument {instrument!r}, frame {frame.id} is of "
                            f"{frame.instrument!r}")
    if kind == "flat":
        filt = _first(header, profile.filter_keywords)
        if filt is None:
            raise _refuse(path, "a master flat must name its filter (FILTER)")
        if str(filt) != (frame.filter or ""):
            raise _refuse(path, f"a flat of filter {filt!r}; frame {frame.id} was taken "
                                f"through {frame.filter!r}")
    if kind == "dark":
        set_temp = _first(header, profile.set_temp_keywords)
        if set_temp is not None and frame.set_temp is not None \
                and abs(float(set_temp) - frame.set_temp) > profile.dark_temp_tolerance:
            raise _refuse(path, f"a dark at {float(set_temp):g} °C; frame {frame.id}'s set "
                                f"point is {frame.set_temp:g} °C")


def _check_unit(unit: u.UnitBase, kind: str, data: np.ndarray, path: str,
                darks_scale: bool) -> bool:
    """Whether the master is a rate; raises when its unit does not fit its kind."""
    if kind == "bias" and unit == u.adu:
        return False
    if kind == "dark" and unit == u.adu / u.s:
        if not darks_scale:
            raise _refuse(path, "a dark rate (adu / s) for a camera whose darks do not scale")
        return True
    if kind == "dark" and unit == u.adu:
        return False
    if kind == "flat" and unit in (u.dimensionless_unscaled, u.adu):
        level = float(np.nanmedian(data))
        if not _FLAT_NORM[0] <= level <= _FLAT_NORM[1]:
            raise _refuse(path, f"a master flat is normalised to 1; its median is {level:g}")
        return False
    wanted = {"bias": "adu", "dark": "adu or adu / s", "flat": "dimensionless or adu"}[kind]
    raise _refuse(path, f"its unit (BUNIT) is {_unit_text(unit)}; a {kind} "
                        f"master is in {wanted}")


def _trimmed_shape(ctx: JobContext, frame: Frame) -> tuple[int, int]:
    shape = (frame.naxis2, frame.naxis1)
    trim = ctx.preparation_of(frame).trim
    return shape if trim is None else section_shape(parse_section(trim, shape), shape)


def _obs_time(header: fits.Header, frame: Frame) -> dt.datetime:
    text = header.get("DATE-OBS")
    if isinstance(text, str):
        try:
            when = dt.datetime.fromisoformat(text.strip())
        except ValueError:
            return frame.obs_time
        return when if when.tzinfo else when.replace(tzinfo=dt.UTC)
    return frame.obs_time


def _frame_like(session: Session, ctx: JobContext, header: fits.Header,
                shape: tuple[int, ...], kind: str | None, where: str) -> Frame:
    """The frame of the one set-up the header's instrument (and filter) and the shape
    point at; refused when none or several do."""
    instrument = header.get("INSTRUME")
    if not isinstance(instrument, str) or not instrument.strip():
        raise _refuse(where, "its header names no instrument (INSTRUME): give --like FRAME")
    stated = kind or str(header.get("NLKIND") or header.get("IMAGETYP") or "")
    filt = header.get("FILTER") if "flat" in stated.lower() else None
    found = [f for f in newest_per_setup(session, instrument.strip(),
                                         filter=filt.strip() if isinstance(filt, str) else None)
             if _trimmed_shape(ctx, f) == shape]
    if len(found) != 1:
        raise _refuse(where, f"{len(found)} set-ups of {instrument.strip()!r} have its shape "
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
    kind = _kind_of(header, kind, profile, where)
    _check_setup(header, kind, frame, profile, where)
    expected = _trimmed_shape(ctx, frame)
    if ccd.shape != expected:
        raise ShapeMismatchError(f"cannot add {where} as a master: its image is "
                                 f"{ccd.shape[0]}x{ccd.shape[1]}, frame {frame.id}'s data "
                                 f"area {expected[0]}x{expected[1]}")
    overscanned = ctx.preparation_of(frame).overscan is not None
    if overscanned != ("OVERSCAN" in header):
        raise _refuse(where, "the frames of this set-up are overscan-subtracted and the "
                             "master is not (no OVERSCAN card)" if overscanned else
                             "the master is overscan-subtracted (OVERSCAN card) and the "
                             "frames of this set-up are not")
    data = np.asarray(ccd.data, dtype=float)
    is_rate = _check_unit(ccd.unit, kind, data, where, profile.darks_scale)
    exptime = None
    if kind == "dark" and not is_rate:
        value = _first(header, profile.exptime_keywords)
        if value is None:
            raise _refuse(where, "a dark in adu must state its exposure (EXPTIME)")
        exptime = float(value)
    spec = group_of(frame, kind, profile)
    night = night or frame.night
    previous = latest_version(session, spec.key, night)
    when = _obs_time(header, frame)
    finite = data[np.isfinite(data)]
    level = float(np.median(finite)) if finite.size else math.nan
    noise = float(1.4826 * np.median(np.abs(finite - level))) if finite.size else math.nan
    sha256 = sha256_of(Path(where))
    source = {"external": True, "source": where, "unit": _unit_text(ccd.unit),
              "like_frame": frame.id}
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
                       unit=_unit_text(ccd.unit),
                       superseded=None if previous is None else previous.id)
