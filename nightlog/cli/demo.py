"""``nightlog demo``: the main job end to end on a simulated night."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from nightlog.cli.ingest import print_summary
from nightlog.cli.output import OutputFormat, emit
from nightlog.states import BuildStatus, ReduceStatus

app = typer.Typer()


@app.command("demo")
def demo_cmd(
    ctx: typer.Context,
    directory: Annotated[Path, typer.Argument(help="Folder for the demo archive.",
                                              file_okay=False)] = Path("nightlog-demo"),
    camera: Annotated[str, typer.Option(help="Camera to simulate: 'lfc', 'aspen', 'cmos' "
                                        "(ZWO ASI1600MM Pro under N.I.N.A.), 'mef' "
                                        "(LCO Sinistro, four amplifiers) or 'mosaic' "
                                        "(two CCDs of two amplifiers, one product per "
                                        "CCD).")] = "lfc",
    scale: Annotated[float, typer.Option(help="Frame size factor (1 = the camera's full "
                                         "4128 × 2080 for the LFC).")] = 0.25,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Simulate a night, catalogue it, build its masters, reduce it and write the night
    report, in a new SQLite archive."""
    from nightlog.demo import run_demo

    console = Console()
    report = run_demo(directory, camera=camera, scale=scale, seed=seed, console=console)
    print_summary(report.ingest, console)
    emit(report.nights, ("night", "kind", "filter", "exptime", "count"), OutputFormat.table,
         title=f"the night of {report.night.isoformat()} in the catalogue", console=console)
    built = [m for m in report.masters if m.status == BuildStatus.BUILT]
    console.print(f"masters built: {len(built)} "
                  f"({', '.join(f'{m.kind} v{m.version}' for m in built)})")
    for m in report.masters:
        if m.status != BuildStatus.BUILT:
            console.print(f"master {m.kind}: {m.status}: {m.reason}")
    done = [r for r in report.reductions if r.status == ReduceStatus.REDUCED]
    console.print(f"science frames reduced: {len(done)} of {len(report.reductions)}, "
                  f"products in {report.products}")
    for r in report.reductions:
        if r.status != ReduceStatus.REDUCED:
            console.print(f"frame {r.frame_id}: {r.status}: {r.reason}")
    console.print(f"night report: {report.report}")
    console.print(
        f"\nThe archive is in {report.directory} (catalogue: {report.database}).\n"
        "Try next:\n"
        f"  cd {report.directory}\n"
        "  nightlog nights\n"
        "  nightlog frames --kind science\n"
        "  nightlog frames --kind flat --format json\n"
        "  nightlog calib list\n"
        + (f"  nightlog match {report.reductions[0].frame_id}"
           f"          # why each master was chosen for frame {report.reductions[0].frame_id}\n"
           if report.reductions else "")
        +
        "  nightlog quarantine\n"
        f"  nightlog report --night {report.night.isoformat()}   # the page again\n"
    )


