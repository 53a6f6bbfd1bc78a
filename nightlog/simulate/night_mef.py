"""Writing a night of the four-amplifier MEF camera, and its truth.

The same pixels make the night of the ``mosaic`` camera (two CCDs of two
amplifiers, :mod:`nightlog.simulate.mosaic_headers`): its own headers, files named
as Gemini South names them (``S20190405S0001.fits``), and per-CCD truth.

The truth format is described in ``docs/simulate.md``; masks and maps index the
detector plane (the mosaic the four DETSECs tile, ``2n × 2n``), the fixed bias
and the row drift each amplifier's raw orientation.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from nightlog.simulate import mosaic_headers
from nightlog.simulate.cameras import CameraModel, Geometry
from nightlog.simulate.detector import build_detector
from nightlog.simulate.fitsfile import write_uint16_mef
from nightlog.simulate.mef_headers import OBSTYPES, extension_cards, primary_cards
from nightlog.simulate.mef_physics import MefExposure, build_amp_bias, expose_mef
from nightlog.simulate.night_plans import plan_lco_night
from nightlog.simulate.schedule import PlannedFrame
from nightlog.simulate.sinistro import AMPLIFIERS, CROSSTALK, FULL_WELL_E, MefLayout, mef_layout
from nightlog.simulate.skytime import julian_date
from nightlog.simulate.starfield import draw_star_field
from nightlog.simulate.truth import FORMAT, VERSION, cosmic_ray_key, write_truth

__all__ = ["row_drift_key", "write_mef_night"]

RngFor = Callable[[int, int], np.random.Generator]
_STREAM_PLAN, _STREAM_DETECTOR, _STREAM_STARS, _STREAM_FRAME = 1, 2, 3, 4
_QUADRANTS = ("lower left", "lower right", "upper right", "upper left")


def row_drift_key(index: int) -> str:
    """Key in ``truth.npz`` of the per-row bias drift ``(4, rows)`` of frame ``index``."""
    return f"row_drift_{index:04d}"


def _entry(frame: PlannedFrame, exposed: MefExposure, mosaic: bool) -> dict[str, Any]:
    cr = exposed.cosmic_rays
    return {
        "name": frame.filename,
        "index": frame.index,
        "kind": frame.kind,
        "obstype": (mosaic_headers.OBSTYPES if mosaic else OBSTYPES)[frame.kind],
        "object": frame.object_name,
        "filter": frame.filter,
        "exptime": frame.exptime,
        "darktime": frame.darktime,
        "obs_time": frame.start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "jd": julian_date(frame.start),
        "airmass": round(frame.airmass, 4),
        "signal_e": round(exposed.signal_e, 3),
        "signal_adu_per_amp": [round(exposed.signal_e / a.gain, 3) for a in AMPLIFIERS],
        "amps": [{"extver": a.extver, "bias_offset_adu": round(o, 4),
                  "drift_ramp_adu": round(r, 4), "drift_settle_adu": round(s, 4)}
                 for a, o, r, s in zip(AMPLIFIERS, exposed.offsets_adu, exposed.ramps_adu,
                                       exposed.settle_adu, strict=True)],
        "row_drift_key": row_drift_key(frame.index),
        "cosmic_ray_events": cr.events,
        "cosmic_ray_pixels": int(cr.rows.size),
        "cosmic_ray_key": cosmic_ray_key(frame.index),
        "saturated_pixels": exposed.saturated,
    }


def write_mef_night(outdir: Path, camera: CameraModel, night: dt.date,
                    counts: tuple[int, int, int, int], scale: float, seed: int,
                    rng_for: RngFor, progress: Callable[[int, int], None] | None
                    ) -> tuple[list[Path], Path, Path, tuple[int, int]]:
    """Plan, expose and write a night of the MEF camera, then its truth.

    Parameters
    ----------
    outdir : pathlib.Path
    camera : CameraModel
        ``nightlog.simulate.cameras.SINISTRO`` or ``MOSAIC``.
    night : datetime.date
    counts : tuple of int
        Biases, darks per exposure time, sky flats per filter, science frames.
    scale : float
    seed : int
    rng_for : callable
        ``rng_for(stream, index)``: the generator of one random stream.
    progress : callable or None

    Returns
    -------
    tuple
        The files, ``truth.json``, ``truth.npz`` and the detector-plane shape.

    Raises
    ------
    nightlog.errors.ConfigurationError
        A scale outside ``(0, 1]``.
    nightlog.errors.StoreError
        A file cannot be written.
    """
    layout = mef_layout(scale)
    ny, nx = layout.detector_shape
    geom = Geometry(scale=layout.scale, ny=ny, nx_data=nx, n_overscan=0, leak_columns=0)
    mosaic = camera.header_style == "mosaic"
    frames = plan_lco_night(camera, night, counts, rng_for(_STREAM_PLAN, 0))
    if mosaic:
        day = night.strftime("%Y%m%d")
        frames = [dataclasses.replace(f, filename=f"S{day}S{f.index + 1:04d}.fits")
                  for f in frames]
    detector_rng = rng_for(_STREAM_DETECTOR, 0)
    maps = build_detector(camera, geom, detector_rng)
    amp_bias = build_amp_bias(layout, detector_rng)
    stars = draw_star_field(camera, geom, rng_for(_STREAM_STARS, 0))
    if progress is not None:
        progress(0, len(frames))
    files: list[Path] = []
    entries: list[dict[str, Any]] = []
    arrays: dict[str, np.ndarray] = {}
    for frame in frames:
        exposed = expose_mef(frame, camera, geom, layout, maps, amp_bias, stars,
                             rng_for(_STREAM_FRAME, frame.index))
        if mosaic:
            extensions = [(mosaic_headers.extension_cards(layout, k), data)
                          for k, data in enumerate(exposed.data)]
            primary = mosaic_headers.primary_cards(camera, frame, layout)
        else:
            extensions = [(extension_cards(layout, k), data)
                          for k, data in enumerate(exposed.data)]
            primary = primary_cards(camera, frame, night.strftime("%Y%m%d"))
        files.append(write_uint16_mef(outdir / frame.filename, primary, extensions))
        entries.append(_entry(frame, exposed, mosaic))
        cr = exposed.cosmic_rays
        arrays[cosmic_ray_key(frame.index)] = (cr.rows * nx + cr.cols).astype(np.uint32)
        arrays[row_drift_key(frame.index)] = exposed.row_drift_adu
        if progress is not None:
            progress(len(files), len(frames))
    for k, bias in enumerate(amp_bias):
        arrays[f"bias_adu_amp{k + 1}"] = bias
    arrays.update({"dark_current_e": maps.dark_e, "flat": maps.flat,
                   "hot_pixels": _indices(maps.hot, nx), "dead_pixels": _indices(maps.dead, nx)})
    dark_median = float(np.median(maps.dark_e))
    summary = {
        "format": FORMAT, "version": VERSION, "camera": camera.name,
        "description": camera.description, "night": night.isoformat(), "seed": seed,
        "scale": layout.scale, "layout": "mosaic" if mosaic else "mef",
        "shape": [ny, nx],
        "amp_shape": list(layout.amp_shape),
        "extname": "SCI",
        "overscan_columns": layout.n_overscan,
        "overscan_skip_columns": layout.bias_skip,
        "full_well_e": FULL_WELL_E,
        "amplifiers": [_amp_truth(k, layout, mosaic) for k in range(len(AMPLIFIERS))],
        "crosstalk": [list(row) for row in CROSSTALK],
        "dark_current_e_per_s": dark_median,
        "hot_pixel_threshold_e_per_s": camera.hot_threshold_e,
        "hot_pixels": int(np.count_nonzero(maps.hot)),
        "dead_pixels": int(np.count_nonzero(maps.dead)),
        "flat_levels_adu": {f.name: f.flat_level_adu for f in camera.filters},
        "flat_exptimes": {f.name: f.flat_exptime for f in camera.filters},
        "dark_exptimes": list(camera.dark_exptimes),
        "arrays": "truth.npz",
        "files": entries,
    }
    if mosaic:
        summary["ccds"] = _ccd_truth(layout)
    truth_path, arrays_path = write_truth(outdir, summary, arrays)
    return files, truth_path, arrays_path, (ny, nx)


def _ccd_truth(layout: MefLayout) -> list[dict[str, Any]]:
    """Each CCD of the mosaic camera: its name, amplifiers (EXTVER) and where it lies
    on the detector plane (numpy rows and columns, start and stop)."""
    n = layout.n
    out = []
    for c, name in enumerate(mosaic_headers.CCD_NAMES):
        amps = [AMPLIFIERS[k].extver for k in range(len(AMPLIFIERS))
                if mosaic_headers.ccd_of(k) == c]
        out.append({"name": name, "amplifiers": amps, "rows": [c * n, (c + 1) * n],
                    "cols": [0, 2 * n], "shape": [n, 2 * n]})
    return out


def _amp_truth(k: int, layout: MefLayout, mosaic: bool = False) -> dict[str, Any]:
    amp, where = AMPLIFIERS[k], layout.amps[k]
    extra = ({"ccd": mosaic_headers.CCD_NAMES[mosaic_headers.ccd_of(k)]} if mosaic else {})
    return {
        **extra,
        "extver": amp.extver, "quadrant": _QUADRANTS[k],
        "flip_x": amp.flip_x, "flip_y": amp.flip_y,
        "datasec": where.datasec, "detsec": where.detsec, "biassec": where.biassec,
        "gain_e_per_adu": amp.gain, "header_gain": round(amp.gain, 3),
        "read_noise_e": amp.read_noise_e, "read_noise_adu": amp.read_noise_e / amp.gain,
        "bias_level_adu": amp.bias_level_adu,
        "drift_settle_adu": amp.drift_settle_adu,
        "drift_settle_rows": max(amp.drift_settle_rows * layout.scale, 1.0),
        "column_rms_adu": amp.column_rms_adu,
        "saturate_adu": float(np.floor(FULL_WELL_E / round(amp.gain, 3))),
    }


def _indices(mask: np.ndarray, nx: int) -> np.ndarray:
    rows, cols = np.nonzero(mask)
    return (rows.astype(np.int64) * nx + cols).astype(np.uint32)
