"""The quality figures of frames, as the live view's table shows them.

This module is the one place the web view learns what a frame's quality record
holds: :data:`QUALITY_COLUMNS` names the figures (key, heading, unit) and
:func:`frame_quality` fetches them for a page of frames, from the quality record
of each frame's current product (:func:`nightlog.catalogue.quality.quality_of`).
A frame without one (not reduced yet, or reduced before quality was measured)
says "not measured" rather than showing a blank that could pass for a good value.
Adding a figure is one edit here: its column.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = ["QUALITY_COLUMNS", "QualityColumn", "frame_quality"]


@dataclass(frozen=True, slots=True)
class QualityColumn:
    """A quality figure: its key in the records, its heading, its unit."""

    key: str
    heading: str
    unit: str = ""


#: The figures the frame table shows, in order.
QUALITY_COLUMNS: tuple[QualityColumn, ...] = (
    QualityColumn("verdict", "verdict"),
    QualityColumn("reasons", "why"),
    QualityColumn("fwhm_arcsec", "FWHM", "arcsec"),
    QualityColumn("fwhm_px", "FWHM", "px"),
    QualityColumn("ellipticity", "ellipticity"),
    QualityColumn("sky_e", "sky", "e-"),
    QualityColumn("n_sources", "sources"),
    QualityColumn("cosmic_ray_pixels", "cosmic-ray pixels"),
    QualityColumn("saturated_fraction", "saturated", "fraction"),
    QualityColumn("airmass", "airmass"),
)


def frame_quality(session: Session, frame_ids: Sequence[int]
                  ) -> dict[int, dict[str, float | int | str | bool | None]]:
    """The quality figures of each frame of ``frame_ids`` that has a quality record.

    Parameters
    ----------
    session : Session
        The caller's session (only read).
    frame_ids : sequence of int
        The frames of the page.

    Returns
    -------
    dict
        ``{frame id: {column key: value}}``; a frame without a record is absent
        (the page says "not measured"). ``reasons`` is the quality rules' words,
        joined, or absent when none applies.
    """
    from nightlog.catalogue.quality import quality_of

    out: dict[int, dict[str, float | int | str | bool | None]] = {}
    for frame_id, record in quality_of(session, frame_ids).items():
        row = {c.key: getattr(record, c.key, None) for c in QUALITY_COLUMNS}
        row["verdict"] = str(record.verdict)
        row["reasons"] = "; ".join(record.reasons) or None
        out[frame_id] = row
    return out
