"""One exposure of the CMOS camera, from electrons to 12-bit values stored in 16 bits.

Per pixel of the full frame::

    native = OFFSET + pattern_native + row_noise[row]
             + (flat × light + dark × t + glow(t) + cosmic rays + shot noise
                + read noise × N(0, 1) + telegraph step × state) / EGAIN
    file ADU = 16 × clip(round(native), 0, 4095)

``state`` is 0 or 1 with equal odds in each frame for a telegraph pixel; the
read noise is the per-pixel map of the gain setting. There is no overscan. A
subarray frame is the window of the full frame (the maps are the same).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nightlog.simulate.cameras import CameraModel, Geometry
from nightlog.simulate.cmos_detector import CmosMaps, glow_electrons
from nightlog.simulate.cosmics import CosmicRays, draw_cosmic_rays
from nightlog.simulate.detector import DetectorMaps
from nightlog.simulate.physics import light_electrons
from nightlog.simulate.schedule import PlannedFrame
from nightlog.simulate.starfield import StarField
from nightlog.simulate.zwo import CmosModel, GainSetting, adu_scale

__all__ = ["CmosExposure", "expose_cmos"]


@dataclass(frozen=True, slots=True)
class CmosExposure:
    """A raw CMOS frame and what went into it.

    Attributes
    ----------
    data : numpy.ndarray
        uint16, the full frame or the subarray window; every value a multiple of 16.
    signal_e : float
        Light on a pixel of unit response, e⁻ (0 for bias and dark).
    glow_corner_e : float
        Glow electrons at the glowing corner pixel in this exposure.
    cosmic_rays : CosmicRays
        Hits on the full frame (those outside a subarray window are not in the file).
    saturated : int
        Pixels at the ADC's top value.
    """

    data: np.ndarray
    signal_e: float
    glow_corner_e: float
    cosmic_rays: CosmicRays
    saturated: int


def expose_cmos(frame: PlannedFrame, camera: CameraModel, geom: Geometry, cmos: CmosModel,
                setting: GainSetting, maps: DetectorMaps, cmaps: CmosMaps,
                stars: StarField | None, rng: np.random.Generator) -> CmosExposure:
    """Synthesise the raw frame of ``frame`` at the gain ``setting``.

    Parameters
    ----------
    frame : PlannedFrame
        ``frame.window`` (x0, y0, nx, ny) set for a subarray frame.
    camera : CameraModel
        Site, sky and field (``nightlog.simulate.cameras.NINA_CMOS``).
    geom : Geometry
        The full frame.
    cmos : CmosModel
    setting : GainSetting
    maps : DetectorMaps
        Dark current and flat field; not modified.
    cmaps : CmosMaps
        Offset pattern, read noise, telegraph pixels, glow; not modified.
    stars : StarField or None
    rng : numpy.random.Generator
        The frame's own generator.

    Returns
    -------
    CmosExposure
    """
    shape = geom.shape
    light, level = light_electrons(frame, camera, geom, maps, stars, rng)
    mean = np.zeros(shape, dtype=np.float32) if light is None else light
    t = frame.darktime
    if t > 0:
        mean += maps.dark_e * np.float32(t)
    glow = glow_electrons(cmos, cmaps, t)
    mean += glow
    electrons = rng.standard_normal(shape, dtype=np.float32)
    electrons *= np.sqrt(mean)
    electrons += mean
    electrons += rng.standard_normal(shape, dtype=np.float32) * cmaps.read_noise_e(setting)
    state = rng.random(cmaps.rts_index.size) < 0.5
    electrons.reshape(-1)[cmaps.rts_index] += cmaps.rts_amplitude_e * state
    cosmics = draw_cosmic_rays(shape, t if frame.kind != "bias" else 0.0, camera.cosmic_rate,
                               rng)
    if cosmics.events:
        electrons[cosmics.rows, cosmics.cols] += cosmics.charge_e
    native = electrons
    native *= np.float32(1.0 / setting.egain)
    native += cmaps.pattern_native
    native += np.float32(setting.offset)
    native += rng.normal(0.0, cmos.row_noise_native, shape[0]).astype(np.float32)[:, None]
    top = 2 ** cmos.adc_bits - 1
    np.rint(native, out=native)
    np.clip(native, 0.0, float(top), out=native)
    if frame.window is not None:
        x0, y0, nx, ny = frame.window
        native = native[y0:y0 + ny, x0:x0 + nx]
    saturated = int(np.count_nonzero(native >= top))
    data = native.astype(np.uint16) * np.uint16(adu_scale(cmos.adc_bits))
    return CmosExposure(data=data, signal_e=level, glow_corner_e=float(glow.reshape(-1).max()),
                        cosmic_rays=cosmics, saturated=saturated)
