"""Catalogue rows as plain records: the dictionaries scripts read as JSON or CSV.

Each record holds plain values (numbers, strings, ISO dates, ``None``), so a
caller can print, serialise or compare it without a session.
"""

from __future__ import annotations

from typing import Any

from nightlog.catalogue.models import Frame, Master

__all__ = ["frame_record", "master_record"]


def frame_record(frame: Frame) -> dict[str, Any]:
    """The record of a frame, as ``nightlog frames`` gives it.

    Parameters
    ----------
    frame : Frame
        A catalogued frame.

    Returns
    -------
    dict
        Its identity, file, normalised header values, version and status.
    """
    return {
        "id": frame.id,
        "path": frame.path,
        "sha256": frame.sha256,
        "kind": frame.kind,
        "night": frame.night.isoformat(),
        "obs_time": frame.obs_time.isoformat(),
        "exptime": frame.exptime,
        "filter": frame.filter,
        "object": frame.object_name,
        "instrument": frame.instrument,
        "detector": frame.detector,
        "binning": frame.binning,
        "readout_mode": frame.readout_mode,
        "gain_setting": frame.gain_setting,
        "offset": frame.offset,
        "bayer_pattern": frame.bayer_pattern,
        "profile": frame.profile,
        "setup_key": frame.setup_key,
        "naxis1": frame.naxis1,
        "naxis2": frame.naxis2,
        "size": frame.size,
        "path_version": frame.path_version,
        "is_latest": frame.is_latest,
        "status": frame.status,
    }


def master_record(m: Master) -> dict[str, Any]:
    """The record of a master, as ``nightlog calib list`` and ``show`` give it.

    Parameters
    ----------
    m : Master
        A master calibration.

    Returns
    -------
    dict
        Its group, version, statistics, quality, validity and file.
    """
    stats = m.stats or {}
    return {
        "id": m.id, "kind": m.kind, "night": m.night.isoformat(), "version": m.version,
        "instrument": m.instrument, "filter": m.filter, "set_temp": m.set_temp,
        "exptime": m.exptime, "n_frames": m.n_frames, "level": stats.get("level"),
        "noise": stats.get("noise"), "quality": m.quality, "quality_reason": m.quality_reason,
        "superseded_by": m.superseded_by_id,
        "valid_from": m.valid_from.isoformat() if m.valid_from else None,
        "valid_until": m.valid_until.isoformat() if m.valid_until else None,
        "path": m.path, "sha256": m.sha256, "group_key": m.group_key,
        "first_obs": m.first_obs.isoformat(), "last_obs": m.last_obs.isoformat(),
        "stats": stats,
    }
