"""The night as a timeline: sky, FWHM, sources and airmass against time, as inline SVG.

One panel per figure, stacked on a common time axis (UTC), one dot per science
frame (frames marked poor in red), and a band at the bottom with a tick per
calibration frame, coloured by kind. The SVG is markup inside the page (no
image file, no script): it scales to the page width and follows the page's
colours (``currentColor`` and the style sheet's classes). Every text is escaped.
Pure: plain values in, a string out.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["TimelinePoint", "timeline_svg"]

_WIDTH, _LEFT, _RIGHT = 1200.0, 96.0, 16.0
_PANEL, _GAP, _BAND, _AXIS = 86.0, 14.0, 26.0, 26.0


@dataclass(frozen=True, slots=True)
class TimelinePoint:
    """One science frame on the timeline (figures ``None`` where not measured)."""

    frame_id: int
    time: dt.datetime
    sky: float | None
    fwhm: float | None
    sources: float | None
    airmass: float | None
    poor: bool


def _t(value: dt.datetime) -> float:
    return value.astimezone(dt.UTC).timestamp()


def _label(value: float) -> str:
    return f"{value:.4g}"


def _panel(points: Sequence[TimelinePoint], attr: str, title: str, top: float,
           x_of: Callable[[dt.datetime], float]) -> list[str]:
    values = [(p, getattr(p, attr)) for p in points if getattr(p, attr) is not None]
    out = [f'<rect class="tl-frame" x="{_LEFT:.0f}" y="{top:.1f}" '
           f'width="{_WIDTH - _LEFT - _RIGHT:.0f}" height="{_PANEL:.0f}"/>',
           f'<text class="tl-title" x="{_LEFT + 6:.0f}" y="{top + 14:.1f}">'
           f"{html.escape(title)}</text>"]
    finite = [v for _, v in values if math.isfinite(v)]
    if not finite:
        out.append(f'<text class="tl-none" x="{_WIDTH / 2:.0f}" y="{top + _PANEL / 2:.1f}" '
                   'text-anchor="middle">not measured</text>')
        return out
    low, high = min(finite), max(finite)
    if high - low < 1e-9 * max(1.0, abs(high)):
        low, high = low - 0.5 * max(abs(low) * 0.05, 1e-3), high + 0.5 * max(abs(high) * 0.05,
                                                                             1e-3)
    pad = 0.08 * (high - low)
    low, high = low - pad, high + pad

    def y_of(v: float) -> float:
        return top + _PANEL - (v - low) / (high - low) * _PANEL

    out += [f'<text class="tl-tick" x="{_LEFT - 4:.0f}" y="{top + _PANEL - 2:.1f}" '
            f'text-anchor="end">{_label(low + pad)}</text>',
            f'<text class="tl-tick" x="{_LEFT - 4:.0f}" y="{top + 24:.1f}" '
            f'text-anchor="end">{_label(high - pad)}</text>']
    line = " ".join(f"{x_of(p.time):.1f},{y_of(v):.1f}" for p, v in values
                    if math.isfinite(v))
    out.append(f'<polyline class="tl-line" points="{line}"/>')
    for p, v in values:
        if not math.isfinite(v):
            continue
        cls = "tl-poor" if p.poor else "tl-dot"
        out.append(f'<circle class="{cls}" cx="{x_of(p.time):.1f}" cy="{y_of(v):.1f}" '
                   f'r="{4.5 if p.poor else 3.2}"><title>frame {p.frame_id}: '
                   f"{html.escape(title)} {_label(v)}</title></circle>")
    return out


def timeline_svg(points: Sequence[TimelinePoint],
                 calibrations: Sequence[tuple[str, dt.datetime]], *,
                 sky_unit: str = "", fwhm_unit: str = "px") -> str:
    """The timeline of a night as an ``<svg>`` element.

    Parameters
    ----------
    points : sequence of TimelinePoint
        The science frames.
    calibrations : sequence of (kind, time)
        The calibration frames (bias, dark, flat), marked in the bottom band.
    sky_unit, fwhm_unit : str
        Units shown beside the panels' titles.

    Returns
    -------
    str
        The SVG markup; a paragraph saying so when there is nothing to draw.
    """
    times = [_t(p.time) for p in points] + [_t(t) for _, t in calibrations]
    if not times:
        return '<p class="none">no frame to draw on a timeline</p>'
    start, end = min(times), max(times)
    if end - start < 60:
        start, end = start - 30, end + 30
    span = end - start
    inner = _WIDTH - _LEFT - _RIGHT

    def x_of(when: dt.datetime) -> float:
        return _LEFT + (_t(when) - start) / span * inner

    panels = (("sky", f"sky {sky_unit}".strip()), ("fwhm", f"FWHM {fwhm_unit}".strip()),
              ("sources", "sources"), ("airmass", "airmass"))
    height = len(panels) * (_PANEL + _GAP) + _BAND + _AXIS
    out = [f'<svg class="timeline" viewBox="0 0 {_WIDTH:.0f} {height:.0f}" role="img" '
           'xmlns="http://www.w3.org/2000/svg" preserveAspectRatio="xMinYMin meet">'
           "<title>the night: sky, FWHM, sources and airmass of each science frame against "
           "time; calibration frames below</title>"]
    for i, (attr, title) in enumerate(panels):
        out += _panel(points, attr, title, i * (_PANEL + _GAP), x_of)
    band = len(panels) * (_PANEL + _GAP)
    out.append(f'<text class="tl-title" x="{_LEFT - 8:.0f}" y="{band + 16:.1f}" '
               'text-anchor="end">calibrations</text>')
    for kind, when in calibrations:
        x = x_of(when)
        out.append(f'<line class="tl-cal tl-{html.escape(kind)}" x1="{x:.1f}" x2="{x:.1f}" '
                   f'y1="{band + 2:.1f}" y2="{band + _BAND - 4:.1f}"><title>'
                   f"{html.escape(kind)} {when.astimezone(dt.UTC):%H:%M:%S}</title></line>")
    axis = band + _BAND
    for k in range(7):
        moment = start + span * k / 6
        label = dt.datetime.fromtimestamp(moment, dt.UTC).strftime("%H:%M")
        x = _LEFT + inner * k / 6
        anchor = "start" if k == 0 else ("end" if k == 6 else "middle")
        out.append(f'<text class="tl-tick" x="{x:.1f}" y="{axis + 16:.1f}" '
                   f'text-anchor="{anchor}">{label}{" UTC" if k == 6 else ""}</text>')
    out.append("</svg>")
    return "".join(out)
