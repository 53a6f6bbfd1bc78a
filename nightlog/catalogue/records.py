"""Catalogue rows as plain records: the dictionaries scripts read as JSON or CSV.

Each record holds plain values (numbers, strings, ISO dates, ``None``), so a
caller can print, serialise or compare it without a session.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row

from nightlog.catalogue.models import Frame, Master

__all__ = ["FRAME_FIELDS", "MASTER_FIELDS", "frame_record", "master_record",
           "record_of_values"]


#: The fields of a frame's record and the frame column of each, in record order.
FRAME_FIELDS: tuple[tuple[str, str], ...] = (
    ("id", "id"), ("path", "path"), ("sha256", "sha256"), ("kind", "kind"),
    ("night", "night"), ("obs_time", "obs_time"), ("exptime", "exptime"),
    ("filter", "filter"), ("object", "object_name"), ("instrument", "instrument"),
    ("detector", "detector"), ("binning", "binning"), ("readout_mode", "readout_mode"),
    ("gain_setting", "gain_setting"), ("offset", "offset"),
    ("bayer_pattern", "bayer_pattern"), ("profile", "profile"), ("setup_key", "setup_key"),
    ("naxis1", "naxis1"), ("naxis2", "naxis2"), ("window", "window"), ("ccd", "ccd"),
    ("size", "size"), ("path_version", "path_version"), ("is_latest", "is_latest"),
    ("status", "status"),
)


#: The master columns its record is made of (a listing reads these alone: no
#: parameters, no catalogue objects).
MASTER_FIELDS: tuple[str, ...] = (
    "id", "kind", "night", "version", "instrument", "filter", "window", "group",
    "set_temp", "exptime", "is_rate", "n_frames", "stats", "quality", "quality_reason",
    "multi_night", "provisional", "superseded_by_id", "valid_from", "valid_until", "path",
    "sha256", "group_key", "first_obs", "last_obs",
)


def record_of_values(values: Sequence[Any]) -> dict[str, Any]:
    """The record of a frame from its :data:`FRAME_FIELDS` columns' values, in order
    (a row read without the frame: no stored header, no catalogue object)."""
    record = dict(zip((key for key, _ in FRAME_FIELDS), values, strict=True))
    record["night"] = record["night"].isoformat()
    record["obs_time"] = record["obs_time"].isoformat()
    return record


def frame_record(frame: Frame) -> dict[str, Any]:
    """The record of a frame, as ``nightlog frames`` gives it.

    Parameters
    ----------
    frame : Frame
        A catalogued frame.

    Returns
    -------
    dict
        Its identity, file, normalised header values, version and status
        (:data:`FRAME_FIELDS`).
    """
    return record_of_values([getattr(frame, attr) for _, attr in FRAME_FIELDS])


def figure_units(m: Master | Row[Any]) -> tuple[str, str]:
    """The units of a master's ``level`` and ``noise``.

    ``level`` is in ADU (``adu/s`` for a dark rate, a dark scaled by exposure time),
    or in electrons (``e-``, ``e-/s``) for a master assembled from amplifiers (its
    statistics say ``level_unit = "e-"``); ``noise`` is in the master's unit: the
    level's, except for a flat, normalised to 1, whose noise is relative (``1``).
    """
    base = "e-" if (m.stats or {}).get("level_unit") == "e-" else "adu"
    level = f"{base}/s" if m.kind == "dark" and m.is_rate else base
    return level, ("1" if m.kind == "flat" else level)


def master_flags(m: Master | Row[Any]) -> str:
    """A master's flags in words: ``multi-night`` (frames of several nights),
    ``provisional`` (fewer frames than ``min_frames``), comma-separated; ``""``: none."""
    return ",".join(word for word, on in (("multi-night", m.multi_night),
                                          ("provisional", m.provisional)) if on)


def master_record(m: Master | Row[Any]) -> dict[str, Any]:
    """The record of a master, as ``nightlog calib list`` and ``show`` give it.

    Parameters
    ----------
    m : Master or Row
        A master calibration, or a row of its :data:`MASTER_FIELDS` columns.

    Returns
    -------
    dict
        Its group (``ccd``: the CCD of a mosaic's master), version, statistics
        (``level`` and ``noise``, their units in ``level_unit`` and ``noise_unit``),
        quality, flags (``multi_night``, ``provisional`` and in words ``flags``),
        validity and file.
    """
    stats = m.stats or {}
    return {
        "id": m.id, "kind": m.kind, "night": m.night.isoformat(), "version": m.version,
        "instrument": m.instrument, "filter": m.filter, "window": m.window,
        "ccd": (m.group or {}).get("ccd"),  # a mosaic's CCD: part of its group
        "set_temp": m.set_temp,
        "exptime": m.exptime, "n_frames": m.n_frames, "level": stats.get("level"),
        "noise": stats.get("noise"), "level_unit": figure_units(m)[0],
        "noise_unit": figure_units(m)[1],
        "quality": m.quality, "quality_reason": m.quality_reason,
        "multi_night": bool(m.multi_night), "provisional": bool(m.provisional),
        "flags": master_flags(m),
        "superseded_by": m.superseded_by_id,
        "valid_from": m.valid_from.isoformat() if m.valid_from else None,
        "valid_until": m.valid_until.isoformat() if m.valid_until else None,
        "path": m.path, "sha256": m.sha256, "group_key": m.group_key,
        "first_obs": m.first_obs.isoformat(), "last_obs": m.last_obs.isoformat(),
        "stats": stats,
    }
