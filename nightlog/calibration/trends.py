"""Trends of master statistics, and the robust rule that finds their outliers.

A master records statistics when it is built (``Master.stats``, written by
:mod:`nightlog.coordinator.masters`): its level, the read noise from a pair of its
biases, the dark current, the gain from a pair of its flats. Followed over months,
they show a detector ageing, a controller being changed or a warm night; one
master far from its neighbours usually means something went wrong that night.

Series
    One per calibration group (``Master.group_key``: instrument, detector, binning,
    readout mode, shape, and for darks the set temperature, for flats the filter)
    and metric. Mixing groups would compare a 2x2-binned bias level with a 1x1 one.

Points in a trend
    Only masters that calibrated data: quality good and not superseded. Bad and
    superseded masters are shown but neither estimate the trend nor get marked.

Outliers (:func:`robust_outliers`)
    A point is an outlier when its distance from the series median exceeds
    ``k × 1.4826 × MAD`` (the median absolute deviation, scaled to a standard
    deviation for normal data; ``k = 4`` by default). Median and MAD ignore the
    outliers they look for, unlike a mean and standard deviation that one wild
    point inflates enough to hide itself. A series with fewer than ``min_points``
    values (5 by default) flags nothing: its median and MAD mean little. When more
    than half of a series is identical the MAD is zero and every value that differs
    from the median is flagged: the rule then says "everything else departs".
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from nightlog.catalogue.history import TrendMaster
from nightlog.states import MasterQuality

__all__ = [
    "DEFAULT_MIN_POINTS",
    "DEFAULT_OUTLIER_SIGMA",
    "MAD_TO_SIGMA",
    "TREND_METRICS",
    "Metric",
    "TrendPoint",
    "amplifiers_of",
    "robust_outliers",
    "series_medians",
    "trend_points",
]

#: 1 / Φ⁻¹(3/4): the MAD of normal data times this is its standard deviation.
MAD_TO_SIGMA = 1.482602218505602
DEFAULT_OUTLIER_SIGMA = 4.0
DEFAULT_MIN_POINTS = 5


@dataclass(frozen=True, slots=True)
class Metric:
    """A statistic followed over time.

    Attributes
    ----------
    name : str
        Column name in ``nightlog calib history``.
    key : str
        Key in ``Master.stats``.
    label, unit : str
        For axes and documentation.
    rate : bool or None
        Darks only: the metric applies to masters whose ``is_rate`` equals this
        (a dark level is ADU/s for darks scaled by exposure, ADU otherwise);
        ``None`` for every master.
    error_key : str or None
        Key in ``Master.stats`` of its one-sigma uncertainty (masters built
        before uncertainties were recorded have none).
    """

    name: str
    key: str
    label: str
    unit: str
    rate: bool | None = None
    error_key: str | None = None

    def value(self, master: TrendMaster, amplifier: str = "") -> float | None:
        """This metric of ``master`` (of one of its amplifiers), or ``None`` when absent,
        not a number or infinite."""
        if self.rate is not None and master.is_rate != self.rate:
            return None
        return _number(_stats_of(master, amplifier).get(self.key))

    def uncertainty(self, master: TrendMaster, amplifier: str = "") -> float | None:
        """The one-sigma uncertainty of :meth:`value`, or ``None`` when not recorded."""
        if self.error_key is None or self.value(master, amplifier) is None:
            return None
        return _number(_stats_of(master, amplifier).get(self.error_key))


def _number(raw: Any) -> float | None:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return None
    value = float(raw)
    return value if math.isfinite(value) else None


#: An amplifier's measured figure, as a multi-amplifier master's build records it
#: (a list of ``{"name", "read_noise_adu", "read_noise_e", "gain", "source"}``),
#: under the key the master's own figure has.
_AMPLIFIER_KEYS = {"gain": "gain_from_flats"}


def _amplifier_tables(stats: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """Each amplifier's figures, by name: ``stats["amplifiers"]`` as a mapping of
    name to figures, or as the list of named records a multi-amplifier build writes."""
    amps = stats.get("amplifiers")
    if isinstance(amps, Mapping):
        return {str(k): v for k, v in amps.items() if isinstance(v, Mapping)}
    if isinstance(amps, list):
        return {str(a["name"]): {_AMPLIFIER_KEYS.get(k, k): v for k, v in a.items()}
                for a in amps if isinstance(a, Mapping) and a.get("name") is not None}
    return {}


def _stats_of(master: TrendMaster, amplifier: str) -> Mapping[str, Any]:
    """The master's statistics, or one amplifier's (``stats["amplifiers"]``)."""
    stats = master.stats or {}
    if not amplifier:
        return stats
    return _amplifier_tables(stats).get(amplifier, {})


def amplifiers_of(master: TrendMaster) -> tuple[str, ...]:
    """Names of the amplifiers whose figures the master records (``stats["amplifiers"]``:
    each name's figures keyed as the master's own); empty for one-amplifier masters."""
    return tuple(sorted(_amplifier_tables(master.stats or {})))


#: The metrics of each kind of master, in column order.
TREND_METRICS: Mapping[str, tuple[Metric, ...]] = MappingProxyType({
    "bias": (
        Metric("bias_level", "level", "bias level", "ADU", error_key="level_err"),
        Metric("read_noise_adu", "read_noise_adu", "read noise", "ADU",
               error_key="read_noise_adu_err"),
        Metric("read_noise_e", "read_noise_e", "read noise", "e⁻",
               error_key="read_noise_e_err"),
    ),
    "dark": (
        Metric("dark_rate", "level", "dark level", "ADU/s", rate=True, error_key="level_err"),
        Metric("dark_level", "level", "dark level", "ADU", rate=False, error_key="level_err"),
        Metric("dark_current", "dark_current_e_per_s", "dark current", "e⁻/s",
               error_key="dark_current_err"),
        Metric("hot_pixels", "hot_pixels", "hot pixels", "pixels", error_key="hot_pixels_err"),
    ),
    "flat": (
        Metric("flat_level", "level", "flat level", "ADU", error_key="level_err"),
        Metric("gain", "gain_from_flats", "gain", "e⁻/ADU", error_key="gain_err"),
    ),
})


@dataclass(frozen=True, slots=True)
class TrendPoint:
    """One master in a calibration history: its identity, metrics and outliers."""

    master_id: int
    kind: str
    night: dt.date
    mid_time: dt.datetime
    version: int
    instrument: str | None
    filter: str | None
    group_key: str
    group: Mapping[str, Any]
    n_frames: int
    quality: str
    quality_reason: str | None
    superseded_by: int | None
    #: Metric name to value (``None`` when the master lacks it).
    values: Mapping[str, float | None]
    #: Names of the metrics whose value is an outlier of its series.
    outliers: tuple[str, ...] = ()
    #: Metric name to its one-sigma uncertainty (``None`` when not recorded).
    errors: Mapping[str, float | None] = field(default_factory=lambda: MappingProxyType({}))
    #: Metric name to the normal band before this master (``None``: too few points);
    #: see :mod:`nightlog.calibration.health`.
    bands: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    #: Names of the metrics outside their band (``metric@amplifier`` for one
    #: amplifier's figure).
    alarms: tuple[str, ...] = ()
    #: Header figures that disagree with what the master measured (the messages of
    #: :mod:`nightlog.calibration.header_checks`).
    warnings: tuple[str, ...] = ()

    @property
    def in_trend(self) -> bool:
        """Whether the master counts in its trend: good and not superseded."""
        return self.quality == MasterQuality.GOOD and self.superseded_by is None


def robust_outliers(values: Sequence[float | None], *, k: float = DEFAULT_OUTLIER_SIGMA,
                    min_points: int = DEFAULT_MIN_POINTS) -> list[bool]:
    """Which values lie more than ``k`` robust standard deviations from the median.

    Parameters
    ----------
    values : sequence of float or None
        One series; ``None`` and non-finite values are neither counted nor flagged.
    k : float
        Threshold in units of ``1.4826 × MAD``; at least 0.
    min_points : int
        Fewer counted values than this flag nothing.

    Returns
    -------
    list of bool
        One flag per value: ``|x - median| > k × 1.4826 × MAD``.

    Raises
    ------
    ValueError
        ``k`` negative or not a number, or ``min_points`` below 1.
    """
    if not k >= 0.0:
        raise ValueError(f"k must be a number >= 0, not {k}")
    if min_points < 1:
        raise ValueError(f"min_points must be at least 1, not {min_points}")
    present = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if present.size < min_points:
        return [False] * len(values)
    median = float(np.median(present))
    limit = k * MAD_TO_SIGMA * float(np.median(np.abs(present - median)))
    return [v is not None and math.isfinite(v) and abs(v - median) > limit for v in values]


def _warnings_of(master: TrendMaster) -> tuple[str, ...]:
    said = (master.stats or {}).get("header_disagrees") if isinstance(master.stats, dict) else None
    return tuple(str(d.get("message")) for d in said or () if isinstance(d, dict))


def trend_points(masters: Sequence[TrendMaster], *, k: float = DEFAULT_OUTLIER_SIGMA,
                 min_points: int = DEFAULT_MIN_POINTS) -> list[TrendPoint]:
    """The masters as trend points, in the given order, with their outliers marked.

    Each (group, metric) series is judged on its masters that are in the trend
    (good, current); see the module notes.
    """
    metrics_of = {kind: TREND_METRICS.get(kind, ()) for kind in {m.kind for m in masters}}
    values = [{mt.name: mt.value(m) for mt in metrics_of[m.kind]} for m in masters]
    flagged: dict[int, list[str]] = defaultdict(list)
    series: dict[str, list[int]] = defaultdict(list)
    for i, m in enumerate(masters):
        if m.quality == MasterQuality.GOOD and m.superseded_by_id is None:
            series[m.group_key].append(i)
    for members in series.values():
        for metric in metrics_of[masters[members[0]].kind]:
            marks = robust_outliers([values[i][metric.name] for i in members], k=k,
                                    min_points=min_points)
            for i, mark in zip(members, marks, strict=True):
                if mark:
                    flagged[i].append(metric.name)
    return [
        TrendPoint(
            master_id=m.id, kind=m.kind, night=m.night, mid_time=m.mid_time,
            version=m.version, instrument=m.instrument, filter=m.filter,
            group_key=m.group_key, group=MappingProxyType(dict(m.group or {})),
            n_frames=m.n_frames, quality=m.quality, quality_reason=m.quality_reason,
            superseded_by=m.superseded_by_id, values=MappingProxyType(values[i]),
            outliers=tuple(flagged.get(i, ())),
            errors=MappingProxyType({mt.name: mt.uncertainty(m) for mt in metrics_of[m.kind]}),
            warnings=_warnings_of(m),
        )
        for i, m in enumerate(masters)
    ]


def series_medians(points: Sequence[TrendPoint]) -> dict[tuple[str, str], tuple[float, int]]:
    """Median and size of each (group, metric) series, over the points in the trend.

    The series the outlier rule judges (good, current masters of one group): a
    master's value can be shown beside the median of its history. Keys are
    ``(group_key, metric name)``; series with no value are absent.
    """
    series: dict[tuple[str, str], list[float]] = defaultdict(list)
    for p in points:
        if not p.in_trend:
            continue
        for name, value in p.values.items():
            if value is not None:
                series[(p.group_key, name)].append(value)
    return {key: (float(np.median(values)), len(values)) for key, values in series.items()}
