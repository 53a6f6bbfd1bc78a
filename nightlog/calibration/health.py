"""Detector health: each master's figures against the normal band of the ones before.

The figures are the master statistics followed by :mod:`.trends` (bias level,
read noise, gain, dark current, hot-pixel count, flat level per filter), each
with the one-sigma uncertainty the build recorded (see ``docs/report.md``).

Normal band
    For a master M and a figure, the band is ``median ± k × w`` of that figure over
    the last ``window`` masters of M's calibration group (same
    ``group_key``: instrument, detector, binning, readout mode, shape, and the
    filter of a flat, the set temperature of a dark) that precede M (by mid
    time), count in the trend (good, current) and lie after the latest fence
    (:mod:`nightlog.catalogue.fences`) that applies to M and precedes it. M
    itself never enters its own band; masters made elsewhere (``calib add``)
    neither enter a band nor are judged. With fewer than ``min_points`` such
    masters there is no band and no alarm: a figure is not judged against a
    history it does not have (``calib history`` then shows no band, not a
    made-up one).

    The width ``w = √(s² + σ²)`` adds in quadrature the spread ``s`` of the
    window and the uncertainty ``σ`` of M's own value (the difference of a value
    and a median has both). ``s`` is ``1.4826 × MAD`` of the window, but never
    less than the median uncertainty of the window's values: a MAD of zero
    (figures quantised to whole ADU or pixel counts, or a short window of equal
    values) must not turn every change below the measurement error into an
    alarm. Without any recorded uncertainty, ``w = 1.4826 × MAD``.
Alarm
    A figure outside its band (``value < low`` or ``value > high``). Per
    amplifier where the master records one figure per amplifier
    (``stats["amplifiers"]``): each amplifier's series is judged on its own.

Settings: ``[health] window`` (default 20 masters), ``sigma`` (k, default 5) and
``min_points`` (default 5).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from types import MappingProxyType

from nightlog.calibration.health_settings import HealthSettings, health_from
from nightlog.calibration.trends import (
    MAD_TO_SIGMA,
    TREND_METRICS,
    TrendPoint,
    amplifiers_of,
    trend_points,
)
from nightlog.catalogue.fences import fence_applies
from nightlog.catalogue.history import TrendMaster
from nightlog.catalogue.models import Fence
from nightlog.states import MasterQuality

__all__ = ["Band", "HealthFigure", "HealthSettings", "health_figures", "health_from",
           "health_points", "normal_band"]


@dataclass(frozen=True, slots=True)
class Band:
    """The normal range of a figure: ``median ± sigma × width`` of ``n_points`` masters;
    ``spread`` is the window's robust standard deviation (floored, see the notes)."""

    median: float
    low: float
    high: float
    n_points: int
    spread: float

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def as_dict(self) -> dict[str, float | int]:
        return {"median": self.median, "low": self.low, "high": self.high,
                "n_points": self.n_points, "spread": self.spread}


def normal_band(values: Sequence[float], *, sigma: float, min_points: int,
                errors: Sequence[float | None] = (), own_error: float | None = None
                ) -> Band | None:
    """The band of ``values`` (finite numbers), or ``None`` with fewer than ``min_points``.

    Parameters
    ----------
    values : sequence of float
        The figure over the masters of the window.
    sigma : float
        Half-width in units of the width ``√(s² + own_error²)``.
    min_points : int
        Fewest values that make a band.
    errors : sequence of float or None
        The uncertainties of ``values``; their median floors the spread ``s``.
    own_error : float or None
        Uncertainty of the value to be judged.

    Returns
    -------
    Band or None
        ``median ± sigma × √(s² + own_error²)``, ``s = max(1.4826 × MAD,
        median(errors))``.
    """
    # statistics, not numpy: the catalogue commands start without the scientific stack
    present = [float(v) for v in values if math.isfinite(v)]
    if len(present) < max(min_points, 1):
        return None
    median = float(statistics.median(present))
    spread = MAD_TO_SIGMA * float(statistics.median([abs(v - median) for v in present]))
    known = [e for e in errors if e is not None and math.isfinite(e) and e >= 0]
    if known:
        spread = max(spread, float(statistics.median(known)))
    own = own_error if own_error is not None and math.isfinite(own_error) else 0.0
    half = sigma * math.hypot(spread, own)
    return Band(median=median, low=median - half, high=median + half,
                n_points=len(present), spread=spread)


@dataclass(frozen=True, slots=True)
class HealthFigure:
    """One figure of one master (of one amplifier, or ``""`` for the whole detector)."""

    master_id: int
    metric: str
    amplifier: str
    value: float
    uncertainty: float | None
    band: Band | None

    @property
    def alarm(self) -> bool:
        return self.band is not None and not self.band.contains(self.value)


def _in_trend(m: TrendMaster) -> bool:
    # A master made elsewhere (``calib add``) records only its own level and noise,
    # in whatever units it came in: it neither makes a band nor is judged.
    return (m.quality == MasterQuality.GOOD and m.superseded_by_id is None
            and not (m.stats or {}).get("external"))


def _last_fence(fences: Sequence[Fence], m: TrendMaster) -> dt.datetime | None:
    times = [f.at for f in fences if f.at <= m.mid_time
             and fence_applies(f, m.instrument, m.setup_key)]
    return max(times) if times else None


def health_figures(masters: Sequence[TrendMaster], fences: Sequence[Fence],
                   settings: HealthSettings) -> dict[int, list[HealthFigure]]:
    """Every figure of every master with its band (see the module notes), by master id.

    ``masters`` may mix groups and kinds; a master's band is made of the masters of
    ``masters`` in its group, so give the history that precedes the masters judged.
    """
    ordered = sorted(masters, key=lambda m: (m.mid_time, m.id))
    out: dict[int, list[HealthFigure]] = {}
    by_group: dict[str, list[TrendMaster]] = {}
    for m in ordered:
        by_group.setdefault(m.group_key, []).append(m)
    for members in by_group.values():
        for i, m in enumerate(members):
            if (m.stats or {}).get("external"):
                out[m.id] = []
                continue
            fence = _last_fence(fences, m)
            before = [p for p in members[:i] if _in_trend(p) and p.mid_time < m.mid_time
                      and (fence is None or p.mid_time > fence)][-settings.window:]
            figures: list[HealthFigure] = []
            for amp in ("", *amplifiers_of(m)):
                for metric in TREND_METRICS.get(m.kind, ()):
                    value = metric.value(m, amp)
                    if value is None:
                        continue
                    have = [p for p in before if metric.value(p, amp) is not None]
                    own = metric.uncertainty(m, amp)
                    band = normal_band([metric.value(p, amp) or 0.0 for p in have],
                                       sigma=settings.sigma, min_points=settings.min_points,
                                       errors=[metric.uncertainty(p, amp) for p in have],
                                       own_error=own)
                    figures.append(HealthFigure(
                        master_id=m.id, metric=metric.name, amplifier=amp, value=value,
                        uncertainty=own, band=band))
            out[m.id] = figures
    return out


def health_points(masters: Sequence[TrendMaster], fences: Sequence[Fence],
                  settings: HealthSettings, *, k: float | None = None) -> list[TrendPoint]:
    """:func:`~nightlog.calibration.trends.trend_points` of ``masters`` with each
    point's bands and alarms (whole-detector bands; alarms of every amplifier)."""
    points = trend_points(masters, **({} if k is None else {"k": k}))
    figures = health_figures(masters, fences, settings)
    out = []
    for p in points:
        mine = figures.get(p.master_id, [])
        bands = {f.metric: f.band for f in mine if not f.amplifier}
        alarms = tuple(f.metric if not f.amplifier else f"{f.metric}@{f.amplifier}"
                       for f in mine if f.alarm)
        out.append(dataclasses.replace(p, bands=MappingProxyType(bands), alarms=alarms))
    return out
