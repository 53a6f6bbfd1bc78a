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
    camera: Annotated[str, typer.Option(help="Camera: 'lfc' (Palomar LFC), 'aspen' "
                                        "(Andor/Apogee Aspen CG16M, MaxIm DL), 'mef' (LCO "
                                        "Sinistro, 4 amplifiers as MEF), 'mosaic' (two "
                                        "CCDs of two amplifiers in one MEF) or 'cmos' (ZWO "
                                        "ASI1600MM Pro under N.I.N.A., two gain settings "
                                        "and a subarray frame; 'cmos-colour': its RGGB "
                                        "model).")] = "lfc",
    night: Annotated[str | None, typer.Option(help="Night (YYYY-MM-DD); default the "
                                              "camera's reference night.")] = None,
    scale: Annotated[float, typer.Option(help="Shrink frames by this factor (0 < scale "
                                         "≤ 1) for quick tests.")] = 1.0,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same bytes).")] = 0,
    n_bias: Annotated[int | None, typer.Option(help="Biases (per gain setting on 'cmos'); "
                                               "default the camera's.")] = None,
    n_dark: Annotated[int | None, typer.Option(help="Darks per exposure time (and gain "
                                               "setting on 'cmos'); default the "
                                               "camera's.")] = None,
    n_flat: Annotated[int | None, typer.Option(help="Flats per filter (and gain setting on "
                                               "'cmos'); default the camera's.")] = None,
    n_science: Annotated[int | None, typer.Option(help="Science frames; default the "
                                                  "camera's.")] = None,
    gain_factor: Annotated[float, typer.Option(
        min=0.01, help="Multiply the camera's true gain by this (a changed detector; the "
        "headers stay the camera's).")] = 1.0,
    set_temp: Annotated[float | None, typer.Option(
        help="CCD set temperature of the night, °C ('aspen' only): the dark current "
        "doubles every 6.3 K above the reference -20 °C; default the reference.")] = None,
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
                                n_bias=n_bias, n_dark=n_dark, n_flat=n_flat,
                                n_science=n_science, gain_factor=gain_factor,
                                set_temp=set_temp, progress=_progress)
    typer.echo(f"wrote {len(result.files)} {camera} frames of the night of "
               f"{result.night.isoformat()} to {result.outdir} (truth: {result.truth_path})")
