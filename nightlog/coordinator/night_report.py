"""The night report: catalogue facts and image thumbnails, joined into one page.

:func:`build_report` asks the catalogue what the night holds
(:func:`nightlog.catalogue.night_summary.night_facts`), reads each master, raw
frame and product to make its thumbnail, sets every master's statistics beside
its calibration history up to that night (the same history, normal bands and
outlier rule as ``nightlog calib history``), lists the night's alarms and its
coverage plan (:mod:`.night_health`), and returns a
:class:`~nightlog.report.model.NightReport`.
:func:`run_report` renders it and writes the page atomically, by default to
``<archive>/reports/<night>.html``.

A file that is gone or unreadable costs its thumbnail only: the page says why
and the report goes on.
"""

from __future__ import annotations

import datetime as dt
import os
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from nightlog.calibration.health import HealthSettings, health_points
from nightlog.calibration.trends import (
    DEFAULT_MIN_POINTS,
    TREND_METRICS,
    TrendPoint,
    series_medians,
)
from nightlog.catalogue.engine import make_sessionmaker
from nightlog.catalogue.fences import list_fences
from nightlog.catalogue.history import HistoryFilter, HistoryMaster, master_history
from nightlog.catalogue.holds import HeldFrame, holds_of_night
from nightlog.catalogue.models import Frame, Master
from nightlog.catalogue.night_summary import (
    MasterFacts,
    NightFacts,
    ProductFacts,
    ReductionGap,
    calibration_times,
    night_facts,
    night_failures,
)
from nightlog.catalogue.problems import ReducedWithout, reduced_without
from nightlog.catalogue.quality import QualityRecord, quality_of
from nightlog.catalogue.quarantine import list_quarantined
from nightlog.catalogue.queries import latest_night
from nightlog.catalogue.reductions import FailedReduction, failures_of_night
from nightlog.coordinator.context import JobContext
from nightlog.coordinator.night_health import night_alarms, night_coverage
from nightlog.errors import NightlogError, NotFoundError
from nightlog.report.html import render_html
from nightlog.report.model import (
    CalibrationMark,
    CountRow,
    MasterEntry,
    MasterUse,
    MetricRow,
    NightReport,
    Picture,
    Problem,
    ProductEntry,
    QualityFigures,
    RejectedInput,
    ScienceEntry,
    TrendPlot,
)
from nightlog.report.outliers import high_outliers
from nightlog.report.thumbnails import DEFAULT_SIZE, zscale_thumbnail
from nightlog.store.atomic import write_atomically
from nightlog.store.compression import COMPRESSED_SUFFIX
from nightlog.store.images import read_image

__all__ = ["build_report", "reduction_problems", "run_report"]


def _picture(path: str, hdu: int = 0, size: int = DEFAULT_SIZE) -> Picture:
    """The thumbnail of the image in ``path``, or why there is none."""
    if not os.path.exists(path):
        return Picture(None, "file missing")
    if hdu == 0 and path.lower().endswith(COMPRESSED_SUFFIX):
        hdu = 1  # a tile-compressed product or master: the data follow an empty primary
    try:
        return Picture(zscale_thumbnail(read_image(path, hdu).data, size))
    except (NightlogError, ValueError, OSError) as exc:
        return Picture(None, f"cannot read the image: {str(exc).splitlines()[0][:200]}")


def _group_label(master: Master) -> str:
    return ", ".join(f"{k}={v}" for k, v in (master.group or {}).items() if v is not None)


def _history_points(session: Session, masters: Iterable[Master], night: dt.date
                    ) -> dict[str, list[HistoryMaster]]:
    """Per kind, the calibration history up to ``night`` of the instruments of ``masters``."""
    wanted = sorted({(m.kind, m.instrument or "") for m in masters})
    history: dict[str, dict[int, HistoryMaster]] = {}
    for kind, instrument in wanted:
        rows = master_history(session, HistoryFilter(kind=kind, instrument=instrument or None,
                                                     until=night))
        history.setdefault(kind, {}).update((m.id, m) for m in rows)
    return {kind: sorted(found.values(), key=lambda m: (m.mid_time, m.id))
            for kind, found in history.items()}


def _masters(session: Session, facts: NightFacts, health: HealthSettings, *,
             with_trends: bool) -> tuple[tuple[MasterEntry, ...], tuple[TrendPlot, ...]]:
    masters = [mf.master for mf in facts.masters]
    history = _history_points(session, masters, facts.night)
    fences = list_fences(session)
    points = {kind: health_points(rows, fences, health) for kind, rows in history.items()}
    by_id = {p.master_id: p for pts in points.values() for p in pts}
    medians = {kind: series_medians(pts) for kind, pts in points.items()}
    entries = []
    for mf in facts.masters:
        entries.append(_master_entry(mf, by_id, medians.get(mf.master.kind, {})))
    trends: tuple[TrendPlot, ...] = ()
    if with_trends:
        from nightlog.calibration.history_plot import history_png

        trends = tuple(TrendPlot(kind, history_png(
            pts, kind, title=f"{kind}: {len(pts)} master(s) up to {facts.night.isoformat()}",
            width=6.0, panel_height=1.5, tonight=facts.night))
                       for kind, pts in points.items() if pts)
    return tuple(entries), trends


def _master_entry(mf: MasterFacts, by_id: dict[int, TrendPoint],
                  medians: dict[tuple[str, str], tuple[float, int]]) -> MasterEntry:
    m = mf.master
    point = by_id.get(m.id)
    outliers = point.outliers if point is not None else ()
    metrics = []
    for metric in TREND_METRICS.get(m.kind, ()):
        value = metric.value(m)
        if value is None:
            continue
        median, n = medians.get((m.group_key, metric.name), (None, 0))
        judged = point is not None and point.in_trend and n >= DEFAULT_MIN_POINTS
        metrics.append(MetricRow(label=metric.label, unit=metric.unit, value=value,
                                 median=median, history=n, judged=judged,
                                 outlier=metric.name in outliers))
    return MasterEntry(
        id=m.id, kind=m.kind, version=m.version, group=_group_label(m), filter=m.filter,
        n_frames=m.n_frames, quality=m.quality, quality_reason=m.quality_reason,
        superseded_by=m.superseded_by_id, path=m.path, picture=_picture(m.path),
        metrics=tuple(metrics),
        rejected=tuple(RejectedInput(f.id, f.path, mi.reason or "no reason recorded")
                       for mi, f in mf.rejected),
        warnings=tuple(str(d.get("message")) for d in (m.stats or {}).get(
            "header_disagrees", ()) if isinstance(d, dict)),
    )


def _raw_hdu(frame: Frame) -> int:
    """The extension the raw preview shows: a mosaic CCD's first amplifier's."""
    if frame.ccd is not None and frame.amplifiers:
        return int(frame.amplifiers["amplifiers"][0]["hdu"])
    return frame.hdu


def _product(pf: ProductFacts | None) -> ProductEntry | None:
    if pf is None:
        return None
    p = pf.product
    return ProductEntry(
        id=p.id, kind=p.kind, status=p.status, path=p.path, created_at=p.created_at,
        missing_steps=tuple(str(s) for s in p.missing_steps or ()),
        masters=tuple(MasterUse(role, m.id, m.night, m.version, m.quality)
                      for role, m in pf.masters),
        picture=_picture(p.path),
    )


def _figures(records: list[QualityRecord | None]) -> list[QualityFigures | None]:
    """The page's quality figures, cosmic-ray outliers of the night marked."""
    outliers = high_outliers([None if r is None else r.cosmic_ray_pixels for r in records])
    return [None if r is None else QualityFigures(
        product_id=r.product_id, kind=r.kind, unit=r.unit, sky=r.sky, sky_e=r.sky_e,
        sky_noise_e=r.sky_noise_e, n_sources=r.n_sources, n_psf_stars=r.n_psf_stars,
        fwhm_px=r.fwhm_px, fwhm_arcsec=r.fwhm_arcsec, ellipticity=r.ellipticity,
        saturated_fraction=r.saturated_fraction, cosmic_ray_pixels=r.cosmic_ray_pixels,
        airmass=r.airmass, verdict=r.verdict, reasons=r.reasons, notes=r.notes,
        error=r.error, cosmic_ray_outlier=i in outliers)
        for i, r in enumerate(records)]


def _recorded_failures(session: Session, night: dt.date) -> list[FailedReduction]:
    """:func:`failures_of_night`, without SQLAlchemy 2.1's note that ``Result.tuples()``
    is deprecated (the query is right; drop this filter once it no longer calls it)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"The Result\.tuples\(\) method is deprecated",
                                category=DeprecationWarning)
        return failures_of_night(session, night)


def reduction_problems(failed: Iterable[FailedReduction], gaps: Iterable[ReductionGap],
                       held: Iterable[HeldFrame] = (), without: Iterable[ReducedWithout] = ()
                       ) -> tuple[Problem, ...]:
    """The page's rows for frames whose reduction failed, waits, or lacks a step.

    ``failed`` are the recorded failures (:func:`failures_of_night`: exception and
    message, after the retries); ``held`` the frames held or stopped for want of a
    master (:func:`~nightlog.catalogue.holds.holds_of_night`); ``without`` those
    reduced without a step (:func:`~nightlog.catalogue.problems.reduced_without`);
    ``gaps`` the frames without a current product (:func:`night_failures`), shown
    only when nothing else explains them (a flagged frame, a reduction that never ran).
    """
    rows = [Problem(what=f"science frame {f.frame_id}: {f.kind} reduction failed "
                         f"({f.attempts} tries, {f.times_failed} run(s))",
                    path=f.path, reason=f"{f.error}: {f.reason}", when=f.failed_at)
            for f in failed]
    explained = {f.frame_id for f in failed}
    for h in held:
        rows.append(Problem(what=f"science frame {h.frame_id}: {h.state} for want of "
                                 f"{', '.join(h.steps)}", path=h.path, reason=h.reason,
                            when=h.since))
        explained.add(h.frame_id)
    rows += [Problem(what=f"science frame {w.frame_id}: reduced without "
                          f"{', '.join(w.steps)}", path=w.path, reason=w.reason,
                     when=w.obs_time) for w in without]
    rows += [Problem(what=f"science frame {g.frame.id}", path=g.frame.path, reason=g.reason,
                     when=g.frame.obs_time) for g in gaps if g.frame.id not in explained]
    return tuple(rows)


def build_report(session: Session, ctx: JobContext, night: dt.date, *,
                 now: dt.datetime | None = None, with_trends: bool = True) -> NightReport:
    """The report of ``night`` (reads the catalogue and the image files; writes nothing).

    Raises
    ------
    NotFoundError
        The catalogue holds no frame of ``night``.
    """
    facts = night_facts(session, night)
    if not facts.counts:
        raise NotFoundError(f"the catalogue holds no frame of the night of {night}")
    masters, trends = _masters(session, facts, ctx.health, with_trends=with_trends)
    coverage, todo = night_coverage(session, ctx, night)
    recorded = quality_of(session, [s.frame.id for s in facts.science])
    figures = _figures([recorded.get(s.frame.id) for s in facts.science])
    science = tuple(
        ScienceEntry(frame_id=s.frame.id, path=s.frame.path, object_name=s.frame.object_name,
                     filter=s.frame.filter, exptime=s.frame.exptime,
                     obs_time=s.frame.obs_time, raw=_picture(s.frame.path, _raw_hdu(s.frame)),
                     quicklook=_product(s.quicklook), final=_product(s.final), quality=q,
                     ccd=s.frame.ccd)
        for s, q in zip(facts.science, figures, strict=True))
    quarantined = tuple(Problem(what=q.error, path=q.path, reason=q.reason, when=q.last_seen)
                        for q in list_quarantined(session))
    return NightReport(
        night=night, generated_at=now or dt.datetime.now(dt.UTC),
        software_version=ctx.software_version, archive=str(ctx.layout.root),
        counts=tuple(CountRow(c.kind, c.filter, c.frames, c.exposure_s)
                     for c in facts.counts),
        masters=masters, trends=trends, science=science,
        failures=reduction_problems(_recorded_failures(session, night),
                                    night_failures(session, night),
                                    holds_of_night(session, night),
                                    reduced_without(session, night)),
        quarantined=quarantined,
        alarms=night_alarms(session, night), coverage=coverage, todo=todo,
        calibrations=tuple(CalibrationMark(kind, when)
                           for kind, when in calibration_times(session, night)),
    )


def run_report(engine: Engine, ctx: JobContext, night: dt.date | None = None, *,
               output: str | os.PathLike[str] | None = None) -> Path:
    """Write the report of ``night`` (default: the latest night) and return its path.

    The page goes to ``output``, or to ``<archive>/reports/<night>.html``; it
    appears there only when complete.

    Raises
    ------
    NotFoundError
        The catalogue holds no frame (of ``night``).
    StoreError
        The page cannot be written.
    """
    with make_sessionmaker(engine)() as session:
        the_night = night or latest_night(session)
        if the_night is None:
            raise NotFoundError("the catalogue holds no frames: nothing to report")
        page = render_html(build_report(session, ctx, the_night))
    path = Path(output) if output is not None else ctx.layout.report_path(the_night)

    def _write(fh: BinaryIO) -> None:
        fh.write(page.encode("utf-8"))

    return write_atomically(path, _write, mode=ctx.layout.file_mode())
