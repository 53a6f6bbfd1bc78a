"""The quality record of each science product, and the quality rules' verdicts.

A worker measures the figures on the reduced pixels
(:func:`~nightlog.reduction.quality.measure_quality`); the coordinator records
them here with the product, judged by the rules that cover the frame
(:mod:`nightlog.quality_rules`). A frame's quality is its *current* product's
(a quick-look's until the final product replaces it). :func:`quality_of` is what
pages and listings read; :func:`check_quality` judges the archive again with
other rules (``nightlog quality check``) and saves the verdicts unless asked not to.

Functions take the caller's session and never commit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from nightlog.catalogue.models import Frame, FrameQualityRow, Product
from nightlog.quality_rules import QualityRule, QualitySettings, judge, rules_for
from nightlog.states import ProductStatus, QualityVerdict

__all__ = ["FIGURES", "QualityChange", "QualityRecord", "check_quality", "program_of",
           "quality_of", "record_quality", "verdict_frame_ids"]

#: The measured figures a record holds, as named in the quality JSON and the rules.
FIGURES: tuple[str, ...] = (
    "unit", "sky", "sky_noise", "sky_e", "sky_noise_e", "n_sources", "n_psf_stars",
    "fwhm_px", "fwhm_scatter_px", "fwhm_arcsec", "ellipticity", "saturated_fraction",
    "cosmic_ray_pixels", "airmass", "airmass_source", "pixel_scale_arcsec",
    "pixel_scale_source", "seconds",
)


@dataclass(frozen=True, slots=True)
class QualityRecord:
    """A science frame's quality, as plain values.

    Figures are ``None`` when they could not be measured (``notes`` says why;
    ``error`` when nothing could). ``masters`` are ``(role, master id)`` pairs;
    ``verdict`` and ``reasons`` are the quality rules' word on the figures.
    """

    frame_id: int
    product_id: int
    kind: str
    unit: str | None
    sky: float | None
    sky_noise: float | None
    sky_e: float | None
    sky_noise_e: float | None
    n_sources: int | None
    n_psf_stars: int | None
    fwhm_px: float | None
    fwhm_scatter_px: float | None
    fwhm_arcsec: float | None
    ellipticity: float | None
    saturated_fraction: float | None
    cosmic_ray_pixels: int | None
    airmass: float | None
    airmass_source: str | None
    pixel_scale_arcsec: float | None
    pixel_scale_source: str | None
    seconds: float | None
    masters: tuple[tuple[str, int], ...]
    notes: tuple[str, ...]
    error: str | None
    verdict: str
    reasons: tuple[str, ...]

    def figures(self) -> dict[str, Any]:
        """The figures by name, as :func:`~nightlog.quality_rules.judge` reads them."""
        out = {name: getattr(self, name) for name in FIGURES}
        out["error"] = self.error
        return out

    def as_dict(self) -> dict[str, Any]:
        """Every field as JSON values."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["masters"] = [list(m) for m in self.masters]
        out["notes"], out["reasons"] = list(self.notes), list(self.reasons)
        return out


def _record(row: FrameQualityRow) -> QualityRecord:
    return QualityRecord(
        frame_id=row.frame_id, product_id=row.product_id, kind=row.kind,
        **{name: getattr(row, name) for name in FIGURES},
        masters=tuple((str(r), int(m)) for r, m in row.masters or ()),
        notes=tuple(str(n) for n in row.notes or ()), error=row.error,
        verdict=row.verdict, reasons=tuple(str(r) for r in row.reasons or ()))


def program_of(frame: Frame, keyword: str) -> str | None:
    """The observing program of ``frame``: its header's ``keyword``, stripped."""
    for card in frame.header or ():
        if str(card[0]).upper() == keyword and card[1] is not None:
            text = str(card[1]).strip()
            return text or None
    return None


def record_quality(session: Session, *, product_id: int, frame: Frame, kind: str,
                   figures: Mapping[str, Any] | None,
                   masters: Sequence[tuple[str, int]], settings: QualitySettings,
                   now: dt.datetime | None = None) -> FrameQualityRow:
    """Add the quality row of a product just recorded, judged by the rules covering
    ``frame`` (no commit).

    Parameters
    ----------
    figures : mapping or None
        The worker's quality JSON (:class:`~nightlog.reduction.quality.FrameQuality`
        fields, or ``{"error": ...}``); ``None``: not measured.
    masters : sequence of (role, master id)
        The masters the product was reduced with.
    settings : QualitySettings
        The rules.
    """
    now = now or dt.datetime.now(dt.UTC)
    figures = dict(figures or {"error": "not measured"})
    rules = rules_for(settings, frame.profile, program_of(frame, settings.program_keyword))
    verdict, reasons = judge(figures, rules)
    row = FrameQualityRow(
        product_id=product_id, frame_id=frame.id, kind=kind,
        **{name: figures.get(name) for name in FIGURES},
        masters=[[role, master_id] for role, master_id in masters],
        notes=list(figures.get("notes") or ()), error=figures.get("error"),
        measured_at=now, verdict=verdict, reasons=reasons,
        judged_at=now if rules else None)
    session.add(row)
    return row


def _current_rows(session: Session, frame_ids: Iterable[int] | None = None,
                  night: dt.date | None = None) -> list[tuple[FrameQualityRow, Frame]]:
    stmt = (select(FrameQualityRow, Frame)
            .join(Product, Product.id == FrameQualityRow.product_id)
            .join(Frame, Frame.id == FrameQualityRow.frame_id)
            .where(Product.status == ProductStatus.CURRENT))
    if frame_ids is not None:
        stmt = stmt.where(FrameQualityRow.frame_id.in_(list(frame_ids)))
    if night is not None:
        stmt = stmt.where(Frame.night == night)
    stmt = stmt.order_by(Frame.obs_time, Frame.id)
    return [(row[0], row[1]) for row in session.execute(stmt).all()]


def quality_of(session: Session, frame_ids: Iterable[int]) -> dict[int, QualityRecord]:
    """The quality of each frame's current product, by frame id.

    Frames without a current product, or whose product has no quality record
    (reduced before quality was measured), are absent.
    """
    ids = list(dict.fromkeys(frame_ids))
    out: dict[int, QualityRecord] = {}
    for start in range(0, len(ids), 500):  # bounded IN lists
        out.update((q.frame_id, _record(q)) for q, _ in _current_rows(session,
                                                                       ids[start:start + 500]))
    return out


@dataclass(frozen=True, slots=True)
class QualityChange:
    """What judging a frame again gives, beside what the catalogue holds."""

    frame_id: int
    product_id: int
    path: str
    before: str
    after: str
    reasons: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return self.before != self.after


def check_quality(session: Session, settings: QualitySettings, *,
                  rules: Sequence[QualityRule] | None = None, night: dt.date | None = None,
                  save: bool = False, now: dt.datetime | None = None
                  ) -> list[QualityChange]:
    """Judge the current products' quality again, across the archive or one night.

    Parameters
    ----------
    settings : QualitySettings
        The program keyword and, unless ``rules`` is given, the rules.
    rules : sequence of QualityRule, optional
        Judge with these rules only (``nightlog quality check --rule``), each still
        within its own scope.
    night : date, optional
        Only the frames of this night.
    save : bool
        Store the new verdicts and reasons (no commit); ``False`` is a dry run.

    Returns
    -------
    list of QualityChange
        One per frame with a quality record, in observation order.
    """
    now = now or dt.datetime.now(dt.UTC)
    chosen = QualitySettings(settings.program_keyword,
                             tuple(settings.rules if rules is None else rules))
    out = []
    for row, frame in _current_rows(session, night=night):
        applying = rules_for(chosen, frame.profile, program_of(frame, chosen.program_keyword))
        verdict, reasons = judge(_record(row).figures(), applying)
        out.append(QualityChange(frame.id, row.product_id, frame.path, row.verdict, verdict,
                                 tuple(reasons)))
        if save:
            row.verdict, row.reasons = verdict, reasons
            row.judged_at = now if applying else None
    return out


def verdict_frame_ids(verdict: QualityVerdict | str) -> Select[tuple[int]]:
    """A ``SELECT`` of the ids of frames whose current product has ``verdict``."""
    return (select(FrameQualityRow.frame_id)
            .join(Product, Product.id == FrameQualityRow.product_id)
            .where(Product.status == ProductStatus.CURRENT,
                   FrameQualityRow.verdict == str(verdict)))
