"""A picture of a calibration history: one panel per metric, time along x.

Each calibration group is one coloured line (for flats, one per filter), each
point with its one-sigma error bar where the master recorded one; the normal band
before each master (:mod:`nightlog.calibration.health`) is shaded in the group's
colour; alarms are red triangles; the night in question ("tonight": the newest
night shown unless told) is a shaded column. Masters that count in the trend are
filled markers; masters marked bad are hollow grey circles and superseded versions
grey crosses, off the line; outliers are ringed in red. matplotlib is imported
when a plot is drawn, never at import, and only its Agg canvas is used: no
display, no global pyplot state, safe in a daemon. The PNG appears under its name
only when complete (written to a temporary name, then renamed).

For darks with doubling temperatures (:mod:`nightlog.calibration.dark_temperature`)
one more panel per set-up shows each master's dark rate against its set temperature
(log scale, with its error bar; a down-weighted master hollow) and the fitted line.
"""

from __future__ import annotations

import datetime as dt
import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np
import numpy.typing as npt

from nightlog.calibration.dark_temperature import DoublingFit
from nightlog.calibration.trends import TREND_METRICS, Metric, TrendPoint
from nightlog.states import MasterQuality
from nightlog.store.atomic import write_atomically

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["history_png", "plot_history"]

_PANEL_HEIGHT = 2.4  # inches
_WIDTH = 10.0
_DPI = 100
_BARE_FIELDS = ("instrument", "filter")


def _series_labels(points: Sequence[TrendPoint]) -> dict[str, str]:
    """A short label per group: the grouping fields whose values differ."""
    groups: dict[str, Mapping[str, Any]] = {}
    for p in points:
        groups.setdefault(p.group_key, p.group)
    names = sorted({n for g in groups.values() for n in g})
    varying = [n for n in names if len({str(g.get(n)) for g in groups.values()}) > 1]
    if points and points[0].kind == "flat" and "filter" not in varying:
        varying.insert(0, "filter")
    labels: dict[str, str] = {}
    for key, group in groups.items():
        parts = [str(group.get(n)) if n in _BARE_FIELDS else f"{n}={group.get(n)}"
                 for n in varying]
        labels[key] = ", ".join(parts) or points[0].kind
    return labels


def _xy(points: Sequence[TrendPoint], metric: Metric
        ) -> tuple[npt.NDArray[np.datetime64], npt.NDArray[np.float64]]:
    """Mid times (naive UTC, as datetime64) and values of the points that have ``metric``."""
    have = [p for p in points if p.values.get(metric.name) is not None]
    times = [_naive(p.mid_time) for p in have]
    return (np.array(times, dtype="datetime64[ms]"),
            np.array([p.values[metric.name] for p in have], dtype=float))


def _naive(t: dt.datetime) -> dt.datetime:
    return t.astimezone(dt.UTC).replace(tzinfo=None)


def _draw_band(ax: Axes, metric: Metric, members: Sequence[TrendPoint], color: str) -> None:
    have = [p for p in members if p.bands.get(metric.name) is not None
            and p.values.get(metric.name) is not None]
    if not have:
        return
    x = np.array([_naive(p.mid_time) for p in have], dtype="datetime64[ms]")
    lo = np.array([p.bands[metric.name].low for p in have], dtype=float)
    hi = np.array([p.bands[metric.name].high for p in have], dtype=float)
    if x.size == 1:
        ax.errorbar(x, (lo + hi) / 2, yerr=(hi - lo) / 2, fmt="none", ecolor=color,
                    alpha=0.3, elinewidth=6, label="normal band")
        return
    ax.fill_between(x, lo, hi, step="mid", color=color, alpha=0.15, linewidth=0,
                    label="normal band")


def _draw_panel(ax: Axes, metric: Metric, points: Sequence[TrendPoint],
                labels: Mapping[str, str], tonight: dt.date | None) -> None:
    for i, (key, label) in enumerate(labels.items()):
        members = [p for p in points if p.group_key == key and p.in_trend]
        x, y = _xy(members, metric)
        if x.size:
            color = f"C{i % 10}"
            _draw_band(ax, metric, members, color)
            have = [p for p in members if p.values.get(metric.name) is not None]
            err = np.array([p.errors.get(metric.name) or 0.0 for p in have], dtype=float)
            ax.errorbar(x, y, yerr=err if err.any() else None, marker="o", markersize=4,
                        linewidth=1.0, color=color, ecolor=color, elinewidth=0.8, capsize=2,
                        label=label)
    x, y = _xy([p for p in points if p.quality != MasterQuality.GOOD], metric)
    if x.size:
        ax.scatter(x, y, s=36, marker="o", facecolors="none", edgecolors="grey",
                   linewidths=1.2, label="marked bad", zorder=3)
    x, y = _xy([p for p in points
                if p.quality == MasterQuality.GOOD and p.superseded_by is not None],
               metric)
    if x.size:
        ax.scatter(x, y, s=30, marker="x", color="grey", linewidths=1.0, label="superseded",
                   zorder=3)
    x, y = _xy([p for p in points if metric.name in p.outliers], metric)
    if x.size:
        ax.scatter(x, y, s=170, marker="o", facecolors="none", edgecolors="red",
                   linewidths=1.6, label="outlier", zorder=4)
    x, y = _xy([p for p in points if metric.name in p.alarms], metric)
    if x.size:
        ax.scatter(x, y, s=70, marker="^", color="red", label="alarm", zorder=5)
    if tonight is not None:
        start = dt.datetime.combine(tonight, dt.time(12))
        ax.axvspan(np.datetime64(start, "ms"), np.datetime64(start + dt.timedelta(days=1),
                                                             "ms"),
                   color="gold", alpha=0.25, linewidth=0, label=f"night {tonight}")
    ax.set_ylabel(f"{metric.label}\n({metric.unit})")
    ax.grid(True, alpha=0.3)


def _draw_fit(ax: Axes, fit: DoublingFit) -> None:
    """Dark rate against set temperature, and the fitted doubling law."""
    temps = np.array([p.set_temp for p in fit.points], dtype=float)
    rates = np.array([p.rate for p in fit.points], dtype=float)
    errs = np.array([p.rate_err or 0.0 for p in fit.points], dtype=float)
    kept = np.array([p.weight >= 0.5 for p in fit.points])
    ax.errorbar(temps, rates, yerr=errs if errs.any() else None, fmt="none", ecolor="C0",
                elinewidth=0.8, capsize=2)
    ax.scatter(temps[kept], rates[kept], color="C0", s=20, zorder=3, label="master dark")
    if (~kept).any():
        ax.scatter(temps[~kept], rates[~kept], facecolors="none", edgecolors="C0", s=30,
                   zorder=3, label="down-weighted")
    w = np.array([p.weight for p in fit.points]) / np.maximum(errs / rates, 1e-12) ** 2 \
        if errs.all() else np.array([p.weight for p in fit.points])
    slope = np.log(2.0) / fit.doubling_k
    intercept = float(np.sum(w * (np.log(rates) - slope * temps)) / np.sum(w))
    grid = np.linspace(temps.min(), temps.max(), 50)
    ax.plot(grid, np.exp(intercept + slope * grid), color="C1", linewidth=1.0,
            label="fitted doubling law")
    ax.set_yscale("log")
    ax.set_xlabel("set temperature (°C)")
    ax.set_ylabel("dark rate\n(level / s)")
    ax.set_title(fit.describe(), fontsize="small")
    ax.grid(True, alpha=0.3)


def _figure(points: Sequence[TrendPoint], kind: str, title: str | None,
            width: float, panel_height: float = _PANEL_HEIGHT,
            tonight: dt.date | None = None, fits: Sequence[DoublingFit] = ()) -> Figure:
    """The figure of :func:`plot_history`, on an Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure

    metrics = [m for m in TREND_METRICS.get(kind, ())
               if any(p.values.get(m.name) is not None for p in points)]
    n_panels = max(len(metrics), 1)
    fig = Figure(figsize=(width, 1.0 + panel_height * (n_panels + len(fits))), dpi=_DPI,
                 layout="constrained")
    FigureCanvasAgg(fig)
    every = fig.subplots(n_panels + len(fits), 1, squeeze=False)[:, 0]
    axes = every[:n_panels]
    for ax in axes[1:]:
        ax.sharex(axes[0])
    for ax, fit in zip(every[n_panels:], fits, strict=True):
        _draw_fit(ax, fit)
    if points:
        first, last = min(p.night for p in points), max(p.night for p in points)
        fig.suptitle(title or f"{len(points)} {kind} master(s), nights {first.isoformat()} "
                     f"to {last.isoformat()}")
    else:
        fig.suptitle(title or f"{kind} masters: none")
    if not metrics:
        axes[0].text(0.5, 0.5, "no master with statistics to plot", ha="center", va="center",
                     transform=axes[0].transAxes)
        axes[0].set_axis_off()
    else:
        labels = _series_labels(points)
        if tonight is None:
            tonight = max(p.night for p in points)
        for ax, metric in zip(axes, metrics, strict=True):
            _draw_panel(ax, metric, points, labels, tonight)
        locator = AutoDateLocator()  # type: ignore[no-untyped-call]
        axes[-1].xaxis.set_major_locator(locator)
        axes[-1].xaxis.set_major_formatter(
            ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
        axes[-1].set_xlabel("master mid time (UTC)")
        for ax in axes[:-1]:
            ax.tick_params(labelbottom=False)
        handles: dict[str, Any] = {}
        for ax in every:
            for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
                handles.setdefault(label, handle)
        fig.legend(list(handles.values()), list(handles), loc="outside right upper")
    return fig


def plot_history(points: Sequence[TrendPoint], kind: str, path: str | os.PathLike[str], *,
                 title: str | None = None, tonight: dt.date | None = None,
                 fits: Sequence[DoublingFit] = ()) -> Path:
    """Draw the trends of ``points`` (masters of one ``kind``) into a PNG at ``path``.

    One panel per metric that at least one master has; a figure saying so when
    there is none. ``tonight`` is the night shaded (default: the newest shown),
    drawn as the UTC day from its noon (the night's own date). Each of ``fits``
    (darks' doubling temperatures) adds a panel of rate against set temperature.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    StoreError
        The file cannot be written.
    """
    fig = _figure(points, kind, title, _WIDTH, tonight=tonight, fits=fits)

    def _write(fh: BinaryIO) -> None:
        fig.savefig(fh, format="png")

    return write_atomically(path, _write)


def history_png(points: Sequence[TrendPoint], kind: str, *, title: str | None = None,
                width: float = _WIDTH, panel_height: float = _PANEL_HEIGHT,
                tonight: dt.date | None = None) -> bytes:
    """The picture of :func:`plot_history` as PNG bytes (for a page that embeds it).

    ``width`` and ``panel_height`` are in inches, at 100 dots per inch.
    """
    buffer = io.BytesIO()
    _figure(points, kind, title, width, panel_height, tonight).savefig(buffer, format="png")
    return buffer.getvalue()
