"""Writing a night of the CMOS camera (N.I.N.A.), and its truth.

The truth format is described in ``docs/simulate.md``; every map and mask
indexes the full frame, also for the subarray frame (its window is recorded).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from nightlog.simulate.cameras import CameraModel, scaled_geometry
from nightlog.simulate.cmos_detector import CmosMaps, bayer_response, build_cmos_maps
from nightlog.simulate.cmos_headers import nina_cards
from nightlog.simulate.cmos_physics import CmosExposure, expose_cmos
from nightlog.simulate.detector import build_detector
from nightlog.simulate.fitsfile import write_uint16_fits
from nightlog.simulate.night_plans import NINA_TYPES, plan_nina_night
from nightlog.simulate.schedule import PlannedFrame
from nightlog.simulate.skytime import julian_date
from nightlog.simulate.starfield import draw_star_field
from nightlog.simulate.truth import FORMAT, VERSION, cosmic_ray_key, write_truth
from nightlog.simulate.zwo import CMOS_MODELS, CmosModel, adu_scale, e_per_file_adu

__all__ = ["write_cmos_night"]

RngFor = Callable[[int, int], np.random.Generator]
_STREAM_PLAN, _STREAM_DETECTOR, _STREAM_STARS, _STREAM_FRAME = 1, 2, 3, 4


def _entry(cmos: CmosModel, frame: PlannedFrame, exposed: CmosExposure, start: dt.datetime,
           ccd_temp: float, nx: int) -> tuple[dict[str, Any], np.ndarray]:
    assert frame.setting is not None
    setting = cmos.settings[frame.setting]
    cr = exposed.cosmic_rays
    rows, cols = cr.rows, cr.cols
    if frame.window is not None:
        x0, y0, wx, wy = frame.window
        inside = (rows >= y0) & (rows < y0 + wy) & (cols >= x0) & (cols < x0 + wx)
        rows, cols = rows[inside], cols[inside]
    entry = {
        "name": frame.filename,
        "index": frame.index,
        "kind": frame.kind,
        "imagetyp": NINA_TYPES[frame.kind],
        "object": frame.object_name,
        "filter": frame.filter,
        "exptime": frame.exptime,
        "darktime": frame.darktime,
        "obs_time": frame.start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "date_obs": start.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3],
        "jd": julian_date(start),
        "airmass": round(frame.airmass, 4),
        "setting": frame.setting,
        "gain_setting": setting.gain,
        "offset_setting": setting.offset,
        "ccd_temp_c": round(ccd_temp, 1),
        "window": list(frame.window) if frame.window is not None else None,
        "shape": list(exposed.data.shape),
        "signal_e": round(exposed.signal_e, 3),
        "signal_adu": round(exposed.signal_e / e_per_file_adu(setting.gain, cmos.adc_bits), 3),
        "glow_corner_e": round(exposed.glow_corner_e, 4),
        "cosmic_ray_events": cr.events,
        "cosmic_ray_pixels": int(rows.size),
        "cosmic_ray_key": cosmic_ray_key(frame.index),
        "saturated_pixels": exposed.saturated,
    }
    return entry, (rows * nx + cols).astype(np.uint32)


def _settings_truth(cmos: CmosModel, cmaps: CmosMaps) -> list[dict[str, Any]]:
    scale = adu_scale(cmos.adc_bits)
    out = []
    for s in cmos.settings:
        rn = cmaps.read_noise_e(s)
        total = cmaps.total_noise_e(s)
        per_adu = e_per_file_adu(s.gain, cmos.adc_bits)
        out.append({
            "gain": s.gain, "offset": s.offset,
            "egain_e_per_native_adu": s.egain, "e_per_file_adu": per_adu,
            "read_noise_e": s.read_noise_e,
            "read_noise_file_adu": s.read_noise_e / per_adu,
            "read_noise_map_e": {"median": float(np.median(rn)), "mean": float(rn.mean()),
                                 "p99": float(np.percentile(rn, 99)),
                                 "p99_with_telegraph": float(np.percentile(total, 99)),
                                 "max_with_telegraph": float(total.max())},
            "offset_level_file_adu": float(scale * (s.offset
                                                    + np.median(cmaps.pattern_native))),
            "science_exptime": s.science_exptime,
            "read_noise_key": f"read_noise_e_G{s.gain}",
            "total_noise_key": f"total_noise_e_G{s.gain}",
            "offset_key": f"offset_file_adu_G{s.gain}",
        })
    return out


def write_cmos_night(outdir: Path, camera: CameraModel, night: dt.date,
                     counts: tuple[int, int, int, int], scale: float, seed: int,
                     rng_for: RngFor, progress: Callable[[int, int], None] | None
                     ) -> tuple[list[Path], Path, Path, tuple[int, int]]:
    """Plan, expose and write a night of the CMOS camera, then its truth.

    Parameters are those of :func:`nightlog.simulate.night_mef.write_mef_night`;
    ``counts`` are biases per setting, darks per exposure and setting, flats per
    filter and setting, science frames (plus one subarray frame).

    Returns
    -------
    tuple
        The files, ``truth.json``, ``truth.npz`` and the full-frame shape.
    """
    cmos = CMOS_MODELS[camera.name]
    # No overscan on a CMOS sensor.
    geom = dataclasses.replace(scaled_geometry(camera, scale), n_overscan=0, leak_columns=0)
    shape = geom.shape
    frames = plan_nina_night(camera, cmos, night, counts, shape, rng_for(_STREAM_PLAN, 0))
    detector_rng = rng_for(_STREAM_DETECTOR, 0)
    maps = build_detector(camera, geom, detector_rng)
    if cmos.bayer is not None:
        # The colour filters are part of the response to light (the dead-pixel mask is
        # the sensor's own).
        maps = dataclasses.replace(maps, flat=maps.flat * bayer_response(cmos, shape))
    cmaps = build_cmos_maps(cmos, shape, geom.scale, detector_rng)
    stars = draw_star_field(camera, geom, rng_for(_STREAM_STARS, 0))
    utc_offset = round(camera.longitude_deg / 15.0)
    if progress is not None:
        progress(0, len(frames))
    files: list[Path] = []
    entries: list[dict[str, Any]] = []
    arrays: dict[str, np.ndarray] = {}
    for frame in frames:
        assert frame.setting is not None
        rng = rng_for(_STREAM_FRAME, frame.index)
        exposed = expose_cmos(frame, camera, geom, cmos, cmos.settings[frame.setting], maps,
                              cmaps, stars, rng)
        start = frame.start + dt.timedelta(milliseconds=int(rng.integers(0, 1000)))
        ccd_temp = cmos.set_temp_c + float(rng.normal(0.0, 0.05))
        cards = nina_cards(cmos, frame, exposed.data.shape, start, utc_offset, ccd_temp)
        files.append(write_uint16_fits(outdir / frame.filename, cards, exposed.data))
        entry, cosmic = _entry(cmos, frame, exposed, start, ccd_temp, shape[1])
        entries.append(entry)
        arrays[cosmic_ray_key(frame.index)] = cosmic
        if progress is not None:
            progress(len(files), len(frames))
    scale_adu = adu_scale(cmos.adc_bits)
    for s in cmos.settings:
        arrays[f"read_noise_e_G{s.gain}"] = cmaps.read_noise_e(s)
        arrays[f"total_noise_e_G{s.gain}"] = cmaps.total_noise_e(s)
        arrays[f"offset_file_adu_G{s.gain}"] = (
            (cmaps.pattern_native + np.float32(s.offset)) * np.float32(scale_adu))
    hot = np.nonzero(maps.hot.reshape(-1))[0].astype(np.uint32)
    dead = np.nonzero(maps.dead.reshape(-1))[0].astype(np.uint32)
    arrays.update({"dark_current_e": maps.dark_e, "flat": maps.flat, "hot_pixels": hot,
                   "dead_pixels": dead,
                   "high_noise_pixels": cmaps.rts_index.astype(np.uint32),
                   "high_noise_step_e": cmaps.rts_amplitude_e,
                   "glow_template": cmaps.glow_template})
    roi = next((f for f in frames if f.window is not None), None)
    summary = {
        "format": FORMAT, "version": VERSION, "camera": camera.name,
        "description": camera.description, "night": night.isoformat(), "seed": seed,
        "scale": geom.scale, "layout": "cmos",
        "shape": list(shape),
        "instrument": cmos.instrument,
        "bayer": None if cmos.bayer is None else {
            "pattern": cmos.bayer, "xbayroff": 0, "ybayroff": 0,
            "response_rgb": list(cmos.bayer_response)},
        "adc_bits": cmos.adc_bits, "adu_scale": scale_adu,
        "settings": _settings_truth(cmos, cmaps),
        "main_setting": cmos.main_setting,
        "offset_pattern_native": {
            "column_rms": cmos.column_rms_native, "row_rms": cmos.row_rms_native,
            "pixel_rms": cmos.pixel_rms_native, "row_noise_per_frame": cmos.row_noise_native},
        "high_noise_pixels": {
            "count": int(cmaps.rts_index.size), "kind": "random telegraph, two levels",
            "step_e": [float(cmaps.rts_amplitude_e.min()), float(cmaps.rts_amplitude_e.max())],
            "state_probability": 0.5},
        "glow": {
            "corner": "top-right", "row": 0, "column": shape[1] - 1,
            "corner_e_at_reference": cmos.glow_corner_e,
            "reference_exptime": cmos.glow_reference_s, "exponent": cmos.glow_exponent,
            "scale_px": max(cmos.glow_scale_px * geom.scale, 2.0),
            "model": "corner_e * exp(-distance / scale_px) * (t / reference) ** exponent"},
        "subarray": None if roi is None or roi.window is None else {
            "file": roi.filename, "x0": roi.window[0], "y0": roi.window[1],
            "nx": roi.window[2], "ny": roi.window[3], "xorgsubf": roi.window[0],
            "yorgsubf": roi.window[1], "binning": 1},
        "bias_exptime": cmos.bias_exptime_s,
        "dark_current_e_per_s": float(np.median(maps.dark_e)),
        "hot_pixel_threshold_e_per_s": camera.hot_threshold_e,
        "hot_pixels": int(hot.size), "dead_pixels": int(dead.size),
        "flat_levels_adu": {f.name: f.flat_level_adu for f in camera.filters},
        "dark_exptimes": list(camera.dark_exptimes),
        "arrays": "truth.npz",
        "files": entries,
    }
    truth_path, arrays_path = write_truth(outdir, summary, arrays)
    return files, truth_path, arrays_path, shape
