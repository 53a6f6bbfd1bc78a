"""The quality figures of frames, as the live view's table shows them.

This module is the one place the web view learns what a frame's quality record
holds: :data:`QUALITY_COLUMNS` names the figures (key, heading, unit) and
:func:`frame_quality` fetches them for a page of frames. Until the catalogue
records a per-frame quality (sky, FWHM, sources, a poor flag), there are none:
the table then says "not measured" for every frame rather than showing a blank
that could pass for a good value. Adding a figure is one edit here: its column,
and its value in the mapping :func:`frame_quality` returns.
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


#: The figures the frame table shows, in order (none recorded yet).
QUALITY_COLUMNS: tuple[QualityColumn, ...] = ()


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
        (the page says "not measured"). Empty while the catalogue keeps no quality
        record.
    """
    del session, frame_ids  # no quality record exists in the catalogue yet
    return {}
