"""The electronics of the simulated CMOS camera (a ZWO ASI1600MM Pro), described as data.

Conventions from section 2 of ``shared/reference/mef_cmos_headers.md``:

- ``GAIN`` and ``OFFSET`` are integer camera settings. The gain setting is
  logarithmic in 0.1 dB steps, so the conversion factor falls by a factor
  ``10 ** (G / 200)``: :func:`egain_native`. With 4.95 e⁻/ADU at ``GAIN = 0``
  the camera is at unity gain at ``GAIN = 139``, as ZWO publishes for this
  sensor (at ``GAIN = 120`` the law gives 1.25 e⁻/ADU).
- The ADC has 12 bits; the file holds them "in the high 12 bit of 16 bit
  format", every value a multiple of 16. ``EGAIN`` (what N.I.N.A. writes) is
  in e⁻ per *native* 12-bit ADU, the unit of ZWO's published gain curves;
  the reference says this is unconfirmed, so it is a choice here. One ADU of
  the file is ``EGAIN / 16`` electrons.
- ``OFFSET`` is a pedestal in native ADU (``OFFSET = 50`` reads ~800 ADU in the
  file, as users of this camera report).

The read noise (per pixel, with a tail of random-telegraph pixels), the offset
pattern and the amplifier glow are drawn by :mod:`nightlog.simulate.cmos_detector`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

__all__ = [
    "ASI1600",
    "ASI1600MC",
    "CMOS_MODELS",
    "CmosModel",
    "GainSetting",
    "adu_scale",
    "e_per_file_adu",
    "egain_native",
]

_EGAIN_AT_ZERO = 4.95  # e-/native ADU at GAIN = 0; 10 ** (139 / 200) puts unity at 139


def egain_native(gain: int) -> float:
    """e⁻ per native ADU at the gain setting ``gain`` (0.1 dB steps).

    Parameters
    ----------
    gain : int
        The camera's ``GAIN`` setting (not e⁻/ADU).

    Returns
    -------
    float
        ``4.95 × 10 ** (-gain / 200)``.
    """
    return float(_EGAIN_AT_ZERO * 10.0 ** (-gain / 200.0))


def adu_scale(adc_bits: int) -> int:
    """File ADU per native ADU: ``2 ** (16 - adc_bits)`` (16 for a 12-bit ADC)."""
    return int(2 ** (16 - adc_bits))


def e_per_file_adu(gain: int, adc_bits: int) -> float:
    """e⁻ per ADU of the 16-bit file: ``EGAIN / 2 ** (16 - adc_bits)``."""
    return egain_native(gain) / adu_scale(adc_bits)


@dataclass(frozen=True, slots=True)
class GainSetting:
    """One gain setting the night's frames are taken at.

    Attributes
    ----------
    gain : int
        ``GAIN`` keyword (0.1 dB steps).
    offset : int
        ``OFFSET`` keyword (pedestal, native ADU).
    read_noise_e : float
        Median per-pixel read noise at this setting, e⁻ (ZWO's curve for this
        sensor: ~3.6 e⁻ at 0, ~1.6 e⁻ at unity gain).
    science_exptime : float
        Exposure of the science frames at this setting, seconds.
    """

    gain: int
    offset: int
    read_noise_e: float
    science_exptime: float

    @property
    def egain(self) -> float:
        """``EGAIN``: e⁻ per native ADU."""
        return egain_native(self.gain)


@dataclass(frozen=True, slots=True)
class CmosModel:
    """Everything CMOS about the simulated camera. Sizes are full-size pixels.

    The offset pattern is in native ADU; glow and telegraph amplitudes in e⁻.
    """

    instrument: str
    swcreate: str
    pixel_um: float
    adc_bits: int
    settings: tuple[GainSetting, ...]
    main_setting: int  # index of the setting of most science frames and of the subarray frame
    set_temp_c: float
    usb_limit: int
    readout_mode: str | None  # READOUTM, written only when a mode is named
    bias_exptime_s: float  # the shortest exposure, used for biases
    # Offset pattern (fixed, native ADU) and the row noise that changes every frame.
    column_rms_native: float
    row_rms_native: float
    pixel_rms_native: float
    row_noise_native: float
    # Per-pixel read noise: log-normal spread around the setting's median.
    read_noise_spread: float
    # Random-telegraph pixels: two levels, amplitude in e-, half the time in each.
    rts_fraction: float
    rts_amplitude_e: tuple[float, float]
    # Amplifier glow from the top-right corner (numpy row 0, last column; ROWORDER TOP-DOWN).
    glow_corner_e: float  # electrons at the corner pixel in glow_reference_s
    glow_reference_s: float
    glow_exponent: float  # glow ∝ t ** exponent (> 1: darks do not scale linearly)
    glow_scale_px: float  # e-folding distance from the corner
    # The subarray (ROI) science frame: origin and size as fractions of the full frame.
    roi_origin: tuple[float, float]  # (x, y)
    roi_size: tuple[float, float]
    # Colour sensors: the Bayer pattern (BAYERPAT, from numpy row 0, column 0) and the
    # response of its R, G and B pixels relative to G; None for a mono sensor.
    bayer: str | None = None
    bayer_response: tuple[float, float, float] = (1.0, 1.0, 1.0)

    @property
    def main(self) -> GainSetting:
        """The setting of most science frames and of the subarray frame."""
        return self.settings[self.main_setting]


ASI1600 = CmosModel(
    instrument="ZWO ASI1600MM Pro",
    swcreate="N.I.N.A. 1.10.2.90",  # as in the reference header
    pixel_um=3.8,
    adc_bits=12,
    settings=(
        GainSetting(gain=0, offset=10, read_noise_e=3.6, science_exptime=30.0),
        GainSetting(gain=139, offset=50, read_noise_e=1.6, science_exptime=120.0),
    ),
    main_setting=1,
    set_temp_c=-10.0,
    usb_limit=40,
    readout_mode=None,
    bias_exptime_s=3.2e-05,  # ZWO's shortest exposure (32 µs)
    column_rms_native=0.8, row_rms_native=0.4, pixel_rms_native=0.5,
    row_noise_native=0.15,
    read_noise_spread=0.2,
    rts_fraction=0.003, rts_amplitude_e=(6.0, 25.0),
    glow_corner_e=400.0, glow_reference_s=300.0, glow_exponent=1.5, glow_scale_px=250.0,
    roi_origin=(0.40, 0.30), roi_size=(0.5, 0.5),
)

# The colour model of the same sensor (RGGB, as in the reference's N.I.N.A. header).
# The R and B responses to the flat panel and the sky relative to G are a choice.
ASI1600MC = dataclasses.replace(ASI1600, instrument="ZWO ASI1600MC Pro", bayer="RGGB",
                                bayer_response=(0.6, 1.0, 0.5))

CMOS_MODELS: dict[str, CmosModel] = {"cmos": ASI1600, "cmos-colour": ASI1600MC}
