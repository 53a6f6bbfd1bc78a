"""Subarray frames and masters: which master serves which window, cropped how.

A subarray frame (a window of the detector, see :mod:`nightlog.header.window`)
has the set-up of the full readout, so the grouping rules find the full-frame
masters of its camera; the ``window`` rule of matching then decides:

* a master made of windowed frames serves only frames of the *same* window (a
  master of window A never serves window B, nor a full frame);
* a full-frame master serves a window whose data lie inside the master's data
  (same binning: the ``group.binning`` rule), cropped to it; a window reaching
  into the master's overscan or off its trimmed area is refused, with the numbers;
* a bias master made with overscan subtraction carries only the residual bias
  structure: it never serves a window without an overscan (its bias level would
  stay in the frame), nor the reverse.

The crop is in the master's pixels, ``(y0, y1, x0, x1)`` (numpy, 0-based, end
exclusive), and the window rule's detail says it in FITS form so that ``nightlog
match`` explains it. Nothing here reads a file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nightlog.catalogue.models import Frame, Master
from nightlog.errors import SectionError
from nightlog.header.profiles import InstrumentProfile
from nightlog.header.window import full_readout, window_origin
from nightlog.sections import parse_section

__all__ = ["WindowVerdict", "binning_of", "crop_section", "frame_data_origin", "grouping_shape",
           "window_verdict"]

Crop = tuple[int, int, int, int]


@dataclass(frozen=True, slots=True)
class WindowVerdict:
    """Whether a master may serve a frame's window, why, and the crop it takes."""

    passed: bool
    detail: str
    crop: Crop | None = None


def crop_section(crop: Crop) -> str:
    """A crop ``(y0, y1, x0, x1)`` as a FITS section ``'[x0+1:x1,y0+1:y1]'``."""
    y0, y1, x0, x1 = crop
    return f"[{x0 + 1}:{x1},{y0 + 1}:{y1}]"


def _trim_box(trim: str | None, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """``(y0, x0, ny, nx)`` of a trim section of an image of ``shape`` (whole: ``None``)."""
    if trim is None:
        return (0, 0, shape[0], shape[1])
    rows, cols = parse_section(trim, shape)
    r0, r1, _ = rows.indices(shape[0])
    c0, c1, _ = cols.indices(shape[1])
    return (r0, c0, r1 - r0, c1 - c0)


def frame_data_origin(frame: Frame) -> tuple[int, int, int, int] | None:
    """``(x0, y0, nx, ny)`` of a windowed frame's *trimmed* pixels on the full readout
    (0-based, binned), or ``None`` for a full frame."""
    if frame.window is None:
        return None
    x0, y0, _, _ = window_origin(frame.window)
    ty, tx, ny, nx = _trim_box(frame.trimsec or frame.datasec, (frame.naxis2, frame.naxis1))
    return (x0 + tx, y0 + ty, nx, ny)


def binning_of(frame: Frame) -> tuple[int, int]:
    """A frame's ``(x, y)`` binning from its catalogued ``'XxY'``."""
    x, _, y = frame.binning.partition("x")
    return (int(x), int(y or x))


def grouping_shape(frame: Frame, profile: InstrumentProfile) -> str:
    """The ``shape`` a frame is grouped and matched by: a window's is the full
    readout's at its binning (the shape in its set-up key)."""
    if frame.window is not None and profile.full_shape is not None:
        ny, nx = full_readout(profile.full_shape, binning_of(frame))
        return f"{ny}x{nx}"
    return f"{frame.naxis2}x{frame.naxis1}"


def _master_shape(master: Master, frame: Frame, profile: InstrumentProfile
                  ) -> tuple[int, int] | None:
    text = (master.group or {}).get("shape")
    if isinstance(text, str) and "x" in text:
        ny, _, nx = text.partition("x")
        return (int(ny), int(nx))
    if profile.full_shape is None:
        return None
    return full_readout(profile.full_shape, binning_of(frame))


def _preparation(master: Master) -> dict[str, Any] | None:
    prep = (master.parameters or {}).get("preparation")
    return prep if isinstance(prep, dict) else None


def _full_master(frame: Frame, master: Master, role: str, profile: InstrumentProfile
                 ) -> WindowVerdict:
    assert frame.window is not None
    prep = _preparation(master)
    shape = _master_shape(master, frame, profile)
    if prep is None or shape is None:
        return WindowVerdict(False, f"full-frame master, but where its pixels lie on the "
                                    f"detector is not recorded: cannot crop it to window "
                                    f"{frame.window}")
    overscanned = profile.subtract_overscan and bool(frame.biassec)
    if role == "bias" and (prep.get("overscan") is not None) != overscanned:
        why = ("the master is overscan-subtracted and the window has no overscan: its "
               "bias level would stay" if not overscanned else
               "the window's overscan is subtracted and the master's was not")
        return WindowVerdict(False, f"full-frame master not used for window "
                                    f"{frame.window}: {why}")
    try:
        my0, mx0, mny, mnx = _trim_box(prep.get("trim"), shape)
        data = frame_data_origin(frame)
    except SectionError as exc:
        return WindowVerdict(False, f"window {frame.window}: {exc}")
    assert data is not None
    x0, y0, nx, ny = data
    crop = (y0 - my0, y0 - my0 + ny, x0 - mx0, x0 - mx0 + nx)
    if crop[0] < 0 or crop[2] < 0 or crop[1] > mny or crop[3] > mnx:
        return WindowVerdict(False, f"window {frame.window} reaches outside the master's "
                                    f"data ({mnx}x{mny} pixels from column {mx0 + 1}, row "
                                    f"{my0 + 1} of the full readout)")
    return WindowVerdict(True, f"full-frame master cropped to {crop_section(crop)} for "
                               f"window {frame.window}", crop)


def window_verdict(frame: Frame, master: Master, role: str, profile: InstrumentProfile
                   ) -> WindowVerdict | None:
    """The ``window`` rule for ``master`` serving ``frame`` in ``role``; ``None`` when
    neither is a window (the rule does not apply)."""
    if frame.window is None and master.window is None:
        return None
    if master.window is not None:
        if frame.window == master.window:
            return WindowVerdict(True, f"master of the same window {master.window}")
        what = "a full frame" if frame.window is None else f"window {frame.window}"
        return WindowVerdict(False, f"master of window {master.window} never serves {what}")
    return _full_master(frame, master, role, profile)
