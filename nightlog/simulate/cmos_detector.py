"""The fixed CMOS maps of one night: offset pattern, read-noise map, telegraph pixels, glow.

Drawn once per night, like :mod:`nightlog.simulate.detector` (which gives the
dark current and flat field of the same sensor). Every map covers the full
frame; a subarray frame sees the window of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nightlog.simulate.zwo import CmosModel, GainSetting

__all__ = ["CmosMaps", "bayer_response", "build_cmos_maps", "glow_electrons"]


@dataclass(frozen=True, slots=True)
class CmosMaps:
    """Per-night CMOS maps, full frame ``(ny, nx)``.

    Attributes
    ----------
    pattern_native : numpy.ndarray
        float32 offset pattern in native ADU (column, row and pixel structure;
        the ``OFFSET`` pedestal excluded): the same at every gain setting.
    read_noise_factor : numpy.ndarray
        float32, median 1: a pixel's Gaussian read noise is this times the
        setting's ``read_noise_e``.
    rts_index : numpy.ndarray
        int64 flat indices (``row * nx + col``) of the random-telegraph pixels.
    rts_amplitude_e : numpy.ndarray
        float32 step between their two levels, e⁻.
    glow_template : numpy.ndarray
        float32, 1 at the glowing corner pixel, ``exp(-distance / scale)``.
    """

    pattern_native: np.ndarray
    read_noise_factor: np.ndarray
    rts_index: np.ndarray
    rts_amplitude_e: np.ndarray
    glow_template: np.ndarray

    def read_noise_e(self, setting: GainSetting) -> np.ndarray:
        """Gaussian read noise per pixel at ``setting``, e⁻ (telegraph steps excluded)."""
        return self.read_noise_factor * np.float32(setting.read_noise_e)

    def total_noise_e(self, setting: GainSetting) -> np.ndarray:
        """Read noise per pixel including the telegraph pixels' two-level scatter, e⁻.

        A pixel half the time at each of two levels ``A`` apart scatters by ``A / 2``.
        """
        total = self.read_noise_e(setting) ** 2
        total.reshape(-1)[self.rts_index] += (self.rts_amplitude_e / np.float32(2.0)) ** 2
        out: np.ndarray = np.sqrt(total)
        return out


def glow_electrons(cmos: CmosModel, maps: CmosMaps, exptime: float) -> np.ndarray:
    """Amplifier-glow electrons of an exposure of ``exptime`` seconds (full frame).

    ``glow_corner_e × template × (exptime / glow_reference_s) ** glow_exponent``:
    with an exponent above 1, a dark of twice the exposure has more than twice the glow.
    """
    factor = cmos.glow_corner_e * (max(exptime, 0.0) / cmos.glow_reference_s) \
        ** cmos.glow_exponent
    return maps.glow_template * np.float32(factor)


def bayer_response(cmos: CmosModel, shape: tuple[int, int]) -> np.ndarray:
    """Relative response of each pixel's colour filter, mean 1 (all ones for a mono sensor).

    ``cmos.bayer`` names the 2 × 2 cell from numpy row 0, column 0 (``'RGGB'``:
    R at (0, 0), G at (0, 1) and (1, 0), B at (1, 1)).
    """
    response = np.ones(shape, dtype=np.float32)
    if cmos.bayer is None:
        return response
    value = dict(zip("RGB", cmos.bayer_response, strict=True))
    for k, colour in enumerate(cmos.bayer):
        response[k // 2::2, k % 2::2] = np.float32(value[colour])
    response /= np.float32(response.mean(dtype=np.float64))
    return response


def build_cmos_maps(cmos: CmosModel, shape: tuple[int, int], scale: float,
                    rng: np.random.Generator) -> CmosMaps:
    """Draw the night's CMOS maps for a full frame of ``shape`` at ``scale``.

    Parameters
    ----------
    cmos : CmosModel
    shape : tuple of int
        ``(ny, nx)`` of the full frame after scaling.
    scale : float
        Shrinks the glow's extent with the frame.
    rng : numpy.random.Generator

    Returns
    -------
    CmosMaps
    """
    ny, nx = shape
    pattern = rng.standard_normal(shape, dtype=np.float32)
    pattern *= np.float32(cmos.pixel_rms_native)
    pattern += rng.normal(0.0, cmos.column_rms_native, nx).astype(np.float32)[None, :]
    pattern += rng.normal(0.0, cmos.row_rms_native, ny).astype(np.float32)[:, None]
    factor = rng.standard_normal(shape, dtype=np.float32)
    factor *= np.float32(cmos.read_noise_spread)
    np.exp(factor, out=factor)
    n_rts = max(1, round(cmos.rts_fraction * ny * nx))
    index = np.sort(rng.choice(ny * nx, size=n_rts, replace=False)).astype(np.int64)
    low, high = np.log(cmos.rts_amplitude_e[0]), np.log(cmos.rts_amplitude_e[1])
    amplitude = np.exp(rng.uniform(low, high, n_rts)).astype(np.float32)
    yy = np.arange(ny, dtype=np.float32)[:, None]
    xx = np.arange(nx, dtype=np.float32)[None, :] - np.float32(nx - 1)
    distance = np.sqrt(yy * yy + xx * xx)
    template = np.exp(-distance / np.float32(max(cmos.glow_scale_px * scale, 2.0)))
    return CmosMaps(pattern_native=pattern, read_noise_factor=factor, rts_index=index,
                    rts_amplitude_e=amplitude, glow_template=template.astype(np.float32))
