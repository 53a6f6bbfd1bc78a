"""The plan of a night: which frames, in what order, at what times, under what names.

Each camera follows its reference night. The LFC takes its biases in the
afternoon (the first at 23:53:30 UT), then darks, then dome flats in two filters
(from 04:17:28 UT), then science frames through the night. The Aspen takes
twilight flats after sunset (from 01:25:17 UT with auto-exposure), science
through the night, then darks and biases in the morning (dark at 10:42:41 UT).

On another night the reference times move with the Sun: each block keeps its
offset from sunset (evening blocks) or sunrise (morning blocks) in the
reference night, so a winter night starts its flats earlier than a summer one.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from nightlog.simulate.cameras import CameraModel
from nightlog.simulate.skytime import (
    altitude_azimuth,
    julian_date,
    local_sidereal_hours,
    sun_crossing,
)

__all__ = ["FrameKind", "PlannedFrame", "plan_night"]

FrameKind = Literal["bias", "dark", "flat", "science"]

_SUNSET_ALT = -0.833  # upper limb at the horizon, with refraction
_DUSK_ALT = -15.0  # science starts between nautical and astronomical dusk


@dataclass(frozen=True, slots=True)
class PlannedFrame:
    """One exposure of the night.

    Attributes
    ----------
    index : int
        Position in acquisition order, from 0.
    kind : {'bias', 'dark', 'flat', 'science'}
    filename : str
        File name the camera would give it.
    start : datetime.datetime
        Exposure start, UTC (whole seconds, as the cameras write it).
    exptime : float
        Shutter-open time in seconds as the header records it.
    darktime : float
        Time the pixels integrate dark current, seconds.
    filter : str or None
        Filter in the beam (also for biases and darks on the LFC, whose wheel
        always holds one); ``None`` when the camera writes no filter.
    object_name : str
    frame_number : int
        The camera's running frame number (LFC ``FRAME``) or the sequence
        counter of the file name (Aspen ``C###``).
    sequence : int
        The set number of the file name (Aspen ``S###``); ``1`` on the LFC.
    illumination_e : float
        Light reaching a pixel of unit response, electrons per second: the
        lamp or twilight sky for flats, the night sky for science, 0 otherwise.
    airmass : float
        Airmass of the pointing (1 for calibrations).
    setting : int or None
        CMOS camera: index of the gain setting (``zwo.CmosModel.settings``).
    window : tuple of int or None
        CMOS subarray frame: ``(x0, y0, nx, ny)`` of the window in full-frame
        pixels (0-based origin); ``None``: the full frame.
    """

    index: int
    kind: FrameKind
    filename: str
    start: dt.datetime
    exptime: float
    darktime: float
    filter: str | None
    object_name: str
    frame_number: int
    sequence: int = 1
    illumination_e: float = 0.0
    airmass: float = 1.0
    setting: int | None = None
    window: tuple[int, int, int, int] | None = None


@dataclass(slots=True)
class _Block:
    kind: FrameKind
    count: int
    exptime: float
    filter: str | None
    sequence: int = 1


@dataclass(slots=True)
class _Entry:
    block: _Block
    start: dt.datetime
    exptime: float
    illumination_e: float = 0.0
    airmass: float = 1.0


def _at(night: dt.date, day_offset: int, hms: str) -> dt.datetime:
    h, m, s = (int(x) for x in hms.split(":"))
    return dt.datetime(night.year, night.month, night.day, h, m, s,
                       tzinfo=dt.UTC) + dt.timedelta(days=day_offset)


def _sun_events(camera: CameraModel, night: dt.date) -> dict[str, dt.datetime]:
    """Sunset, dusk, dawn and sunrise of the night starting on ``night`` (local noon)."""
    noon = dt.datetime(night.year, night.month, night.day, 12, tzinfo=dt.UTC) \
        - dt.timedelta(hours=camera.longitude_deg / 15.0)
    lon, lat = camera.longitude_deg, camera.latitude_deg
    sunset = sun_crossing(noon, _SUNSET_ALT, lon, lat, rising=False)
    dusk = sun_crossing(sunset, _DUSK_ALT, lon, lat, rising=False)
    dawn = sun_crossing(dusk, _DUSK_ALT, lon, lat, rising=True)
    sunrise = sun_crossing(dawn, _SUNSET_ALT, lon, lat, rising=True)
    return {"sunset": sunset, "dusk": dusk, "dawn": dawn, "sunrise": sunrise}


def _exptime_jitter(camera: CameraModel, nominal: float, rng: np.random.Generator) -> float:
    """Shutter timing as recorded: long LFC exposures read 70.001, 70.011, 300.062 s."""
    if nominal >= 60.0 and camera.exptime_jitter_s > 0:
        return round(nominal + float(rng.uniform(0.0, camera.exptime_jitter_s)), 3)
    return nominal


def _next_start(camera: CameraModel, entry: _Entry, rng: np.random.Generator) -> dt.datetime:
    overhead = camera.readout_s + float(rng.uniform(0.0, 1.5))
    return entry.start + dt.timedelta(seconds=round(entry.exptime + overhead))


def plan_night(camera: CameraModel, night: dt.date, counts: tuple[int, int, int, int],
               rng: np.random.Generator) -> list[PlannedFrame]:
    """Plan every exposure of ``night`` for ``camera`` in acquisition order.

    Parameters
    ----------
    camera : CameraModel
    night : datetime.date
        The date on which the night starts (local noon to noon).
    counts : tuple of int
        Biases, darks per dark exposure time, flats per filter, science frames.
    rng : numpy.random.Generator
        Draws the timing jitter (shutter, overheads) and the lamp and sky drifts.

    Returns
    -------
    list of PlannedFrame
        Starts strictly increasing.

    Raises
    ------
    ValueError
        The Sun never sets or rises at the site on that date (not at the two
        simulated sites).
    """
    ref_events = _sun_events(camera, camera.reference_night)
    events = ref_events if night == camera.reference_night else _sun_events(camera, night)

    def anchor(event: str, day: int, hms: str) -> dt.datetime:
        # Same offset from the Sun as in the reference night.
        return events[event] + (_at(camera.reference_night, day, hms) - ref_events[event])

    if camera.name == "lfc":
        entries = _plan_lfc(camera, counts, events, anchor("sunset", 0, "23:53:30"),
                            anchor("sunset", 1, "04:17:28"), rng)
    else:
        entries = _plan_aspen(camera, counts, events, anchor("sunset", 1, "01:25:17"),
                              anchor("sunrise", 1, "10:42:41"), rng)
    return _number(camera, entries)


def _run_block(camera: CameraModel, block: _Block, start: dt.datetime,
               rng: np.random.Generator) -> list[_Entry]:
    """Bias and dark blocks: identical frames, one after the other."""
    out: list[_Entry] = []
    t = start
    for _ in range(block.count):
        exptime = 0.0 if block.kind == "bias" else _exptime_jitter(camera, block.exptime, rng)
        out.append(_Entry(block, t, exptime))
        t = _next_start(camera, out[-1], rng)
    return out


def _dome_flats(camera: CameraModel, block: _Block, start: dt.datetime,
                rng: np.random.Generator) -> list[_Entry]:
    """Lamp flats at a fixed exposure; the lamp drifts by a few 0.01 % per frame."""
    model = camera.filter_model(block.filter or "")
    rate = model.flat_level_adu * camera.gain / model.flat_exptime
    out: list[_Entry] = []
    t = start
    for _ in range(block.count):
        rate *= 1.0 + float(rng.normal(0.0, 4e-4))
        out.append(_Entry(block, t, _exptime_jitter(camera, block.exptime, rng), rate))
        t = _next_start(camera, out[-1], rng)
    return out


def _twilight_flats(camera: CameraModel, block: _Block, start: dt.datetime, t0: dt.datetime,
                    rng: np.random.Generator) -> list[_Entry]:
    """Auto-exposure sky flats: each exposure is set from the previous frame's level.

    The sky fades exponentially, so the level of each frame misses the target a
    little (the last measurement is always a frame old) and the first frames,
    already at the shortest exposure, are brighter than the target.
    """
    model = camera.filter_model(block.filter or "")
    target_e = model.flat_level_adu * camera.gain
    fade = camera.twilight_fade_s * float(rng.uniform(0.95, 1.05))
    rate0 = camera.twilight_start_level * target_e / model.flat_exptime

    def sky(t: dt.datetime) -> float:
        return rate0 * float(np.exp(-(t - t0).total_seconds() / fade))

    out: list[_Entry] = []
    t = start
    estimate = sky(start - dt.timedelta(seconds=30))  # ACP's test exposure before the first
    for _ in range(block.count):
        exptime = round(max(model.flat_exptime, target_e / estimate), 2)
        rate = sky(t) * (1.0 + float(rng.normal(0.0, 2e-3)))
        out.append(_Entry(block, t, exptime, rate))
        estimate = rate
        t = _next_start(camera, out[-1], rng)
    return out


def _after(camera: CameraModel, entries: list[_Entry], fallback: dt.datetime,
           gap_s: float = 0.0) -> dt.datetime:
    if not entries:
        return fallback
    last = entries[-1]
    return last.start + dt.timedelta(seconds=round(last.exptime + camera.readout_s + gap_s))


def _plan_lfc(camera: CameraModel, counts: tuple[int, int, int, int],
              events: dict[str, dt.datetime], bias_start: dt.datetime, flat_start: dt.datetime,
              rng: np.random.Generator) -> list[_Entry]:
    n_bias, n_dark, n_flat, n_science = counts
    entries = _run_block(camera, _Block("bias", n_bias, 0.0, camera.bias_filter), bias_start,
                         rng)
    t = _after(camera, entries, bias_start, 60.0)
    for exptime in camera.dark_exptimes:
        entries += _run_block(camera, _Block("dark", n_dark, exptime, camera.dark_filter), t,
                              rng)
        t = _after(camera, entries, t)
    t = max(t, flat_start)
    for model in camera.filters:
        entries += _dome_flats(camera, _Block("flat", n_flat, model.flat_exptime, model.name),
                               t, rng)
        t = _after(camera, entries, t, 60.0)
    entries += _science(camera, max(t, events["dusk"]), events["dawn"], n_science, rng)
    return entries


def _plan_aspen(camera: CameraModel, counts: tuple[int, int, int, int],
                events: dict[str, dt.datetime], flat_start: dt.datetime,
                dark_start: dt.datetime, rng: np.random.Generator) -> list[_Entry]:
    n_bias, n_dark, n_flat, n_science = counts
    entries: list[_Entry] = []
    t = flat_start
    for model in camera.filters:
        entries += _twilight_flats(camera, _Block("flat", n_flat, model.flat_exptime,
                                                  model.name), t, flat_start, rng)
        t = _after(camera, entries, t, 30.0)
    science_start = max(t, events["dusk"] - dt.timedelta(minutes=20))
    science_end = min(events["dawn"], dark_start - dt.timedelta(minutes=10))
    entries += _science(camera, science_start, science_end, n_science, rng)
    t = max(dark_start, _after(camera, entries, dark_start, 300.0))
    for seq, exptime in enumerate(camera.dark_exptimes, start=1):
        entries += _run_block(camera, _Block("dark", n_dark, exptime, None, seq), t, rng)
        t = _after(camera, entries, t)
    entries += _run_block(camera, _Block("bias", n_bias, 0.0, None), t, rng)
    return entries


def _science(camera: CameraModel, start: dt.datetime, end: dt.datetime, n: int,
             rng: np.random.Generator) -> list[_Entry]:
    """``n`` science frames spread evenly between ``start`` and ``end``.

    The sky is brighter early in the night (twilight and moonlight fading) and
    varies by a few per cent from frame to frame.
    """
    if n <= 0:
        return []
    cadence = camera.science_exptime + camera.readout_s + 2.0
    span = max((end - start).total_seconds() - cadence, cadence * n)
    step = span / n
    target = camera.target
    out: list[_Entry] = []
    for i in range(n):
        name = camera.science_filters[i % len(camera.science_filters)]
        when = start + dt.timedelta(seconds=round(i * step + float(rng.uniform(0, 30))))
        jd = julian_date(when)
        ha = local_sidereal_hours(jd, camera.longitude_deg) - target.ra_deg / 15.0
        alt, _ = altitude_azimuth(ha, target.dec_deg, camera.latitude_deg)
        airmass = 1.0 / math.sin(math.radians(max(alt, 5.0)))
        hours_in = (when - start).total_seconds() / 3600.0
        sky = camera.filter_model(name).sky_rate_e * (1.0 + 0.3 * math.exp(-hours_in / 1.5)) \
            * (1.0 + 0.1 * (airmass - 1.0)) * float(rng.uniform(0.97, 1.03))
        out.append(_Entry(_Block("science", 1, camera.science_exptime, name), when,
                          _exptime_jitter(camera, camera.science_exptime, rng), sky, airmass))
    return out


def _number(camera: CameraModel, entries: list[_Entry]) -> list[PlannedFrame]:
    """Give each entry its frame number and file name, in acquisition order."""
    frames: list[PlannedFrame] = []
    counters: dict[tuple[str, str | None, int], int] = {}
    for index, entry in enumerate(entries):
        block = entry.block
        key = (block.kind, block.filter, block.sequence)
        counters[key] = counters.get(key, 0) + 1
        if camera.header_style == "lfc":
            number = index + 1
            filename = f"ccd.{number:03d}.0.fits"
            # DARKTIME counts the readout-related extra integration (0.120 s on a bias).
            darktime = 0.120 if block.kind == "bias" else entry.exptime + camera.darktime_overhead_s
        else:
            number = counters[key]
            filename = _maximdl_name(camera, block, number)
            darktime = entry.exptime
        frames.append(PlannedFrame(
            index=index, kind=block.kind, filename=filename, start=entry.start,
            exptime=entry.exptime, darktime=round(darktime, 3), filter=block.filter,
            object_name=_object_name(camera, block), frame_number=number,
            sequence=block.sequence, illumination_e=entry.illumination_e,
            airmass=entry.airmass))
    return frames


def _object_name(camera: CameraModel, block: _Block) -> str:
    if block.kind == "science":
        return camera.target.name
    if camera.header_style == "lfc" and block.kind == "flat" and block.filter:
        return "flat_" + block.filter.rstrip("'")
    return block.kind


def _maximdl_name(camera: CameraModel, block: _Block, number: int) -> str:
    """ACP file names: ``Bias-S001-R001-C001-NoFilt.fit``, ``AutoFlat-PANoRot-r-Bin1-001.fit``."""
    if block.kind == "flat":
        return f"AutoFlat-PANoRot-{block.filter}-Bin1-{number:03d}.fit"
    stem = {"bias": "Bias", "dark": "Dark", "science": camera.target.name}[block.kind]
    filt = block.filter or "NoFilt"
    return f"{stem}-S{block.sequence:03d}-R001-C{number:03d}-{filt}.fit"
