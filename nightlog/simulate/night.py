"""Simulating a whole night: plan it, draw the detector, expose and write every frame."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nightlog.errors import ConfigurationError
from nightlog.simulate.cameras import CameraModel, Geometry, camera_by_name, scaled_geometry
from nightlog.simulate.detector import DetectorMaps, build_detector
from nightlog.simulate.fitsfile import write_uint16_fits
from nightlog.simulate.headers import build_header
from nightlog.simulate.night_cmos import write_cmos_night
from nightlog.simulate.night_mef import write_mef_night
from nightlog.simulate.physics import ExposedFrame, expose
from nightlog.simulate.schedule import PlannedFrame, plan_night
from nightlog.simulate.skytime import julian_date
from nightlog.simulate.starfield import draw_star_field
from nightlog.simulate.truth import FORMAT, VERSION, cosmic_ray_key, write_truth

__all__ = ["SimulatedNight", "simulate_night"]

_IMAGETYP = {"lfc": {"bias": "BIAS", "dark": "DARK", "flat": "FLATFIELD", "science": "OBJECT"},
             "maximdl": {"bias": "BIAS", "dark": "DARK", "flat": "FLAT", "science": "LIGHT"}}
# Independent random streams, so that changing the number of frames of one kind
# does not change the detector or the star field.
_STREAM_PLAN, _STREAM_DETECTOR, _STREAM_STARS, _STREAM_FRAME = 1, 2, 3, 4


@dataclass(frozen=True)
class SimulatedNight:
    """What :func:`simulate_night` wrote.

    Attributes
    ----------
    outdir : pathlib.Path
    camera : str
    night : datetime.date
        The date on which the night starts.
    files : list of pathlib.Path
        Raw frames in acquisition order.
    truth_path : pathlib.Path
        ``truth.json``.
    arrays_path : pathlib.Path
        ``truth.npz``.
    seed : int
    scale : float
    shape : tuple of int
        ``(ny, nx)`` of every frame; for the MEF camera the detector plane the
        four extensions tile, for the CMOS camera the full frame (the subarray
        frame is smaller).
    """

    outdir: Path
    camera: str
    night: dt.date
    files: list[Path]
    truth_path: Path
    arrays_path: Path
    seed: int = 0
    scale: float = 1.0
    shape: tuple[int, int] = field(default=(0, 0))


def _rng(seed: int, camera: CameraModel, stream: int, index: int = 0,
         *more: int) -> np.random.Generator:
    code = zlib.crc32(camera.name.encode("ascii"))
    return np.random.default_rng(np.random.SeedSequence(seed,
                                                        spawn_key=(code, stream, index, *more)))


def _at_set_temp(camera: CameraModel, set_temp: float | None) -> tuple[CameraModel, float]:
    """The camera at ``set_temp`` °C, and its dark current there over its reference's."""
    if set_temp is None:
        return camera, 1.0
    if camera.set_temp_c is None or camera.dark_doubling_k is None:
        raise ConfigurationError(f"camera {camera.name!r} does not model its dark current "
                                 "against the set temperature: leave set_temp out")
    if isinstance(set_temp, bool) or not isinstance(set_temp, int | float) \
            or not -150.0 <= set_temp <= 40.0:
        raise ConfigurationError(f"set_temp must be in °C between -150 and 40, not {set_temp!r}")
    factor = 2.0 ** ((float(set_temp) - camera.set_temp_c) / camera.dark_doubling_k)
    return dataclasses.replace(camera, set_temp_c=float(set_temp)), factor


def _counts(camera: CameraModel, given: tuple[int | None, ...]) -> tuple[int, int, int, int]:
    names = ("n_bias", "n_dark", "n_flat", "n_science")
    out: list[int] = []
    for name, value, default in zip(names, given, camera.default_counts, strict=True):
        if value is None:
            out.append(default)
            continue
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
            raise ConfigurationError(f"{name} must be a whole number >= 0, not {value!r}")
        out.append(int(value))
    return out[0], out[1], out[2], out[3]


def _night(camera: CameraModel, night: dt.date | None) -> dt.date:
    if night is None:
        return camera.reference_night
    if isinstance(night, dt.datetime):
        return night.date()
    if not isinstance(night, dt.date):
        raise ConfigurationError(f"night must be a date, not {night!r}")
    return night


def _file_entry(camera: CameraModel, frame: PlannedFrame, exposed: ExposedFrame,
                geom: Geometry) -> dict[str, Any]:
    cr = exposed.cosmic_rays
    return {
        "name": frame.filename,
        "index": frame.index,
        "kind": frame.kind,
        "imagetyp": _IMAGETYP[camera.header_style][frame.kind],
        "object": frame.object_name,
        "filter": frame.filter,
        "exptime": frame.exptime,
        "darktime": frame.darktime,
        "obs_time": frame.start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "jd": julian_date(frame.start),
        "airmass": round(frame.airmass, 4),
        "bias_offset_adu": round(exposed.bias_offset_adu, 4),
        "overscan_extra_adu": round(exposed.overscan_extra_adu, 4),
        "signal_e": round(exposed.signal_e, 3),
        "signal_adu": round(exposed.signal_e / camera.gain, 3),
        "cosmic_ray_events": cr.events,
        "cosmic_ray_pixels": int(cr.rows.size),
        "cosmic_ray_key": cosmic_ray_key(frame.index),
        "saturated_pixels": exposed.saturated,
        "fwhm_px": None if exposed.fwhm_px is None else round(exposed.fwhm_px, 5),
        "stars_unsaturated": exposed.stars_unsaturated,
    }


def _summary(camera: CameraModel, night: dt.date, seed: int, geom: Geometry,
             maps: DetectorMaps, files: list[dict[str, Any]]) -> dict[str, Any]:
    nxd = geom.nx_data
    clean_start = nxd + geom.leak_columns + 1
    dark_median = float(np.median(maps.dark_e))
    return {
        "format": FORMAT,
        "version": VERSION,
        "camera": camera.name,
        "description": camera.description,
        "night": night.isoformat(),
        "seed": seed,
        "scale": geom.scale,
        "shape": [geom.ny, geom.nx],
        "image_columns": nxd,
        "overscan_columns": geom.n_overscan,
        "leak_columns": geom.leak_columns,
        "image_section": f"[1:{nxd},1:{geom.ny}]",
        "clean_overscan_section": f"[{clean_start}:{geom.nx},1:{geom.ny}]",
        "gain_e_per_adu": camera.gain,
        "header_gain": camera.header_gain,
        "read_noise_e": camera.read_noise_e,
        "read_noise_adu": camera.read_noise_e / camera.gain,
        "bias_level_adu": camera.bias_level_adu,
        "bias_median_adu": float(np.median(maps.bias_adu[:, :nxd])),
        "overscan_offset_adu": camera.overscan_offset_adu,
        "dark_current_e_per_s": dark_median,
        "set_temp_c": camera.set_temp_c,
        "dark_doubling_k": camera.dark_doubling_k,
        "dark_current_adu_per_s": dark_median / camera.gain,
        "hot_pixel_threshold_e_per_s": camera.hot_threshold_e,
        "hot_pixels": int(np.count_nonzero(maps.hot)),
        "dead_pixels": int(np.count_nonzero(maps.dead)),
        "flat_levels_adu": {f.name: f.flat_level_adu for f in camera.filters},
        "flat_exptimes": {f.name: f.flat_exptime for f in camera.filters},
        "dark_exptimes": list(camera.dark_exptimes),
        "arrays": "truth.npz",
        **_illumination_truth(camera),
        "files": files,
    }


def _illumination_truth(camera: CameraModel) -> dict[str, Any]:
    """The night-sky illumination knobs, written only when one is set (a night
    without them keeps the truth it always had)."""
    if (camera.twilight_gradient, camera.sky_gradient, camera.dither_px) == (0.0, 0.02, 0.0):
        return {}
    return {"illumination": {"twilight_gradient": camera.twilight_gradient,
                             "sky_gradient": camera.sky_gradient,
                             "dither_px": camera.dither_px}}


def _raw_indices(mask: np.ndarray, nx: int) -> np.ndarray:
    rows, cols = np.nonzero(mask)
    return (rows.astype(np.int64) * nx + cols).astype(np.uint32)


def simulate_night(outdir: Path, *, camera: str = "lfc", night: dt.date | None = None,
                   scale: float = 1.0, seed: int = 0, n_bias: int | None = None,
                   n_dark: int | None = None, n_flat: int | None = None,
                   n_science: int | None = None, gain_factor: float = 1.0,
                   set_temp: float | None = None,
                   twilight_gradient: float = 0.0, sky_gradient: float | None = None,
                   dither_px: float = 0.0,
                   detector_seed: int | None = None,
                   progress: Callable[[int, int], None] | None = None) -> SimulatedNight:
    """Write a seeded, realistic night of raw frames of ``camera`` into ``outdir``.

    Parameters
    ----------
    outdir : pathlib.Path
        Folder for the frames and the truth (created; files of the same names
        are replaced).
    camera : {'lfc', 'aspen', 'mef', 'mosaic', 'cmos', 'cmos-colour'}
        ``mef``: an LCO Sinistro, four amplifiers in four image extensions;
        ``mosaic``: two CCDs of two amplifiers each in one MEF file;
        ``cmos``: a ZWO ASI1600MM Pro under N.I.N.A., two gain settings and a
        subarray frame; ``cmos-colour``: the same with the RGGB sensor
        (``docs/simulate.md``).
    night : datetime.date or None
        Date on which the night starts; ``None``: the camera's reference night
        (2016-01-15 for the LFC, 2018-08-22 for the Aspen, 2019-04-05 for the
        MEF and mosaic cameras, 2021-03-02 for the CMOS camera).
    scale : float
        Linear shrink factor in ``(0, 1]``; 1 writes full-size frames.
    seed : int
        Same seed, same bytes.
    n_bias, n_dark, n_flat, n_science : int or None
        Biases; darks per dark exposure time; flats per filter; science frames.
        ``None``: the camera's defaults (LFC 6/5/5/8, Aspen 6/5/6/8, MEF,
        mosaic and CMOS 5/3/5/6). For the CMOS camera biases, darks and flats are per gain
        setting, and one subarray science frame follows the science frames.
    gain_factor : float
        The night's true gain is the camera's times this (> 0): a detector whose
        controller changed. Header keywords stay the camera's (a GAIN keyword
        says what it always said); the truth records the gain used.
    set_temp : float or None
        CCD set temperature of the night, °C (the Aspen only: ``SET-TEMP``); the
        dark current is the camera's at its reference set point times
        ``2^((set_temp - reference) / T_d)`` with the camera's doubling temperature
        ``T_d`` (both in the truth). The detector (its hot pixels, its pattern) is
        the same at every temperature; the frames' noise is drawn afresh for each
        set temperature and night. ``None``: the camera's reference set point.
    twilight_gradient : float
        The flats' light is multiplied by ``1 + twilight_gradient * x`` (``x`` from
        -1 at the first image column to 1 at the last): the gradient of a twilight
        sky that the night sky does not share, which a night-sky illumination
        model corrects. 0 (default): none. LFC and Aspen only.
    sky_gradient : float or None
        Largest random gradient of each science frame's sky (fraction from edge
        to centre, in each axis); ``None``: the camera's 0.02. LFC and Aspen only.
    dither_px : float
        Rms pointing offset between science frames in full-size pixels, besides
        the guiding jitter (0: none). LFC and Aspen only.
    detector_seed : int or None
        Seed of the detector alone (bias structure, dark current, flat field, bad
        pixels); ``None``: ``seed``. The same detector on several nights: one
        ``detector_seed``, a ``seed`` per night (the LFC and the Aspen).
    progress : callable or None
        Called as ``progress(done, total)`` before the first and after each frame.

    Returns
    -------
    SimulatedNight

    Raises
    ------
    nightlog.errors.ConfigurationError
        Unknown camera, a scale outside ``(0, 1]``, a negative count, a bad night,
        or a set temperature for a camera whose dark current is not modelled
        against it.
    nightlog.errors.StoreError
        A file cannot be written.
    """
    model = camera_by_name(camera)
    if not (isinstance(gain_factor, int | float) and gain_factor > 0):
        raise ConfigurationError(f"gain_factor must be > 0, not {gain_factor!r}")
    if gain_factor != 1.0:
        model = dataclasses.replace(model, gain=model.gain * gain_factor,
                                    header_gain=model.header_gain or model.gain)
    model, dark_factor = _at_set_temp(model, set_temp)
    for knob, value in (("twilight_gradient", twilight_gradient), ("dither_px", dither_px),
                        ("sky_gradient", sky_gradient)):
        if value is not None and not (isinstance(value, int | float) and math.isfinite(value)
                                      and (knob == "twilight_gradient" or value >= 0)):
            raise ConfigurationError(f"{knob} must be a finite number"
                                     + ("" if knob == "twilight_gradient" else " >= 0")
                                     + f", not {value!r}")
    if twilight_gradient or dither_px or sky_gradient is not None:
        model = dataclasses.replace(
            model, twilight_gradient=float(twilight_gradient), dither_px=float(dither_px),
            sky_gradient=model.sky_gradient if sky_gradient is None else float(sky_gradient))
    geom = scaled_geometry(model, scale)  # also validates the scale of the new cameras
    night_date = _night(model, night)
    counts = _counts(model, (n_bias, n_dark, n_flat, n_science))
    try:
        seed_value = int(seed)
    except (TypeError, ValueError):
        raise ConfigurationError(f"seed must be an integer, not {seed!r}") from None
    if seed_value < 0:
        raise ConfigurationError(f"seed must be >= 0, not {seed!r}")
    outdir = Path(outdir)

    if model.header_style in ("sinistro", "mosaic", "nina"):
        write = write_cmos_night if model.header_style == "nina" else write_mef_night

        def rng_for(stream: int, index: int) -> np.random.Generator:
            return _rng(seed_value, model, stream, index)

        paths, truth_path, arrays_path, shape = write(
            outdir, model, night_date, counts, geom.scale, seed_value, rng_for, progress)
        return SimulatedNight(outdir=outdir, camera=model.name, night=night_date, files=paths,
                              truth_path=truth_path, arrays_path=arrays_path, seed=seed_value,
                              scale=geom.scale, shape=shape)

    frames = plan_night(model, night_date, counts, _rng(seed_value, model, _STREAM_PLAN))
    maps = build_detector(model, geom, _rng(seed_value if detector_seed is None
                                            else int(detector_seed), model, _STREAM_DETECTOR))
    if dark_factor != 1.0:
        dark_e = maps.dark_e * np.float32(dark_factor)
        maps = dataclasses.replace(maps, dark_e=dark_e,
                                   hot=dark_e > np.float32(model.hot_threshold_e))
    fresh = (() if set_temp is None
             else (round(float(set_temp) * 100) + 100_000, night_date.toordinal()))
    stars = draw_star_field(model, geom, _rng(seed_value, model, _STREAM_STARS))
    if progress is not None:
        progress(0, len(frames))
    files: list[Path] = []
    entries: list[dict[str, Any]] = []
    cosmic: dict[str, np.ndarray] = {}
    for frame in frames:
        rng = _rng(seed_value, model, _STREAM_FRAME, frame.index, *fresh)
        exposed = expose(frame, model, geom, maps, stars, rng)
        cards = build_header(model, geom, frame, exposed.data, rng)
        files.append(write_uint16_fits(outdir / frame.filename, cards, exposed.data))
        entries.append(_file_entry(model, frame, exposed, geom))
        cr = exposed.cosmic_rays
        cosmic[cosmic_ray_key(frame.index)] = (cr.rows * geom.nx + cr.cols).astype(np.uint32)
        if progress is not None:
            progress(len(files), len(frames))

    arrays: dict[str, np.ndarray] = {
        "bias_adu": maps.bias_adu,
        "dark_current_e": maps.dark_e,
        "flat": maps.flat,
        "hot_pixels": _raw_indices(maps.hot, geom.nx),
        "dead_pixels": _raw_indices(maps.dead, geom.nx),
        **cosmic,
    }
    truth_path, arrays_path = write_truth(
        outdir, _summary(model, night_date, seed_value, geom, maps, entries), arrays)
    return SimulatedNight(outdir=outdir, camera=model.name, night=night_date, files=files,
                          truth_path=truth_path, arrays_path=arrays_path, seed=seed_value,
                          scale=geom.scale, shape=geom.shape)
