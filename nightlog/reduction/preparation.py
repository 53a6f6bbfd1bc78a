"""The per-frame steps before calibration: overscan and trim, as one picklable value.

With overscan subtraction on, masters are built from overscan-corrected frames
and carry only the residual bias structure, and science frames are corrected the
same way: never subtract both an overscan and a full bias level.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from astropy.nddata import CCDData

from nightlog.reduction.overscan import subtract_overscan
from nightlog.reduction.trim import trim_image
from nightlog.sections import parse_section, section_shape

__all__ = ["Preparation", "overscan_skip_columns"]


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
    #: A polynomial of this degree fitted to the per-row levels, with IRAF's
    #: rejection of outlying rows (see :func:`subtract_overscan`); none by default.
    model_degree: int | None = None
    niterate: int = 0
    low_reject: float = 3.0
    high_reject: float = 3.0

    def one_level(self) -> Preparation:
        """The same steps with one overscan level for the frame and no fit (the
        characterisation's)."""
        return dataclasses.replace(self, per_row=False, model_degree=None, niterate=0)

    def __call__(self, ccd: CCDData) -> CCDData:
        out = ccd
        if self.overscan is not None:
            out = subtract_overscan(out, region=self.overscan, skip_columns=self.skip_columns,
                                    method="median", per_row=self.per_row,
                                    model_degree=self.model_degree, niterate=self.niterate,
                                    low_reject=self.low_reject, high_reject=self.high_reject)
        if self.trim is not None:
            out = trim_image(out, self.trim)
        return out

    def trimmed_shape(self, shape: tuple[int, int]) -> tuple[int, int]:
        """The shape of a raw frame of ``shape`` once trimmed."""
        if self.trim is None:
            return shape
        return section_shape(parse_section(self.trim, shape), shape)

    def describe(self) -> dict[str, Any]:
        """JSON-ready parameters for provenance."""
        over = None
        if self.overscan is not None:
            over = {"region": self.overscan, "skip_columns": self.skip_columns,
                    "statistic": "median per row" if self.per_row else "median of the region"}
            if self.model_degree is not None:
                over["fit_degree"] = self.model_degree
            if self.niterate:
                over["rejection"] = {"niterate": self.niterate, "low_reject": self.low_reject,
                                     "high_reject": self.high_reject}
        return {"overscan": over, "trim": self.trim}


def overscan_skip_columns(skip: int, *, naxis1: int, naxis2: int, biassec: str | None,
                          full_width: int | None = None) -> int:
    """Overscan columns to skip next to the data of a frame ``naxis1`` pixels wide.

    Parameters
    ----------
    skip : int
        Columns to skip, counted on the camera's full, unbinned readout.
    naxis1, naxis2 : int
        The frame's width and height in pixels.
    biassec : str or None
        The frame's overscan section (FITS convention, 1-based, inclusive).
    full_width : int, optional
        Width of the full, unbinned readout; a frame of another width (binned, or
        a scaled simulation) skips the same fraction of the detector, rounded up.

    Returns
    -------
    int
        The columns to skip; at least one overscan column is always kept.
    """
    if skip and full_width is not None and naxis1 != full_width:
        skip = math.ceil(skip * naxis1 / full_width)
    if skip and biassec:
        _, cols = parse_section(biassec, (naxis2, naxis1))
        width = len(range(*cols.indices(naxis1)))
        skip = min(skip, max(width - 1, 0))
    return skip
