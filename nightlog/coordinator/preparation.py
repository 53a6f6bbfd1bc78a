"""The per-frame steps before calibration: overscan and trim, from the profile.

With overscan subtraction on, masters are built from overscan-corrected frames
and carry only the residual bias structure, and science frames are corrected the
same way: never subtract both an overscan and a full bias level.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from astropy.nddata import CCDData

from nightlog.catalogue.models import Frame
from nightlog.header.profiles import InstrumentProfile
from nightlog.reduction.overscan import subtract_overscan
from nightlog.reduction.trim import trim_image
from nightlog.sections import parse_section

__all__ = ["Preparation", "preparation_for", "skip_columns_for"]


@dataclass(frozen=True, slots=True)
class Preparation:
    """Overscan region (the raw ``BIASSEC``, and the columns next to the data to
    skip) and trim section of one set-up; either may be absent. Science frames go
    through the same :func:`subtract_overscan` call with the same arguments."""

    overscan: str | None
    skip_columns: int
    trim: str | None
    #: One overscan level per row (the reduction), or one for the frame (the
    #: characterisation: a per-row level estimated from a few columns adds its own
    #: noise to every row, and read noise and gain measured after it come out wrong).
    per_row: bool = True

    def __call__(self, ccd: CCDData) -> CCDData:
        out = ccd
        if self.overscan is not None:
            out = subtract_overscan(out, region=self.overscan, skip_columns=self.skip_columns,
                                    method="median", per_row=self.per_row)
        if self.trim is not None:
            out = trim_image(out, self.trim)
        return out

    def describe(self) -> dict[str, Any]:
        """JSON-ready parameters for provenance."""
        over = None
        if self.overscan is not None:
            over = {"region": self.overscan, "skip_columns": self.skip_columns,
                    "statistic": "median per row" if self.per_row else "median of the region"}
        return {"overscan": over, "trim": self.trim}


def skip_columns_for(frame: Frame, profile: InstrumentProfile) -> int:
    """Overscan columns to skip next to the data for this frame.

    The profile counts them on the camera's full, unbinned readout; a frame of
    another width (binned, or a scaled simulation) skips the same fraction of the
    detector, rounded up, and always keeps at least one overscan column.
    """
    skip = profile.overscan_skip_columns
    if skip and profile.full_shape is not None and frame.naxis1 != profile.full_shape[1]:
        skip = math.ceil(skip * frame.naxis1 / profile.full_shape[1])
    if skip and frame.biassec:
        _, cols = parse_section(frame.biassec, (frame.naxis2, frame.naxis1))
        width = len(range(*cols.indices(frame.naxis1)))
        skip = min(skip, max(width - 1, 0))
    return skip


def preparation_for(frame: Frame, profile: InstrumentProfile) -> Preparation:
    """Overscan and trim of ``frame`` as its profile asks."""
    overscan = frame.biassec if profile.subtract_overscan and frame.biassec else None
    return Preparation(overscan=overscan, skip_columns=skip_columns_for(frame, profile),
                       trim=frame.trimsec or frame.datasec)
