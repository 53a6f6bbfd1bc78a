"""The demo job: simulate a night, catalogue it, build its masters, reduce its
science frames and write the night report, in a fresh SQLite archive.

It leaves a complete archive behind with its ``nightlog.toml``, so that after
``cd`` into it every command works on it.

``camera="cmos"`` is the ZWO ASI1600MM Pro under N.I.N.A. (built-in profile
``zwo_asi1600_nina``): two gain settings, darks at four exposures, a subarray frame.
Its configuration tells the profile the full readout at the demo's scale (so the
subarray frame is placed in it), and the night has five darks per exposure and gain
setting, a master's default minimum.

``camera="mef"`` is the LCO Sinistro (built-in profile ``lco_sinistro``): four
amplifiers written as MEF, each with its own bias, gain, read noise and overscan;
the profile reads everything from the headers, so the configuration adds nothing.
Masters and products are the assembled detector, in electrons.

``camera="mosaic"`` is the two-CCD mosaic (built-in profile ``mosaic_2x2``): each
file is one frame per CCD, and masters and products are per CCD; the configuration
adds nothing either.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from nightlog.catalogue.engine import create_engine, make_sessionmaker
from nightlog.catalogue.queries import night_counts
from nightlog.catalogue.schema import ensure_schema
from nightlog.coordinator.context import JobContext
from nightlog.coordinator.ingest import IngestContext, IngestSummary, discover, run_ingest
from nightlog.coordinator.masters import BuildOutcome
from nightlog.coordinator.night import NightRun, finish_night
from nightlog.coordinator.night_report import run_report
from nightlog.coordinator.reduce import ReduceOutcome
from nightlog.settings import CONFIG_FILENAME, load_settings

__all__ = ["DemoReport", "run_demo"]

_CONFIG = """\
# nightlog configuration of the demo archive (written by 'nightlog demo').
[archive]
root = "."                     # masters and products go here; the catalogue too

[database]
# url = "postgresql://user@host/dbname"   # default: SQLite file nightlog.sqlite here

[watch]
directories = ["raw"]
"""


#: Frames per block the demo asks the simulator for, per camera (``None``: its own).
_COUNTS: dict[str, dict[str, int]] = {"cmos": {"n_dark": 5}}

_CMOS_PROFILE = """
[instruments.zwo_asi1600_nina]
# The built-in profile describes the full 3520 x 4656 readout; the demo's frames are
# shrunk by its scale, so its full readout is this (the subarray frame lies in it).
full_shape = [{rows}, {columns}]
"""


def _camera_config(camera: str, truth: Path) -> str:
    """What the configuration adds for ``camera``'s simulated night."""
    if camera != "cmos":
        return ""
    rows, columns = json.loads(truth.read_text(encoding="utf-8"))["shape"]
    return _CMOS_PROFILE.format(rows=rows, columns=columns)


@dataclass(frozen=True, slots=True)
class DemoReport:
    """What the demo did."""

    directory: Path
    database: str
    night: dt.date
    ingest: IngestSummary
    nights: list[dict[str, Any]]
    masters: list[BuildOutcome]
    reductions: list[ReduceOutcome]
    products: Path
    #: The night report (HTML).
    report: Path


def run_demo(directory: Path, *, camera: str = "lfc", scale: float = 0.25, seed: int = 0,
             console: Console | None = None) -> DemoReport:
    """Run the demo into ``directory`` (created; an existing demo there is extended)."""
    from nightlog.simulate import simulate_night

    console = console or Console(quiet=True)
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / CONFIG_FILENAME
    console.print(f"simulating a {camera} night in {directory / 'raw'} ...")
    night = simulate_night(directory / "raw", camera=camera, scale=scale, seed=seed,
                           **_COUNTS.get(camera, {}))
    if not config.exists():
        config.write_text(_CONFIG + _camera_config(camera, night.truth_path),
                          encoding="utf-8")
    settings = load_settings(config)
    engine = create_engine(settings.database_url)
    try:
        ensure_schema(engine)
        files = discover([directory / "raw"], settings.ingest.patterns)
        console.print(f"ingesting {len(files)} files ...")
        summary = run_ingest(engine, files, IngestContext.from_settings(settings))
        with make_sessionmaker(engine)() as session:
            rows = [{"night": c.night.isoformat(), "kind": c.kind, "filter": c.filter,
                     "exptime": c.exptime, "count": c.count}
                    for c in night_counts(session, since=night.night, until=night.night)]
        jobs = JobContext.from_settings(settings)
        console.print("building master calibrations ...")

        def _reducing(run: NightRun) -> None:
            console.print(f"reducing {len(run.frame_ids)} science frames ...")

        done = finish_night(engine, jobs, night=night.night, workers=1, local=True,
                            before_reduce=_reducing)
        console.print("writing the night report ...")
        report = run_report(engine, jobs, night.night)
    finally:
        engine.dispose()
    return DemoReport(directory=directory, database=settings.safe_database_url,
                      night=night.night, ingest=summary, nights=rows, masters=done.builds,
                      reductions=done.outcomes, products=jobs.layout.root / "products",
                      report=report)
