"""The night report as one HTML page that needs nothing else to open.

Every picture is a ``data:`` URI, the style sheet is inline, and the page loads
nothing from anywhere: it can be mailed, archived or opened offline years later.
A Content-Security-Policy forbids scripts and any resource that is not inline.
The timeline is inline SVG markup; the style sheet, light and dark, is
:mod:`nightlog.report.style_sheet`'s.

Every value that comes from a header, a file name or the catalogue (object names,
filters, paths, reasons) is escaped with :func:`html.escape`, quotes included, so
a hostile ``OBJECT = '<script>...'`` shows as text and never becomes markup;
control characters show as their escapes (``\\x1b``).
Pure: a :class:`~nightlog.report.model.NightReport` in, a string out.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
from collections.abc import Iterable, Sequence

from nightlog.report.model import (
    MasterEntry,
    MasterUse,
    MetricRow,
    NightReport,
    Picture,
    Problem,
    ProductEntry,
    QualityFigures,
    ScienceEntry,
)
from nightlog.report.style_sheet import STYLE_SHEET
from nightlog.report.timeline import TimelinePoint, timeline_svg
from nightlog.states import MasterQuality, ProductStatus, QualityVerdict

__all__ = ["render_html"]

_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def _visible(text: str) -> str:
    # Control characters (a NUL, an escape sequence) are not text a browser shows
    # faithfully: write them as their Python escapes, as the terminal tables do.
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def _e(value: object) -> str:
    """``value`` as escaped text (quotes too, control characters as ``\\xNN``);
    empty for ``None``."""
    return "" if value is None else html.escape(_visible(str(value)), quote=True)


def _num(value: float | None, digits: int = 4) -> str:
    if value is None:
        return "–"
    return f"{value:.{digits}g}"


def _time(value: dt.datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _png(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _picture(picture: Picture, alt: str) -> str:
    if picture.thumbnail is None:
        return f'<span class="none">{_e(picture.note or "no image")}</span>'
    t = picture.thumbnail
    return (f'<img src="{_png(t.png)}" width="{t.width}" height="{t.height}" '
            f'alt="{_e(alt)}">')


def _table(head: Sequence[str], rows: Iterable[Sequence[str]], cls: str = "") -> str:
    """A table of already escaped cells (a cell starting with ``\\x00`` is numeric)."""
    out = [f'<table class="{cls}">' if cls else "<table>", "<tr>"]
    out += [f"<th>{h}</th>" for h in head]
    out.append("</tr>")
    for row in rows:
        out.append(_row(row))
    out.append("</table>")
    return "".join(out)


def _row(cells: Iterable[str], *, poor: bool = False) -> str:
    """One table row; a cell made by :func:`_n` is a right-aligned number."""
    tds = "".join(f'<td class="num">{c[1:]}</td>' if c.startswith("\x00") else f"<td>{c}</td>"
                  for c in cells)
    return ('<tr class="poor">' if poor else "<tr>") + tds + "</tr>"


def _n(value: object) -> str:
    return "\x00" + _e(value)


def _summary(report: NightReport) -> str:
    n_frames = sum(c.frames for c in report.counts)
    n_science = len(report.science)
    n_final = sum(1 for s in report.science if s.final is not None)
    current = [m for m in report.masters if m.superseded_by is None]
    items = [("frames", str(n_frames), False),
             ("masters built", str(len(current)), False),
             ("science reduced (final)", f"{n_final} of {n_science}", n_final < n_science),
             ("reduction problems", str(len(report.failures)), bool(report.failures)),
             ("files in quarantine", str(len(report.quarantined)), bool(report.quarantined))]
    return '<div class="summary">' + "".join(
        f'<div class="{"bad" if bad else ""}"><b>{_e(v)}</b>{_e(k)}</div>'
        for k, v, bad in items) + "</div>"


def _counts(report: NightReport) -> str:
    if not report.counts:
        return '<p class="none">no frames catalogued for this night</p>'
    return _table(["kind", "filter", "frames", "total exposure (s)"],
                  ([_e(c.kind), _e(c.filter or "–"), _n(c.frames), _n(_num(c.exposure_s, 6))]
                   for c in report.counts))


def _metric_row(m: MetricRow) -> list[str]:
    if m.outlier:
        flag = '<span class="outlier">outlier</span>'
    else:
        flag = "within the history" if m.judged else '<span class="none">not judged</span>'
    return [_e(m.label), _n(_num(m.value)), _e(m.unit), _n(_num(m.median)),
            _n(m.history), flag]


def _master(m: MasterEntry) -> str:
    state = []
    if m.quality != MasterQuality.GOOD:
        state.append(f'<span class="flag">marked {_e(m.quality)}: '
                     f'{_e(m.quality_reason or "")}</span>')
    if m.superseded_by is not None:
        state.append(f'<span class="flag">superseded by master {_e(m.superseded_by)}</span>')
    state.extend(f'<span class="flag">warning: {_e(text)}</span>' for text in m.warnings)
    title = f"{_e(m.kind)} master {_e(m.id)} v{_e(m.version)}"
    if m.filter:
        title += f" – filter {_e(m.filter)}"
    facts = (_table(["group", "frames"], [[_e(m.group), _n(m.n_frames)]])
             + f'<p class="path">{_e(m.path)}</p>')
    metrics = (_table(["statistic", "value", "unit", "history median", "masters", "verdict"],
                      (_metric_row(r) for r in m.metrics))
               if m.metrics else '<p class="none">no statistics recorded</p>')
    rejected = ""
    if m.rejected:
        rejected = "<p>frames left out:</p>" + _table(
            ["frame", "file", "reason"],
            ([_n(r.frame_id), f'<span class="path">{_e(r.path)}</span>', _e(r.reason)]
             for r in m.rejected))
    return (f'<div class="master" id="master-{_e(m.id)}"><h3>{title}</h3>'
            f'{"<p>" + " ".join(state) + "</p>" if state else ""}'
            f'<div class="body"><figure>{_picture(m.picture, f"{m.kind} master {m.id}")}'
            f"<figcaption>zscale</figcaption></figure><div>{facts}{metrics}</div></div>"
            f"{rejected}</div>")


def _masters(report: NightReport) -> str:
    if not report.masters:
        return '<p class="none">no master was built for this night</p>'
    parts = ['<div class="masters">', *(_master(m) for m in report.masters), "</div>"]
    if report.trends:
        parts.append('<h3>Calibration history up to this night</h3><div class="trends">')
        parts += [f'<figure><img class="trend" src="{_png(t.png)}" '
                  f'alt="{_e(t.kind)} calibration history"><figcaption>{_e(t.kind)} masters'
                  "</figcaption></figure>" for t in report.trends]
        parts.append("</div>")
    return "".join(parts)


def _uses(masters: Sequence[MasterUse]) -> str:
    if not masters:
        return '<span class="none">none</span>'
    return "<br>".join(
        f'{_e(u.role)}: <a href="#master-{_e(u.master_id)}">master {_e(u.master_id)}</a> '
        f"({_e(u.night.isoformat())} v{_e(u.version)}"
        + (f', <span class="flag">{_e(u.quality)}</span>'
           if u.quality != MasterQuality.GOOD else "")
        + ")" for u in masters)


def _product_cell(p: ProductEntry | None, frame_id: int) -> str:
    if p is None:
        return '<span class="none">none</span>'
    notes = [f"product {_e(p.id)}"]
    if p.status != ProductStatus.CURRENT:
        notes.append(_e(p.status))
    if p.missing_steps:
        notes.append(f'<span class="flag">without {_e(", ".join(p.missing_steps))}</span>')
    return (f"<figure>{_picture(p.picture, f'frame {frame_id} {p.kind}')}"
            f"<figcaption>{' · '.join(notes)}<br>{_uses(p.masters)}</figcaption></figure>")


_QUALITY_HEAD = ["FWHM", "ellipticity", "sky", "sources", "saturated", "cosmic-ray pixels",
                 "airmass", "quality"]


def _quality_cells(q: QualityFigures | None) -> list[str]:
    if q is None:
        return ['<span class="none">not measured</span>', *[""] * 7]
    fwhm = "–" if q.fwhm_px is None else f"{_num(q.fwhm_px, 3)} px"
    if q.fwhm_arcsec is not None:
        fwhm += f"<br>{_e(_num(q.fwhm_arcsec, 3))}″"
    if q.n_psf_stars:
        fwhm += f'<br><span class="none">{_e(q.n_psf_stars)} stars</span>'
    if q.sky_e is not None:
        sky = f"{_e(_num(q.sky_e, 5))} e⁻"
    elif q.sky is not None:
        sky = f"{_e(_num(q.sky, 5))} {_e(q.unit or '')}"
    else:
        sky = "–"
    saturated = "–" if q.saturated_fraction is None else f"{100 * q.saturated_fraction:.3g} %"
    cosmic = _e(_num(q.cosmic_ray_pixels, 6) if q.cosmic_ray_pixels is not None else None)
    if q.cosmic_ray_outlier:
        cosmic = f'<span class="outlier" title="far above the night\'s">{cosmic} outlier</span>'
    verdict = f'<span class="verdict-{_e(q.verdict)}">{_e(q.verdict)}</span>'
    lines = [verdict, *(_e(r) for r in q.reasons)]
    if q.error:
        lines.append(f'<span class="flag">{_e(q.error)}</span>')
    lines += [f'<span class="none">{_e(n)}</span>' for n in q.notes]
    return ["\x00" + fwhm, _n(_num(q.ellipticity, 2)), "\x00" + sky, _n(q.n_sources),
            "\x00" + _e(saturated), "\x00" + cosmic, _n(_num(q.airmass, 4)),
            "<br>".join(lines)]


def _science_row(s: ScienceEntry) -> list[str]:
    about = (f"<b>frame {_e(s.frame_id)}</b><br>"
             + (f"CCD: {_e(s.ccd)}<br>" if s.ccd else "")
             + f"object: {_e(s.object_name or '–')}<br>"
             f"filter: {_e(s.filter or '–')}<br>exposure: {_e(_num(s.exptime))} s<br>"
             f"{_e(_time(s.obs_time))}<br><span class=\"path\">{_e(s.path)}</span>")
    return [about, _picture(s.raw, f"frame {s.frame_id} raw"),
            _product_cell(s.quicklook, s.frame_id), _product_cell(s.final, s.frame_id),
            *_quality_cells(s.quality)]


def _science(report: NightReport) -> str:
    if not report.science:
        return '<p class="none">no science frame this night</p>'
    head = ["frame", "raw", "quick-look", "final", *_QUALITY_HEAD]
    out = ['<table class="science"><tr>', *(f"<th>{h}</th>" for h in head), "</tr>"]
    for s in report.science:
        poor = s.quality is not None and s.quality.verdict == QualityVerdict.POOR
        out.append(_row(_science_row(s), poor=poor))
    out.append("</table>")
    return "".join(out)


def _timeline(report: NightReport) -> str:
    points = []
    units = set()
    for s in report.science:
        q = s.quality
        if q is None:
            continue
        sky = q.sky_e if q.sky_e is not None else q.sky
        units.add("e⁻" if q.sky_e is not None else (q.unit or ""))
        points.append(TimelinePoint(
            frame_id=s.frame_id, time=s.obs_time, sky=sky,
            fwhm=q.fwhm_arcsec if q.fwhm_arcsec is not None else q.fwhm_px,
            sources=None if q.n_sources is None else float(q.n_sources), airmass=q.airmass,
            poor=q.verdict == QualityVerdict.POOR))
    arcsec = [s.quality.fwhm_arcsec is not None for s in report.science if s.quality]
    fwhm_unit = "″" if arcsec and all(arcsec) else ("px" if not any(arcsec) else "″ or px")
    svg = timeline_svg(points, [(c.kind, c.obs_time) for c in report.calibrations],
                       sky_unit=" / ".join(sorted(units)), fwhm_unit=fwhm_unit)
    legend = ('<p class="legend"><span>● science frame</span>'
              '<span class="flag">● marked poor</span><span>calibrations: '
              '<span class="lg-bias">| bias</span> <span class="lg-dark">| dark</span> '
              '<span class="lg-flat">| flat</span></span></p>')
    return svg + legend


def _problems(rows: Sequence[Problem], empty: str) -> str:
    if not rows:
        return f'<p class="none">{_e(empty)}</p>'
    return _table(["what", "file", "reason", "when"],
                  ([_e(p.what), f'<span class="path">{_e(p.path)}</span>', _e(p.reason),
                    _e(_time(p.when))] for p in rows))


def _alarms(report: NightReport) -> str:
    if not report.alarms:
        return '<p class="none">no master of this night left its normal band</p>'
    return _table(["alarm", "master", "state", "what"],
                  ([_e(a.id), f'<a href="#master-{_e(a.master_id)}">{_e(a.master_id)}</a>',
                    _e(a.state), _e(a.text)] for a in report.alarms))


def _coverage(report: NightReport) -> str:
    if report.coverage is None:
        return '<p class="none">not made</p>'
    if not report.coverage:
        return '<p class="none">no science set-up this night</p>'
    table = _table(["instrument", "filter", "exposure (s)", "frames", "needs", "served",
                    "master", "why"],
                   ([_e(c.instrument or "–"), _e(c.filter or "–"), _e(_num(c.exptime)),
                     _e(c.frames), _e(c.kind),
                     (_e(c.coverage) if c.coverage in ("exact", "other-night")
                      else f'<span class="flag">{_e(c.coverage)}</span>'),
                     _e(c.master_id if c.master_id is not None else "–"), _e(c.detail)]
                    for c in report.coverage))
    todo = ("<p>Dawn to-do:</p><ul>" + "".join(f"<li>{_e(t)}</li>" for t in report.todo)
            + "</ul>") if report.todo else '<p class="none">dawn to-do: nothing</p>'
    return table + todo


def render_html(report: NightReport) -> str:
    """The page of ``report``: complete, self-contained HTML5."""
    night = _e(report.night.isoformat())
    return "".join([
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>nightlog: the night of {night}</title><style>{STYLE_SHEET}</style></head><body>",
        '<label class="theme"><input type="checkbox" id="dark-mode"> switch light/dark'
        "</label>",
        f"<h1>The night of {night}</h1>",
        f'<p class="meta">generated {_e(_time(report.generated_at))} by nightlog '
        f'{_e(report.software_version)} from the archive '
        f'<span class="path">{_e(report.archive)}</span></p>',
        _summary(report),
        "<h2>The night: sky, seeing, sources and airmass</h2>", _timeline(report),
        "<h2>Frames per kind and filter</h2>", _counts(report),
        "<h2>Masters built</h2>", _masters(report),
        "<h2>Detector health alarms</h2>", _alarms(report),
        "<h2>Calibration coverage</h2>", _coverage(report),
        "<h2>Science frames: raw, quick-look, final and quality</h2>", _science(report),
        "<h2>Reduction problems</h2>",
        _problems(report.failures, "every science frame has a current product"),
        "<h2>Files in quarantine</h2>",
        _problems(report.quarantined, "no file is in quarantine"),
        "</body></html>\n",
    ])
