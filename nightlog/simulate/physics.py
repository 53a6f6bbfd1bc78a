"""One exposure, from light and dark current in electrons to a raw uint16 frame.

The chain follows the lecture's model of a CCD frame::

    ADU = bias structure + frame offset
          + (flat × (lamp or sky + stars) × t + dark × t_dark + cosmic rays + noise) / gain

Noise: the shot noise of light and dark current (variance = mean, in electrons)
and the Gaussian read noise are drawn together as one normal deviate per pixel
with variance ``mean + read_noise²``. With read noise of 10-13 e⁻ this is
indistinguishable from a Poisson draw plus read noise in every statistic the
calibration uses (mean, variance, gain from a flat pair), and it is four times
faster than ``Generator.poisson`` on a full frame. Cosmic rays are added after
the noise; the result is rounded, clipped to ``0 … 65535`` (saturation) and
stored as uint16.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from nightlog.simulate.cameras import CameraModel, Geometry
from nightlog.simulate.cosmics import CosmicRays, draw_cosmic_rays
from nightlog.simulate.detector import DetectorMaps
from nightlog.simulate.schedule import PlannedFrame
from nightlog.simulate.starfield import StarField

__all__ = ["ExposedFrame", "expose", "light_electrons"]

_ADU_MAX = 65535.0


@dataclass(frozen=True, slots=True)
class ExposedFrame:
    """A raw frame and what went into it.

    Attributes
    ----------
    data : numpy.ndarray
        uint16 ``(ny, nx)``, image columns then overscan columns.
    bias_offset_adu : float
        Offset added to the bias structure in this frame (image and overscan alike).
    overscan_extra_adu : float
        Extra level in the overscan only (light leakage of the Aspen).
    signal_e : float
        Light per pixel of unit response, in electrons (lamp or twilight for a
        flat, sky for a science frame, 0 for bias and dark).
    cosmic_rays : CosmicRays
        Hits on the image area (coordinates in the image area, which starts at
        column 0 of the raw frame).
    saturated : int
        Pixels clipped at 65535.
    fwhm_px : float or None
        FWHM of the stars (pixels; science frames only).
    stars_unsaturated : int
        Stars wholly on the image whose brightest pixel stays below saturation.
    """

    data: np.ndarray
    bias_offset_adu: float
    overscan_extra_adu: float
    signal_e: float
    cosmic_rays: CosmicRays
    saturated: int
    fwhm_px: float | None = None
    stars_unsaturated: int = 0


@dataclass(frozen=True, slots=True)
class _Light:
    electrons: np.ndarray | None  # None: shutter shut
    level: float
    fwhm_px: float | None = None
    stars_unsaturated: int = 0


def _light(frame: PlannedFrame, camera: CameraModel, geom: Geometry, maps: DetectorMaps,
           stars: StarField | None, rng: np.random.Generator) -> _Light:
    """Electrons of light in the image area, after the flat field, and the stars' facts."""
    if frame.kind not in ("flat", "science") or frame.exptime <= 0:
        return _Light(None, 0.0)
    level = frame.illumination_e * frame.exptime
    ny, nxd = geom.ny, geom.nx_data
    if frame.kind == "flat":
        light = maps.flat * np.float32(level)
        if camera.twilight_gradient:
            # The twilight sky's own gradient, which the night sky does not share.
            light *= (np.float32(1.0) + np.float32(camera.twilight_gradient)
                      * np.linspace(-1.0, 1.0, nxd, dtype=np.float32)[None, :])
        return _Light(light, level)
    # Night sky with a gentle gradient (moonlight, airglow), then the stars.
    gy = float(rng.uniform(-camera.sky_gradient, camera.sky_gradient))
    gx = float(rng.uniform(-camera.sky_gradient, camera.sky_gradient))
    sky = (np.float32(level) * (
        np.float32(1.0) + np.linspace(-gy, gy, ny, dtype=np.float32)[:, None]
        + np.linspace(-gx, gx, nxd, dtype=np.float32)[None, :]))
    fwhm, unsaturated = None, 0
    if stars is not None:
        throughput = camera.filter_model(frame.filter or "").star_rate_scale \
            * 10.0 ** (-0.4 * camera.extinction_mag * (frame.airmass - 1.0))
        drawn = stars.render((ny, nxd), exptime=frame.exptime, throughput=throughput,
                             airmass=frame.airmass, seeing=float(rng.uniform(0.9, 1.15)),
                             shift=_pointing(camera, geom, rng))
        sky += drawn.electrons
        fwhm = drawn.fwhm_px
        # Saturated: the brightest pixel (at the most sensitive pixel, over the
        # brightest sky) reaches the converter's top above the bias.
        full_e = (_ADU_MAX - camera.bias_level_adu) * camera.gain
        top = float(maps.flat.max()) * (drawn.peak_e + level * 1.05)
        unsaturated = int(np.count_nonzero(top < full_e))
    sky *= maps.flat
    return _Light(sky, level, fwhm, unsaturated)


def _pointing(camera: CameraModel, geom: Geometry, rng: np.random.Generator
              ) -> tuple[float, float]:
    """The frame's pointing offset (dy, dx) in pixels: guiding jitter, plus the
    observer's dither when the camera model has one (drawn after, so a night
    without dithers is the same night as before)."""
    dy = float(rng.normal(0, 1.5)) * geom.scale * 4
    dx = float(rng.normal(0, 1.5)) * geom.scale * 4
    if camera.dither_px:
        dy += float(rng.normal(0, camera.dither_px)) * geom.scale
        dx += float(rng.normal(0, camera.dither_px)) * geom.scale
    return dy, dx


def light_electrons(frame: PlannedFrame, camera: CameraModel, geom: Geometry,
                    maps: DetectorMaps, stars: StarField | None, rng: np.random.Generator
                    ) -> tuple[np.ndarray | None, float]:
    """Electrons of light in the image area, after the flat field, and the level.

    Returns ``(None, 0.0)`` when the shutter stays shut (bias, dark). The level
    is the light on a pixel of unit response (lamp, twilight or sky) in e⁻.
    """
    lit = _light(frame, camera, geom, maps, stars, rng)
    return lit.electrons, lit.level


def expose(frame: PlannedFrame, camera: CameraModel, geom: Geometry, maps: DetectorMaps,
           stars: StarField | None, rng: np.random.Generator) -> ExposedFrame:
    """Synthesise the raw frame of ``frame``.

    Parameters
    ----------
    frame : PlannedFrame
        What to expose (kind, times, filter, illumination).
    camera : CameraModel
    geom : Geometry
    maps : DetectorMaps
        The night's fixed detector maps; not modified.
    stars : StarField or None
        The science field (used for science frames only).
    rng : numpy.random.Generator
        The frame's own generator: noise, cosmic rays, offsets.

    Returns
    -------
    ExposedFrame
    """
    ny, nxd = geom.ny, geom.nx_data
    lit = _light(frame, camera, geom, maps, stars, rng)
    mean = lit.electrons
    if frame.darktime > 0:
        dark = maps.dark_e * np.float32(frame.darktime)
        mean = dark if mean is None else np.add(mean, dark, out=mean)
    read2 = np.float32(camera.read_noise_e**2)
    noise = rng.standard_normal((ny, geom.nx), dtype=np.float32)
    electrons = noise  # reused in place: image columns get shot + read noise, overscan read only
    image = electrons[:, :nxd]
    if mean is None:
        image *= np.float32(camera.read_noise_e)
    else:
        sigma = mean + read2
        np.sqrt(sigma, out=sigma)
        image *= sigma
        image += mean
    electrons[:, nxd:] *= np.float32(camera.read_noise_e)
    if mean is not None and geom.leak_columns and camera.leak_fraction > 0:
        # Charge from the last image column spills into the first overscan columns.
        last = mean[:, -1]
        k = np.arange(geom.leak_columns, dtype=np.float32)
        decay = np.exp(-k / np.float32(max(geom.leak_columns / 4.0, 0.5)))
        electrons[:, nxd:nxd + geom.leak_columns] += (
            np.float32(camera.leak_fraction) * last[:, None] * decay[None, :])
    cosmics = draw_cosmic_rays((ny, nxd), frame.darktime if frame.kind != "bias" else 0.0,
                               camera.cosmic_rate, rng)
    if cosmics.events:
        image[cosmics.rows, cosmics.cols] += cosmics.charge_e

    offset = float(rng.normal(0.0, camera.bias_frame_jitter_adu))
    if camera.bias_drift_adu:
        settle = 1.0 - math.exp(-frame.darktime / camera.bias_drift_tau_s)
        offset += camera.bias_drift_adu * settle
    extra = 0.0
    if frame.kind in ("flat", "science") and camera.overscan_lit_offset_adu:
        extra = camera.overscan_lit_offset_adu * (1.0 + float(rng.normal(0.0, 0.05)))
    adu = electrons
    adu *= np.float32(1.0 / camera.gain)
    adu += maps.bias_adu
    adu += np.float32(offset)
    if extra:
        adu[:, nxd:] += np.float32(extra)
    np.rint(adu, out=adu)
    saturated = int(np.count_nonzero(adu >= _ADU_MAX))
    np.clip(adu, 0.0, _ADU_MAX, out=adu)
    return ExposedFrame(data=adu.astype(np.uint16), bias_offset_adu=offset,
                        overscan_extra_adu=extra, signal_e=lit.level, cosmic_rays=cosmics,
                        saturated=saturated, fwhm_px=lit.fwhm_px,
                        stars_unsaturated=lit.stars_unsaturated)
