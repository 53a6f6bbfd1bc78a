"""``nightlog simulate``: write a simulated night of a real camera."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from nightlog.cli.options import parse_date

app = typer.Typer()


@app.command("simulate")
def simulate_cmd(
    outdir: Annotated[Path, typer.Argument(help="Folder to write the night into.",
                                           file_okay=False)],
    camera: Annotated[str, typer.Option(help="Camera: 'lfc' (Palomar LFC) or 'aspen' "
                                        "(Andor/Apogee Aspen CG16M, MaxIm DL).")] = "lfc",
    night: Annotated[str | None, typer.Option(help="Night (YYYY-MM-DD); default the "
                                              "camera's reference night.")] = None,
    scale: Annotated[float, typer.Option(help="Shrink frames by this factor (0 < scale "
                                         "≤ 1) for quick tests.")] = 1.0,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same bytes).")] = 0,
    gain_factor: Annotated[float, typer.Option(
        min=0.01, help="Multiply the camera's true gain by this (a changed detector; the "
        "headers stay the camera's).")] = 1.0,
) -> None:
    """Write a seeded, realistic night of raw frames, with the truth used to make them."""
    from nightlog.simulate import simulate_night

    night_date: dt.date | None = parse_date(night)
    console = Console(stderr=True)
    with Progress(TextColumn("simulate"), BarColumn(), MofNCompleteColumn(), console=console,
                  transient=True) as bar:
        task = bar.add_task("simulate", total=None)

        def _progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        result = simulate_night(outdir, camera=camera, night=night_date, scale=scale, seed=seed,
                                gain_factor=gain_factor, progress=_progress)
    typer.echo(f"wrote {len(result.files)} {camera} frames of the night of "
               f"{result.night.isoformat()} to {result.outdir} (truth: {result.truth_path})")
