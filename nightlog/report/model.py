"""What a night report shows, as plain values (no database rows, no files).

The coordinator fills these from the catalogue and the image files; the HTML
renderer only reads them. Every text field may come from a FITS header or a file
name and is escaped when rendered.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from nightlog.report.thumbnails import Thumbnail

__all__ = [
    "AlarmEntry",
    "CalibrationMark",
    "CountRow",
    "CoverageEntry",
    "MasterEntry",
    "MasterUse",
    "MetricRow",
    "NightReport",
    "Picture",
    "Problem",
    "ProductEntry",
    "QualityFigures",
    "RejectedInput",
    "ScienceEntry",
    "TrendPlot",
]


@dataclass(frozen=True, slots=True)
class Picture:
    """A thumbnail, or why there is none (file missing, unreadable)."""

    thumbnail: Thumbnail | None
    note: str = ""


@dataclass(frozen=True, slots=True)
class CountRow:
    """Frames of one kind and filter in the night."""

    kind: str
    filter: str | None
    frames: int
    exposure_s: float


@dataclass(frozen=True, slots=True)
class MetricRow:
    """One statistic of a master beside the median of its calibration history."""

    label: str
    unit: str
    value: float
    #: Median of the good, current masters of the same group up to this night.
    median: float | None
    #: How many masters that median is taken from.
    history: int
    #: Whether the history is long enough for the outlier rule to judge.
    judged: bool
    outlier: bool


@dataclass(frozen=True, slots=True)
class RejectedInput:
    """A frame left out of a master, and why."""

    frame_id: int
    path: str
    reason: str


@dataclass(frozen=True, slots=True)
class MasterEntry:
    """A master built for the night."""

    id: int
    kind: str
    version: int
    group: str
    filter: str | None
    n_frames: int
    quality: str
    quality_reason: str | None
    superseded_by: int | None
    path: str
    picture: Picture
    metrics: tuple[MetricRow, ...]
    rejected: tuple[RejectedInput, ...]
    #: Header figures that disagree with what the master measured.
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TrendPlot:
    """The calibration history of one kind of master, as a PNG."""

    kind: str
    png: bytes


@dataclass(frozen=True, slots=True)
class MasterUse:
    """A master a product was reduced with, in a role."""

    role: str
    master_id: int
    night: dt.date
    version: int
    quality: str


@dataclass(frozen=True, slots=True)
class ProductEntry:
    """A reduced product of a science frame (quick-look or final)."""

    id: int
    kind: str
    status: str
    path: str
    created_at: dt.datetime
    missing_steps: tuple[str, ...]
    masters: tuple[MasterUse, ...]
    picture: Picture


@dataclass(frozen=True, slots=True)
class QualityFigures:
    """The quality record of a science frame's current product.

    ``sky`` is in ``unit`` (the product's), ``sky_e`` in electrons when the gain is
    known; ``verdict`` and ``reasons`` are the quality rules' word; ``notes`` say
    which figures could not be measured and why; ``cosmic_ray_outlier`` is set by
    the report when the frame's cosmic-ray count stands out from the night's.
    """

    product_id: int
    kind: str
    unit: str | None
    sky: float | None
    sky_e: float | None
    sky_noise_e: float | None
    n_sources: int | None
    n_psf_stars: int | None
    fwhm_px: float | None
    fwhm_arcsec: float | None
    ellipticity: float | None
    saturated_fraction: float | None
    cosmic_ray_pixels: int | None
    airmass: float | None
    verdict: str
    reasons: tuple[str, ...]
    notes: tuple[str, ...]
    error: str | None = None
    cosmic_ray_outlier: bool = False


@dataclass(frozen=True, slots=True)
class CalibrationMark:
    """A calibration frame of the night, for the timeline."""

    kind: str
    obs_time: dt.datetime


@dataclass(frozen=True, slots=True)
class ScienceEntry:
    """A science frame before and after reduction."""

    frame_id: int
    path: str
    object_name: str | None
    filter: str | None
    exptime: float | None
    obs_time: dt.datetime
    raw: Picture
    quicklook: ProductEntry | None
    final: ProductEntry | None
    quality: QualityFigures | None = None
    ccd: str | None = None  # the CCD of a mosaic file the frame is


@dataclass(frozen=True, slots=True)
class Problem:
    """Something that went wrong: a failed reduction, a quarantined file."""

    what: str
    path: str
    reason: str
    when: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class AlarmEntry:
    """A master's figure outside its normal band."""

    id: int
    master_id: int
    state: str
    text: str


@dataclass(frozen=True, slots=True)
class CoverageEntry:
    """One calibration of one set-up of the night, and how it is served."""

    instrument: str | None
    filter: str | None
    exptime: float | None
    frames: int
    kind: str
    coverage: str
    master_id: int | None
    detail: str


@dataclass(frozen=True, slots=True)
class NightReport:
    """Everything the page of one night shows."""

    night: dt.date
    generated_at: dt.datetime
    software_version: str
    archive: str
    counts: tuple[CountRow, ...]
    masters: tuple[MasterEntry, ...]
    trends: tuple[TrendPlot, ...]
    science: tuple[ScienceEntry, ...]
    failures: tuple[Problem, ...]
    quarantined: tuple[Problem, ...]
    #: Open detector-health alarms of the night's masters.
    alarms: tuple[AlarmEntry, ...] = ()
    #: The night's set-ups against the masters that serve them; ``None``: not made.
    coverage: tuple[CoverageEntry, ...] | None = None
    #: The dawn to-do of the coverage plan.
    todo: tuple[str, ...] = ()
    calibrations: tuple[CalibrationMark, ...] = ()
