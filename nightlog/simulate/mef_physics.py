"""One exposure of the four-amplifier CCD: the detector plane read out through four corners.

The light, dark current and cosmic rays fall on the detector plane (``2n × 2n``,
DETSEC orientation). Each amplifier then reads its quadrant from its own
corner, so its raw array is the quadrant flipped along its reversed DETSEC
axes, with one extra row (no light) and the overscan columns after the data.
Per amplifier, in raw pixels::

    ADU = bias_adu (level + column and pixel pattern) + offset + row_drift[row]
          + (electrons + noise) / gain + Σ_i crosstalk[i][j] × signal_adu_i

``row_drift`` is the bias settling at the start of the readout plus a ramp along
the rows that changes from frame to frame: it is the same in the overscan and
the data of a row, which is what a row-by-row overscan correction removes and a
single overscan value does not. Charge is clipped at the full well (95000 e⁻).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nightlog.simulate.cameras import CameraModel, Geometry
from nightlog.simulate.cosmics import CosmicRays, draw_cosmic_rays
from nightlog.simulate.detector import DetectorMaps
from nightlog.simulate.physics import light_electrons
from nightlog.simulate.schedule import PlannedFrame
from nightlog.simulate.sinistro import AMPLIFIERS, CROSSTALK, FULL_WELL_E, MefLayout
from nightlog.simulate.starfield import StarField

__all__ = ["MefExposure", "build_amp_bias", "expose_mef"]

_ADU_MAX = 65535.0
_PIXEL_RMS_ADU = 0.3  # fixed pixel-to-pixel bias pattern (choice)
_OFFSET_JITTER_ADU = 0.8  # frame-to-frame bias level change, per amplifier (choice)
_RAMP_RMS_ADU = 1.5  # frame-to-frame level change from the first to the last row (choice)
_SETTLE_JITTER = 0.1  # relative frame-to-frame change of the settling amplitude
_TRANSFER_LOSS = 0.002  # fraction of the last data column found in the first overscan column


@dataclass(frozen=True, slots=True)
class MefExposure:
    """The four raw extensions of one frame and what went into them.

    Attributes
    ----------
    data : tuple of numpy.ndarray
        uint16 ``(n + 1, n + n_overscan)`` per amplifier, raw orientation.
    offsets_adu : tuple of float
        Per-amplifier bias level change of this frame (whole array).
    ramps_adu : tuple of float
        Per-amplifier level change from the first to the last raw row.
    settle_adu : tuple of float
        Per-amplifier settling amplitude of this frame (at raw row 0).
    row_drift_adu : numpy.ndarray
        float32 ``(4, n + 1)``: settling plus ramp per raw row (offset excluded).
    signal_e : float
        Light on a pixel of unit response (0 for bias and dark).
    cosmic_rays : CosmicRays
        Hits on the detector plane.
    saturated : int
        Pixels clipped at the full well.
    """

    data: tuple[np.ndarray, ...]
    offsets_adu: tuple[float, ...]
    ramps_adu: tuple[float, ...]
    settle_adu: tuple[float, ...]
    row_drift_adu: np.ndarray
    signal_e: float
    cosmic_rays: CosmicRays
    saturated: int


def build_amp_bias(layout: MefLayout, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """The fixed bias structure of each amplifier (raw orientation, ADU, float32).

    Level plus a column pattern and a pixel pattern in the data columns; the
    overscan columns (virtual pixels) carry the level only.
    """
    out = []
    n = layout.n
    for amp in AMPLIFIERS:
        bias = np.full(layout.amp_shape, amp.bias_level_adu, dtype=np.float32)
        pattern = rng.standard_normal((layout.amp_shape[0], n), dtype=np.float32)
        pattern *= np.float32(_PIXEL_RMS_ADU)
        pattern += rng.normal(0.0, amp.column_rms_adu, n).astype(np.float32)[None, :]
        bias[:, :n] += pattern
        out.append(bias)
    return tuple(out)


def _detector_electrons(frame: PlannedFrame, camera: CameraModel, geom: Geometry,
                        maps: DetectorMaps, stars: StarField | None,
                        rng: np.random.Generator) -> tuple[np.ndarray, float, CosmicRays]:
    light, level = light_electrons(frame, camera, geom, maps, stars, rng)
    mean = np.zeros(geom.shape, dtype=np.float32) if light is None else light
    if frame.darktime > 0:
        mean += maps.dark_e * np.float32(frame.darktime)
    cosmics = draw_cosmic_rays(geom.shape, frame.darktime if frame.kind != "bias" else 0.0,
                               camera.cosmic_rate, rng)
    return mean, level, cosmics


def expose_mef(frame: PlannedFrame, camera: CameraModel, geom: Geometry, layout: MefLayout,
               maps: DetectorMaps, amp_bias: tuple[np.ndarray, ...],
               stars: StarField | None, rng: np.random.Generator) -> MefExposure:
    """Synthesise the four raw extensions of ``frame``.

    Parameters
    ----------
    frame : PlannedFrame
    camera : CameraModel
        The site, sky and field (``nightlog.simulate.cameras.SINISTRO``).
    geom : Geometry
        The detector plane (``2n × 2n``, no overscan).
    layout : MefLayout
    maps : DetectorMaps
        Dark current and flat field on the detector plane; not modified.
    amp_bias : tuple of numpy.ndarray
        From :func:`build_amp_bias`; not modified.
    stars : StarField or None
    rng : numpy.random.Generator
        The frame's own generator.

    Returns
    -------
    MefExposure
    """
    n = layout.n
    rows_raw = layout.amp_shape[0]
    mean, level, cosmics = _detector_electrons(frame, camera, geom, maps, stars, rng)
    hits = None
    if cosmics.events:
        hits = np.zeros(geom.shape, dtype=np.float32)
        np.add.at(hits, (cosmics.rows, cosmics.cols), cosmics.charge_e)
    rows = np.arange(rows_raw, dtype=np.float32)
    signals: list[np.ndarray] = []
    drifts = np.empty((len(AMPLIFIERS), rows_raw), dtype=np.float32)
    offsets, ramps, settles = [], [], []
    saturated = 0
    for k, (amp, where) in enumerate(zip(AMPLIFIERS, layout.amps, strict=True)):
        quad = mean[where.det_rows, where.det_cols]
        quad = quad[::-1 if amp.flip_y else 1, ::-1 if amp.flip_x else 1]
        electrons = rng.standard_normal(layout.amp_shape, dtype=np.float32)
        electrons *= np.float32(amp.read_noise_e)
        image = electrons[where.data_rows, :n]
        image += quad + np.sqrt(quad) * rng.standard_normal(quad.shape, dtype=np.float32)
        if hits is not None:
            hit = hits[where.det_rows, where.det_cols]
            image += hit[::-1 if amp.flip_y else 1, ::-1 if amp.flip_x else 1]
        full = image > np.float32(FULL_WELL_E)
        saturated += int(np.count_nonzero(full))
        image[full] = np.float32(FULL_WELL_E)
        # Charge left behind by the last data column reaches the first overscan columns.
        k_cols = np.arange(layout.bias_skip, dtype=np.float32)
        decay = np.exp(-k_cols / np.float32(max(layout.bias_skip / 3.0, 0.5)))
        last = np.zeros(rows_raw, dtype=np.float32)
        last[where.data_rows] = quad[:, -1]
        electrons[:, n:n + layout.bias_skip] += (
            np.float32(_TRANSFER_LOSS) * last[:, None] * decay[None, :])
        signals.append(electrons / np.float32(amp.gain))
        settle = amp.drift_settle_adu * (1.0 + float(rng.normal(0.0, _SETTLE_JITTER)))
        ramp = float(rng.normal(0.0, _RAMP_RMS_ADU))
        tau = max(amp.drift_settle_rows * layout.scale, 1.0)
        drifts[k] = (np.float32(settle) * np.exp(-rows / np.float32(tau))
                     + np.float32(ramp) * (rows / np.float32(rows_raw - 1) - np.float32(0.5)))
        offsets.append(float(rng.normal(0.0, _OFFSET_JITTER_ADU)))
        ramps.append(ramp)
        settles.append(settle)
    data = []
    for k, bias in enumerate(amp_bias):
        adu = signals[k].copy()
        for i, source in enumerate(signals):
            if CROSSTALK[i][k]:
                adu += np.float32(CROSSTALK[i][k]) * source
        adu += bias
        adu += drifts[k][:, None]
        adu += np.float32(offsets[k])
        np.rint(adu, out=adu)
        np.clip(adu, 0.0, _ADU_MAX, out=adu)
        data.append(adu.astype(np.uint16))
    return MefExposure(data=tuple(data), offsets_adu=tuple(offsets), ramps_adu=tuple(ramps),
                       settle_adu=tuple(settles), row_drift_adu=drifts, signal_e=level,
                       cosmic_rays=cosmics, saturated=saturated)
