"""The fixed properties of a detector during one night: bias, dark current, flat field.

These maps are drawn once per night and are the same in every frame of it; only
the noise, the cosmic rays and the per-frame bias offset change from frame to
frame. They are the truth that calibration should recover.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nightlog.simulate.cameras import CameraModel, Geometry

__all__ = ["DetectorMaps", "build_detector"]


@dataclass(frozen=True, slots=True)
class DetectorMaps:
    """Per-night detector maps. Image-area maps have shape ``(ny, nx_data)``.

    Attributes
    ----------
    bias_adu : numpy.ndarray
        float32, full raw frame ``(ny, nx)``: the bias level and its fixed
        structure in ADU (image columns: gradient, column and pixel pattern;
        overscan columns: the level the readout gives them).
    dark_e : numpy.ndarray
        float32 image area, dark current in e⁻/s (hot pixels and warm columns included).
    flat : numpy.ndarray
        float32 image area, relative response to uniform light (illumination ×
        pixel sensitivity × dust × dead pixels), mean 1.
    hot : numpy.ndarray
        bool image area, dark current above the camera's hot-pixel threshold.
    dead : numpy.ndarray
        bool image area, response below 0.5.
    """

    bias_adu: np.ndarray
    dark_e: np.ndarray
    flat: np.ndarray
    hot: np.ndarray
    dead: np.ndarray


def _count(full_size_count: int, area_factor: float, *, at_least: int = 0) -> int:
    return max(at_least, round(full_size_count * area_factor))


def _bias(camera: CameraModel, geom: Geometry, rng: np.random.Generator) -> np.ndarray:
    ny, nxd, nx = geom.ny, geom.nx_data, geom.nx
    rows = np.linspace(0.0, 1.0, ny, dtype=np.float32)[:, None] * camera.bias_row_slope_adu
    cols = np.arange(nxd, dtype=np.float32)
    # The LFC's left edge: > 1350 ADU at column 1, back to the plateau in 300-400 columns.
    edge = camera.bias_edge_excess_adu * np.exp(
        -cols / np.float32(camera.bias_edge_scale_px * geom.scale))
    column_pattern = rng.normal(0.0, camera.bias_column_rms_adu, nxd).astype(np.float32)
    bias = np.empty((ny, nx), dtype=np.float32)
    image = bias[:, :nxd]
    image[...] = rng.standard_normal((ny, nxd), dtype=np.float32)
    image *= np.float32(camera.bias_pixel_rms_adu)
    image += (edge + column_pattern)[None, :]
    image += rows
    # Overscan pixels are virtual: no pixel or column pattern, just the level.
    bias[:, nxd:] = rows + np.float32(camera.overscan_offset_adu)
    bias += np.float32(camera.bias_level_adu)
    return bias


def _dark(camera: CameraModel, geom: Geometry, rng: np.random.Generator) -> np.ndarray:
    ny, nxd = geom.ny, geom.nx_data
    dark = rng.standard_normal((ny, nxd), dtype=np.float32)
    dark *= np.float32(camera.dark_rate_spread)
    np.exp(dark, out=dark)
    dark *= np.float32(camera.dark_rate_e)
    n_hot = _count(camera.hot_pixels, geom.area_factor, at_least=1)
    where = rng.choice(ny * nxd, size=min(n_hot, ny * nxd), replace=False)
    # Hot-pixel rates are spread evenly in log between just above the threshold and the maximum.
    low, high = np.log(camera.hot_threshold_e * 1.05), np.log(camera.hot_max_e)
    dark.reshape(-1)[where] = np.exp(rng.uniform(low, high, where.size)).astype(np.float32)
    if camera.warm_columns:
        n_cols = _count(camera.warm_columns, geom.scale, at_least=1)
        for x in rng.choice(nxd, size=n_cols, replace=False):
            # A charge trap: the column is warm from the trap's row to the readout end.
            y0 = int(rng.integers(0, ny // 2))
            dark[y0:, x] += np.float32(rng.uniform(*camera.warm_column_rate_e))
    return dark


def _flat(camera: CameraModel, geom: Geometry, rng: np.random.Generator) -> np.ndarray:
    ny, nxd = geom.ny, geom.nx_data
    # Smooth illumination: radial vignetting from an off-centre axis and a tilt.
    cy = ny * (0.5 + rng.uniform(-0.05, 0.05))
    cx = nxd * (0.5 + rng.uniform(-0.05, 0.05))
    y = ((np.arange(ny, dtype=np.float32) - cy) / np.float32(ny / 2))[:, None]
    x = ((np.arange(nxd, dtype=np.float32) - cx) / np.float32(nxd / 2))[None, :]
    r2 = x * x + y * y
    r2 /= r2.max()
    flat = np.float32(1.0) - np.float32(camera.vignetting) * r2
    flat *= np.float32(1.0) + np.float32(camera.illumination_tilt) * x / np.float32(2.0)
    for _ in range(camera.dust_donuts):
        _add_donut(flat, geom, rng)
    # Pixel-to-pixel sensitivity.
    response = rng.standard_normal((ny, nxd), dtype=np.float32)
    response *= np.float32(camera.pixel_response_rms)
    response += np.float32(1.0)
    flat *= response
    n_dead = _count(camera.dead_pixels, geom.area_factor, at_least=1)
    where = rng.choice(ny * nxd, size=n_dead, replace=False)
    flat.reshape(-1)[where] *= rng.uniform(0.0, 0.4, n_dead).astype(np.float32)
    for _ in range(camera.dead_columns):
        x0 = int(rng.integers(0, nxd))
        y0 = int(rng.integers(0, ny // 2))
        flat[y0:, x0] *= np.float32(rng.uniform(0.1, 0.4))
    flat /= np.float32(flat.mean(dtype=np.float64))
    return flat


def _add_donut(flat: np.ndarray, geom: Geometry, rng: np.random.Generator) -> None:
    """Multiply in the ring shadow of a dust grain on a window (out of focus)."""
    ny, nxd = flat.shape
    radius = float(rng.uniform(25.0, 60.0)) * geom.scale
    width = max(radius * 0.25, 1.0)
    depth = float(rng.uniform(0.01, 0.04))
    yc, xc = rng.uniform(0, ny), rng.uniform(0, nxd)
    half = int(np.ceil(radius + 3 * width))
    y0, y1 = max(0, int(yc) - half), min(ny, int(yc) + half + 1)
    x0, x1 = max(0, int(xc) - half), min(nxd, int(xc) + half + 1)
    if y0 >= y1 or x0 >= x1:
        return
    yy = np.arange(y0, y1, dtype=np.float32)[:, None] - np.float32(yc)
    xx = np.arange(x0, x1, dtype=np.float32)[None, :] - np.float32(xc)
    r = np.sqrt(yy * yy + xx * xx)
    flat[y0:y1, x0:x1] *= np.float32(1.0) - np.float32(depth) * np.exp(
        -(((r - np.float32(radius)) / np.float32(width)) ** 2))


def build_detector(camera: CameraModel, geom: Geometry, rng: np.random.Generator) -> DetectorMaps:
    """Draw the fixed detector maps of one night.

    Parameters
    ----------
    camera : CameraModel
    geom : Geometry
        Scaled frame layout; sizes given at full size in ``camera`` shrink with it.
    rng : numpy.random.Generator

    Returns
    -------
    DetectorMaps
    """
    bias = _bias(camera, geom, rng)
    dark = _dark(camera, geom, rng)
    flat = _flat(camera, geom, rng)
    return DetectorMaps(bias_adu=bias, dark_e=dark, flat=flat,
                        hot=dark > np.float32(camera.hot_threshold_e),
                        dead=flat < np.float32(0.5))
