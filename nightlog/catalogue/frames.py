"""Recording frames: lookups by id, checksum and path, versions, moves.

A mosaic file is one frame per CCD: its rows share the path, version and
checksum, and are added, versioned and moved together. Lookups that answer one
frame answer the file's first CCD (lowest id); :func:`frames_of_file` all of them.

Every change of which frame is the latest at a path is counted in the night tally
(:mod:`nightlog.catalogue.night_tally`); every new calibration frame waits for a
master (:mod:`nightlog.catalogue.awaiting`).

Functions take the caller's session and never commit.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from nightlog.catalogue.awaiting import await_masters
from nightlog.catalogue.models import Frame, Product
from nightlog.catalogue.night_tally import tally_frame
from nightlog.errors import NotFoundError
from nightlog.header.model import NormalizedHeader
from nightlog.states import FrameStatus, ProductKind, ProductStatus

__all__ = [
    "FileFacts",
    "add_frame",
    "add_frames",
    "find_frame",
    "frame_by_sha256",
    "frames_by_sha256",
    "frames_of_file",
    "header_columns",
    "latest_by_path",
    "latest_by_paths",
    "move_frame",
    "move_frames",
    "newest_per_setup",
    "science_frame_ids",
    "unreduced_science_by_night",
    "unsaved_frame",
]


class FileFacts:
    """What the store knows of a file, as the catalogue needs it (no FITS objects)."""

    __slots__ = ("amplifiers", "hdu", "header_json", "mtime", "path", "sha256", "size")

    def __init__(self, *, path: str, sha256: str, size: int, mtime: dt.datetime, hdu: int,
                 header_json: list[Any], amplifiers: dict[str, Any] | None = None) -> None:
        self.path = path
        self.sha256 = sha256
        self.size = size
        self.mtime = mtime
        self.hdu = hdu
        self.header_json = header_json
        self.amplifiers = amplifiers


def find_frame(session: Session, ref: str) -> Frame:
    """The frame a user names: its id, or the path of its file (newest version).

    Parameters
    ----------
    session : Session
        The caller's session.
    ref : str
        Digits are an id (any version); anything else is a path, made absolute
        (no file is opened).

    Returns
    -------
    Frame
        The frame.

    Raises
    ------
    NotFoundError
        No frame has this id, or no latest frame this path.
    """
    if ref.isdigit():
        frame = session.get(Frame, int(ref))
    else:
        frame = latest_by_path(session, os.path.abspath(ref))
    if frame is None:
        raise NotFoundError(f"no catalogued frame {ref!r} (give an id or a path)")
    return frame


def frame_by_sha256(session: Session, sha256: str) -> Frame | None:
    """The frame with this content (a mosaic's first CCD), if catalogued."""
    return session.scalars(select(Frame).where(Frame.sha256 == sha256)
                           .order_by(Frame.id).limit(1)).first()


def frames_of_file(session: Session, sha256: str) -> list[Frame]:
    """Every frame of this content: one, or one per CCD of a mosaic (by id)."""
    return list(session.scalars(select(Frame).where(Frame.sha256 == sha256)
                                .order_by(Frame.id)))


def _latest_at(session: Session, path: str) -> list[Frame]:
    return list(session.scalars(select(Frame).where(Frame.path == path,
                                                    Frame.is_latest.is_(True))
                                .order_by(Frame.id)))


def latest_by_path(session: Session, path: str) -> Frame | None:
    """The newest version of the frame catalogued at ``path`` (a mosaic's first CCD)."""
    found = _latest_at(session, path)
    return found[0] if found else None


def latest_by_paths(session: Session, paths: Iterable[str]) -> dict[str, Frame]:
    """Newest frames at each of ``paths`` (one query per 500 paths)."""
    wanted = list(paths)
    found: dict[str, Frame] = {}
    for i in range(0, len(wanted), 500):
        chunk = wanted[i : i + 500]
        rows = session.scalars(
            select(Frame).where(Frame.path.in_(chunk), Frame.is_latest.is_(True))
            .order_by(Frame.id)
        )
        for f in rows:
            found.setdefault(f.path, f)  # a mosaic's first CCD
    return found


def frames_by_sha256(session: Session, shas: Iterable[str]) -> dict[str, Frame]:
    """Frames with these contents (one query per 500 checksums)."""
    wanted = list(shas)
    found: dict[str, Frame] = {}
    for i in range(0, len(wanted), 500):
        rows = session.scalars(select(Frame).where(Frame.sha256.in_(wanted[i : i + 500]))
                               .order_by(Frame.id))
        for f in rows:
            found.setdefault(f.sha256, f)  # a mosaic's first CCD
    return found


def header_columns(norm: NormalizedHeader) -> dict[str, Any]:
    """The frame columns that come from a normalised header (no file facts)."""
    return {
        "profile": norm.profile,
        "kind": norm.kind,
        "raw_type": norm.raw_type,
        "exptime": norm.exptime,
        "filter": norm.filter,
        "obs_time": norm.obs_time,
        "night": norm.night,
        "instrument": norm.instrument,
        "detector": norm.detector,
        "binning": f"{norm.binning[0]}x{norm.binning[1]}",
        "readout_mode": norm.readout_mode,
        "gain_setting": norm.gain_setting,
        "offset": norm.offset,
        "bayer_pattern": norm.bayer_pattern,
        "object_name": norm.object_name,
        "gain": norm.gain,
        "read_noise": norm.read_noise,
        "ccd_temp": norm.ccd_temp,
        "set_temp": norm.set_temp,
        "saturation": norm.saturation,
        "naxis1": norm.shape[1],
        "naxis2": norm.shape[0],
        "datasec": norm.datasec,
        "trimsec": norm.trimsec,
        "biassec": norm.biassec,
        "ccdsec": norm.ccdsec,
        "setup_key": norm.setup_key,
        "window": norm.window,
        "ccd": norm.ccd,
    }


def unsaved_frame(norm: NormalizedHeader, header_json: list[Any]) -> Frame:
    """The frame ingestion would record for ``norm``, in no session and never stored:
    what a dry run (``nightlog profile check``) hands the reduction's own choices."""
    return Frame(**header_columns(norm), header=header_json, status=FrameStatus.OK)


def add_frame(session: Session, facts: FileFacts, norm: NormalizedHeader, *,
              software_version: str, now: dt.datetime | None = None,
              previous: Frame | None = None, check_previous: bool = True) -> Frame:
    """Add a frame row (a new version if ``facts.path`` already holds other bytes).

    ``previous`` is the latest frame at the path if the caller looked it up
    (``check_previous=False`` then trusts it, ``None`` meaning there is none).
    """
    (frame,) = add_frames(session, [(facts, norm)], software_version=software_version,
                          now=now, previous=None if previous is None else [previous],
                          check_previous=check_previous)
    return frame


def add_frames(session: Session, rows: Sequence[tuple[FileFacts, NormalizedHeader]], *,
               software_version: str, now: dt.datetime | None = None,
               previous: Sequence[Frame] | None = None, check_previous: bool = True
               ) -> list[Frame]:
    """Add the frames of one file version: one, or one per CCD of a mosaic.

    Every row shares the path and its new version. ``previous``: the latest frames
    at the path if the caller looked them up (``check_previous=False`` then trusts
    it; with ``check_previous`` they are looked up, every CCD of them); they stop
    being the latest. The calibration frames among them wait for a master.
    """
    path = rows[0][0].path
    older = list(previous or ())
    if check_previous:
        older = _latest_at(session, path)
    elif older and older[0].ccd is not None:
        older = _latest_at(session, path)  # every CCD of the mosaic, not only the first
    version = 1
    if older:
        version = max(f.path_version for f in older) + 1
        for f in older:
            if f.is_latest:
                tally_frame(session, f, -1)
            f.is_latest = False
        session.flush()  # the old version stops being latest before the new one exists
    stamp = now or dt.datetime.now(dt.UTC)
    frames = []
    for facts, norm in rows:
        frame = Frame(
            path=facts.path,
            path_version=version,
            is_latest=True,
            sha256=facts.sha256,
            size=facts.size,
            mtime=facts.mtime,
            hdu=facts.hdu,
            **header_columns(norm),
            header=facts.header_json,
            amplifiers=facts.amplifiers,
            status=FrameStatus.OK,
            ingested_at=stamp,
            software_version=software_version,
        )
        session.add(frame)
        tally_frame(session, frame, +1)
        frames.append(frame)
    await_masters(session, frames)
    return frames


def move_frame(session: Session, frame: Frame, new_path: str, mtime: dt.datetime) -> None:
    """Record that ``frame``'s bytes now live at ``new_path``.

    If ``new_path`` held another frame, that one stops being the latest there.
    """
    move_frames(session, [frame], new_path, mtime)


def move_frames(session: Session, frames: Sequence[Frame], new_path: str,
                mtime: dt.datetime) -> None:
    """Record that the bytes of ``frames`` (one file's: a mosaic's CCDs) now live at
    ``new_path``; the frames that were latest there stop being so."""
    mine = {f.id for f in frames}
    others = [f for f in _latest_at(session, new_path) if f.id not in mine]
    version = 1
    if others:
        version = max(f.path_version for f in others) + 1
        for other in others:
            tally_frame(session, other, -1)
            other.is_latest = False
    for frame in frames:
        if not frame.is_latest:
            tally_frame(session, frame, +1)
        frame.path = new_path
        frame.path_version = version
        frame.is_latest = True
        frame.mtime = mtime


def newest_per_setup(session: Session, instrument: str, *, filter: str | None = None
                     ) -> list[Frame]:
    """The newest usable frame of each set-up of ``instrument`` (through ``filter``, if
    given), newest first: one frame per set-up a master of the instrument may calibrate
    (and per window of it: a window shares its full readout's set-up).
    """
    stmt = (select(func.max(Frame.id)).where(Frame.instrument == instrument,
                                             Frame.is_latest.is_(True),
                                             Frame.status == FrameStatus.OK)
            .group_by(Frame.setup_key, Frame.window))
    if filter is not None:
        stmt = stmt.where(Frame.filter == filter)
    ids = list(session.scalars(stmt))
    if not ids:
        return []
    return list(session.scalars(select(Frame).where(Frame.id.in_(ids))
                                .order_by(Frame.obs_time.desc(), Frame.id.desc())))


def science_frame_ids(session: Session, *, night: dt.date | None = None,
                      since: dt.date | None = None) -> list[int]:
    """Ids of the latest usable science frames (of ``night``, or of every night from
    ``since``), in time order."""
    stmt = select(Frame.id).where(Frame.kind == "science", Frame.is_latest.is_(True),
                                  Frame.status == FrameStatus.OK)
    if night is not None:
        stmt = stmt.where(Frame.night == night)
    if since is not None:
        stmt = stmt.where(Frame.night >= since)
    return list(session.scalars(stmt.order_by(Frame.obs_time, Frame.id)))


def unreduced_science_by_night(session: Session, *, besides: dt.date | None = None
                               ) -> dict[dt.date, int]:
    """How many latest usable science frames of each night have no current final
    product (a quick-look is not a reduction), nights in time order; ``besides``
    left out."""
    reduced = select(Product.frame_id).where(Product.status == ProductStatus.CURRENT,
                                             Product.kind == ProductKind.FINAL)
    stmt = (select(Frame.night, func.count(Frame.id))
            .where(Frame.kind == "science", Frame.is_latest.is_(True),
                   Frame.status == FrameStatus.OK, Frame.night.is_not(None),
                   Frame.id.not_in(reduced))
            .group_by(Frame.night).order_by(Frame.night))
    if besides is not None:
        stmt = stmt.where(Frame.night != besides)
    return {night: int(n) for night, n in session.execute(stmt)}
