"""The nights of the MEF and CMOS cameras: order, times and file names.

LCO (the ``mef`` camera) takes its biases and darks in the afternoon, twilight
sky flats in each filter after sunset, then science from dusk to dawn; files are
named as LCO names them, ``lsc1m005-fa15-20190405-0012-e00.fits`` (site and
telescope, instrument, DAY-OBS, frame number, ``b``/``d``/``f``/``e`` for bias,
dark, sky flat, exposure; the site-instrument pairing is a choice).

N.I.N.A. (the ``cmos`` camera) takes science from dusk, first at the main gain
setting, then at the other settings, then one subarray frame at the main
setting; at dawn flat-panel flats at every setting (the exposure set so that
each reaches the same level in ADU), then darks at every dark exposure and
biases (the shortest exposure), at every setting. Files are named like
N.I.N.A.'s default pattern, flattened to one folder:
``2021-03-03_02-11-40_LIGHT_L_-10.00_120.00s_G139_0001.fits``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np

from nightlog.simulate.cameras import CameraModel
from nightlog.simulate.schedule import (
    PlannedFrame,
    _after,
    _Block,
    _Entry,
    _run_block,
    _science,
    _sun_events,
    _twilight_flats,
)
from nightlog.simulate.zwo import CmosModel, e_per_file_adu

__all__ = ["NINA_TYPES", "plan_lco_night", "plan_nina_night", "subarray_window"]

_LCO_CODES = {"bias": "b", "dark": "d", "flat": "f", "science": "e"}
NINA_TYPES = {"bias": "BIAS", "dark": "DARK", "flat": "FLAT", "science": "LIGHT"}


def plan_lco_night(camera: CameraModel, night: dt.date, counts: tuple[int, int, int, int],
                   rng: np.random.Generator) -> list[PlannedFrame]:
    """Every exposure of an LCO night of ``camera``, in acquisition order.

    Parameters
    ----------
    camera : CameraModel
    night : datetime.date
        The date on which the night starts (it is also ``DAY-OBS``).
    counts : tuple of int
        Biases, darks per dark exposure, sky flats per filter, science frames.
    rng : numpy.random.Generator

    Returns
    -------
    list of PlannedFrame
    """
    n_bias, n_dark, n_flat, n_science = counts
    events = _sun_events(camera, night)
    start = events["sunset"] - dt.timedelta(hours=3)
    entries = _run_block(camera, _Block("bias", n_bias, 0.0, None), start, rng)
    t = _after(camera, entries, start, 30.0)
    for exptime in camera.dark_exptimes:
        entries += _run_block(camera, _Block("dark", n_dark, exptime, None), t, rng)
        t = _after(camera, entries, t)
    t = flat_start = max(t, events["sunset"] + dt.timedelta(minutes=12))
    for model in camera.filters:
        # The sky keeps fading from the first flat on: the second filter's flats are longer.
        block = _Block("flat", n_flat, model.flat_exptime, model.name)
        entries += _twilight_flats(camera, block, t, flat_start, rng)
        t = _after(camera, entries, t, 20.0)
    entries += _science(camera, max(t, events["dusk"]), events["dawn"], n_science, rng)
    day = night.strftime("%Y%m%d")
    frames = []
    for index, entry in enumerate(entries):
        block = entry.block
        name = f"lsc1m005-fa15-{day}-{index + 1:04d}-{_LCO_CODES[block.kind]}00.fits"
        frames.append(PlannedFrame(
            index=index, kind=block.kind, filename=name, start=entry.start,
            exptime=entry.exptime, darktime=entry.exptime, filter=block.filter,
            object_name=camera.target.name if block.kind == "science" else block.kind,
            frame_number=index + 1, illumination_e=entry.illumination_e,
            airmass=entry.airmass))
    return frames


def subarray_window(cmos: CmosModel, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """The subarray window ``(x0, y0, nx, ny)`` in full-frame pixels of ``shape``.

    Widths are multiples of 8 and heights and origins even, as ZWO cameras require.
    """
    ny_full, nx_full = shape
    nx = max(8, int(nx_full * cmos.roi_size[0]) // 8 * 8)
    ny = max(2, int(ny_full * cmos.roi_size[1]) // 2 * 2)
    x0 = min(int(nx_full * cmos.roi_origin[0]) // 2 * 2, nx_full - nx)
    y0 = min(int(ny_full * cmos.roi_origin[1]) // 2 * 2, ny_full - ny)
    return x0, y0, nx, ny


def plan_nina_night(camera: CameraModel, cmos: CmosModel, night: dt.date,
                    counts: tuple[int, int, int, int], shape: tuple[int, int],
                    rng: np.random.Generator) -> list[PlannedFrame]:
    """Every exposure of a N.I.N.A. night of the CMOS camera, in acquisition order.

    Parameters
    ----------
    camera : CameraModel
    cmos : CmosModel
    night : datetime.date
    counts : tuple of int
        Biases per setting, darks per exposure and setting, flats per filter
        and setting, science frames (two thirds, at least one, at the main
        setting; the rest shared by the others; plus one subarray frame).
    shape : tuple of int
        Full frame ``(ny, nx)`` (for the subarray window).
    rng : numpy.random.Generator

    Returns
    -------
    list of PlannedFrame
    """
    n_bias, n_dark, n_flat, n_science = counts
    events = _sun_events(camera, night)
    order = [cmos.main_setting] + [i for i in range(len(cmos.settings))
                                   if i != cmos.main_setting]
    n_main = max(1, round(n_science * 2 / 3)) if n_science else 0
    shares = [n_main, *_split(n_science - n_main, len(order) - 1)]
    plan: list[tuple[_Entry, int, tuple[int, int, int, int] | None]] = []
    t = events["dusk"]
    span = (events["dawn"] - events["dusk"]) * 0.8
    for k, (setting, n) in enumerate(zip(order, shares, strict=True)):
        at_setting = dataclasses.replace(
            camera, science_exptime=cmos.settings[setting].science_exptime)
        end = events["dusk"] + span * (k + 1) / len(order)
        for entry in _science(at_setting, t, end, n, rng):
            plan.append((entry, setting, None))
        t = max(end, _after(camera, [p[0] for p in plan], t))
    if n_science:
        main = cmos.settings[cmos.main_setting]
        entry = _science(dataclasses.replace(camera, science_exptime=main.science_exptime),
                         t, t + dt.timedelta(hours=1), 1, rng)[0]
        plan.append((entry, cmos.main_setting, subarray_window(cmos, shape)))
    t = max(events["dawn"], _after(camera, [p[0] for p in plan], events["dawn"]))
    for model in camera.filters:
        # The panel's brightness: the flat level at the main setting in flat_exptime.
        rate = model.flat_level_adu * e_per_file_adu(cmos.main.gain, cmos.adc_bits) \
            / model.flat_exptime
        for i in order:
            exptime = round(model.flat_level_adu
                            * e_per_file_adu(cmos.settings[i].gain, cmos.adc_bits) / rate, 3)
            block = _Block("flat", n_flat, exptime, model.name)
            for entry in _run_block(camera, block, t, rng):
                entry.exptime = exptime
                entry.illumination_e = rate * (1.0 + float(rng.normal(0.0, 3e-4)))
                plan.append((entry, i, None))
            t = _after(camera, [p[0] for p in plan], t, 10.0)
    for i in order:
        for exptime in camera.dark_exptimes:
            for entry in _run_block(camera, _Block("dark", n_dark, exptime, None), t, rng):
                plan.append((entry, i, None))
            t = _after(camera, [p[0] for p in plan], t)
        for entry in _run_block(camera, _Block("bias", n_bias, 0.0, None), t, rng):
            entry.exptime = cmos.bias_exptime_s
            plan.append((entry, i, None))
        t = _after(camera, [p[0] for p in plan], t)
    return _number_nina(camera, cmos, plan)


def _split(total: int, parts: int) -> list[int]:
    if parts <= 0:
        return []
    return [total // parts + (1 if k < total % parts else 0) for k in range(parts)]


def _number_nina(camera: CameraModel, cmos: CmosModel,
                 plan: list[tuple[_Entry, int, tuple[int, int, int, int] | None]]
                 ) -> list[PlannedFrame]:
    frames: list[PlannedFrame] = []
    counters: dict[str, int] = {}
    for index, (entry, setting, window) in enumerate(plan):
        block = entry.block
        kind = NINA_TYPES[block.kind]
        counters[kind] = counters.get(kind, 0) + 1
        gain = cmos.settings[setting].gain
        stamp = entry.start.strftime("%Y-%m-%d_%H-%M-%S")
        name = (f"{stamp}_{kind}_{block.filter or 'NoFilter'}_{cmos.set_temp_c:.2f}_"
                f"{entry.exptime:.2f}s_G{gain}_{counters[kind]:04d}.fits")
        frames.append(PlannedFrame(
            index=index, kind=block.kind, filename=name, start=entry.start,
            exptime=entry.exptime, darktime=entry.exptime, filter=block.filter,
            object_name=camera.target.name if block.kind == "science" else "",
            frame_number=counters[kind], illumination_e=entry.illumination_e,
            airmass=entry.airmass, setting=setting, window=window))
    return frames
