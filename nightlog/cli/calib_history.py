"""``nightlog calib history``: the statistics of masters over time, their bands, alarms
and outliers, and for darks the doubling temperature of the dark current.

Registered on the ``calib`` group by :mod:`nightlog.cli.calib`.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated, Any

import typer

from nightlog.calibration.dark_temperature import DoublingFit, setup_of, temperature_fits
from nightlog.calibration.health import health_points
from nightlog.calibration.trends import DEFAULT_OUTLIER_SIGMA, TREND_METRICS, TrendPoint
from nightlog.catalogue.engine import make_sessionmaker
from nightlog.catalogue.fences import list_fences
from nightlog.catalogue.history import HistoryFilter, master_history
from nightlog.cli.options import parse_date
from nightlog.cli.output import OutputFormat, emit
from nightlog.cli.state import state_of

__all__ = ["MasterKind", "history_cmd", "history_row"]

#: Columns of a dark's row from its set-up's doubling temperature.
FIT_COLUMNS = ("set_temp", "doubling_k", "doubling_k_err", "doubling_n")


class MasterKind(enum.StrEnum):
    """Kinds of master calibration."""

    bias = "bias"
    dark = "dark"
    flat = "flat"


def history_row(p: TrendPoint, fit: DoublingFit | None = None) -> dict[str, Any]:
    """The JSON record of a master in the calibration history (a dark's with its
    set temperature and its set-up's doubling temperature ``fit``, ``None`` when
    there is none)."""
    row = {
        "id": p.master_id, "kind": p.kind, "night": p.night.isoformat(),
        "mid_time": p.mid_time.isoformat(), "version": p.version, "instrument": p.instrument,
        "filter": p.filter, "n_frames": p.n_frames, **p.values,
        **{f"{name}_err": err for name, err in p.errors.items()},
        "quality": p.quality, "quality_reason": p.quality_reason,
        "superseded_by": p.superseded_by, "outlier": list(p.outliers),
        "alarm": list(p.alarms), "warning": list(p.warnings),
        "bands": {name: None if band is None else band.as_dict()
                  for name, band in p.bands.items()},
        "group_key": p.group_key,
    }
    if p.kind == "dark":
        row.update({"set_temp": p.group.get("set_temp"),
                    "doubling_k": None if fit is None else fit.doubling_k,
                    "doubling_k_err": None if fit is None else fit.doubling_err,
                    "doubling_n": None if fit is None else len(fit.points)})
    return row


def _fit_title(fits: dict[str, DoublingFit | str]) -> str:
    parts = []
    for setup, fit in fits.items():
        if isinstance(fit, DoublingFit):
            lo, hi = fit.temperature_range or (0.0, 0.0)
            parts.append(f"{setup}: dark current {fit.describe()} from {lo:g} to {hi:g} °C")
        else:
            parts.append(f"{setup}: no doubling temperature ({fit})")
    return "; ".join(parts)


def history_cmd(
    ctx: typer.Context,
    kind: Annotated[MasterKind, typer.Option("--type", help="Kind of master.",
                                             case_sensitive=False)],
    instrument: Annotated[str | None, typer.Option(help="Only this instrument.")] = None,
    filter_: Annotated[str | None, typer.Option("--filter", help="Only flats of this "
                                                "filter.")] = None,
    since: Annotated[str | None, typer.Option(help="First night (YYYY-MM-DD).")] = None,
    until: Annotated[str | None, typer.Option(help="Last night, included (YYYY-MM-DD).")]
        = None,
    all_versions: Annotated[bool, typer.Option(
        "--all-versions", help="Include superseded versions (shown, not counted in the "
        "trends).")] = False,
    outlier_sigma: Annotated[float, typer.Option(
        min=0.0, help="Mark a value as an outlier when it lies more than this many robust "
        "standard deviations (1.4826 × MAD) from the median of its group's series.")]
        = DEFAULT_OUTLIER_SIGMA,
    plot: Annotated[Path | None, typer.Option(
        help="Also draw the trends into this PNG file (error bars, the normal band "
        "shaded, the last night marked, alarms as red triangles, outliers ringed in red, "
        "masters marked bad hollow grey; for darks one more panel per set-up: the dark "
        "rate against set temperature and the fitted doubling law).", dir_okay=False)]
        = None,
    fmt: Annotated[OutputFormat, typer.Option("--format", help="Output format.")] =
        OutputFormat.table,
) -> None:
    """Calibration history: bias level and read noise, dark current and hot pixels, flat
    level and gain of each master over time, with uncertainties, the normal band before
    each master and its alarms, and outliers marked. For darks, each master's set
    temperature and the doubling temperature of its set-up's dark current, fitted on
    the good, current masters listed at several set temperatures."""
    if plot is not None and plot.suffix.lower() != ".png":
        raise typer.BadParameter(f"the plot is a PNG file: {plot}", param_hint="--plot")
    crit = HistoryFilter(kind=kind.value, instrument=instrument, filter=filter_,
                         since=parse_date(since), until=parse_date(until),
                         include_superseded=all_versions)
    state = state_of(ctx)
    engine = state.engine(must_exist=True)
    fits: dict[str, DoublingFit | str] = {}
    setups: dict[int, str] = {}
    with make_sessionmaker(engine)() as session:
        masters = master_history(session, crit)
        points = health_points(masters, list_fences(session), state.settings.health,
                               k=outlier_sigma)
        if kind is MasterKind.dark:
            fits = temperature_fits(masters)
            setups = {m.id: setup_of(m) for m in masters}
    if plot is not None:
        from nightlog.calibration.history_plot import plot_history

        drawn = plot_history(points, kind.value, plot,
                             fits=[f for f in fits.values() if isinstance(f, DoublingFit)])
        typer.echo(f"plot written: {drawn}", err=True)

    def fit_of(p: TrendPoint) -> DoublingFit | None:
        fit = fits.get(setups.get(p.master_id, ""))
        return fit if isinstance(fit, DoublingFit) else None

    rows = [history_row(p, fit_of(p)) for p in points]
    if fmt is not OutputFormat.json:
        rows = [{**{k: v for k, v in r.items() if k != "bands"},
                 "outlier": ";".join(r["outlier"]), "alarm": ";".join(r["alarm"]),
                 "warning": "; ".join(r["warning"])}
                for r in rows]
    metrics = [m.name for m in TREND_METRICS[kind.value]
               if any(p.values.get(m.name) is not None for p in points)]
    shown = [c for m in metrics for c in (m, f"{m}_err")
             if c == m or any(p.errors.get(m) is not None for p in points)]
    columns = ["id", "night", "version", "instrument", *(["filter"] if kind is MasterKind.flat
                                                         else []),
               "n_frames", *shown, *(FIT_COLUMNS if kind is MasterKind.dark else ()),
               "quality", *(["superseded_by"] if all_versions else []), "alarm", "outlier",
               *(["warning"] if any(p.warnings for p in points) else [])]
    title = f"{len(rows)} {kind.value} master(s)"
    if fits:
        title += f"; {_fit_title(fits)}"
    emit(rows, columns, fmt, title=title)
