"""The four amplifiers of the simulated LCO Sinistro, and their layout on the raw MEF file.

The layout is BANZAI's (``banzai/lco.py::_munge_data_cube``, "full" mode; section
1a of ``shared/reference/mef_cmos_headers.md``): one image extension per
amplifier, each ``2049 × 2080`` raw pixels (rows × columns), data columns first
and the overscan after them, ``BIASSEC = '[2055:2080,1:2048]'``:

=====  ================  =====================  ==========================
amp    DATASEC           DETSEC                 quadrant, flipped axes
=====  ================  =====================  ==========================
1      [1:2048,1:2048]   [1:2048,1:2048]        lower left, none
2      [1:2048,1:2048]   [4096:2049,1:2048]     lower right, x
3      [1:2048,2:2049]   [4096:2049,4096:2049]  upper right, x and y
4      [1:2048,2:2049]   [1:2048,4096:2049]     upper left, y
=====  ================  =====================  ==========================

Raw pixel (1, 1) of every amplifier is the outer corner of the CCD, where its
output amplifier sits, so the simulator writes each amplifier's pixels flipped
along the reversed DETSEC axes. Amplifiers 1 and 2 read one row beyond their
DATASEC (raw row 2049) and amplifiers 3 and 4 one before it (raw row 1, the
dropped edge row); those rows see no light. BANZAI's "missing row" mode
(2048-row arrays) is not simulated.

The overscan columns 2049-2054, between the data and BIASSEC, catch a little
charge left behind by the last data column (charge transfer), which is why
BIASSEC starts six columns later. ``--scale`` shrinks every size and keeps the
layout: amplifiers of ``n`` data columns and rows, ``n + 1`` raw rows.
"""

from __future__ import annotations

from dataclasses import dataclass

from nightlog.errors import ConfigurationError

__all__ = [
    "AMPLIFIERS",
    "CROSSTALK",
    "FULL_WELL_E",
    "AmpLayout",
    "AmplifierModel",
    "MefLayout",
    "mef_layout",
]

FULL_WELL_E = 95000.0  # BANZAI's default Sinistro saturation: 47500 * 2.0 e- (lco.py)
_AMP_SIZE = 2048
_OVERSCAN = 32  # raw columns after the data (2080 - 2048)
_BIAS_SKIP = 6  # overscan columns before BIASSEC (2055 - 2049)


@dataclass(frozen=True, slots=True)
class AmplifierModel:
    """One output amplifier: where it reads from and how its electronics behave.

    Attributes
    ----------
    extver : int
        ``EXTVER`` of its extension (``EXTNAME = 'SCI'``), 1-4.
    flip_x, flip_y : bool
        The detector axes its raw pixels run against (its DETSEC is reversed).
    upper : bool
        Reads the upper half of the CCD (amplifiers 3 and 4: DATASEC starts at raw row 2).
    gain : float
        True gain, e⁻/ADU.
    read_noise_e : float
        Read noise, e⁻.
    bias_level_adu : float
        Bias level, ADU.
    drift_settle_adu : float
        The bias rises by this much at the first rows read and settles as
        ``exp(-row / drift_settle_rows)`` (raw rows, full size): seen in the
        overscan and the data of the same row alike.
    drift_settle_rows : float
    column_rms_adu : float
        Fixed column-to-column bias pattern of the data columns.
    """

    extver: int
    flip_x: bool
    flip_y: bool
    upper: bool
    gain: float
    read_noise_e: float
    bias_level_adu: float
    drift_settle_adu: float
    drift_settle_rows: float
    column_rms_adu: float


# Gains within the brief's 1.9-2.1 e-/ADU, read noise in LCO's 7.5-8 e-, bias levels
# and drifts: choices (no raw Sinistro file was found).
AMPLIFIERS: tuple[AmplifierModel, ...] = (
    AmplifierModel(1, False, False, False, 2.01, 7.6, 463.0, 9.0, 120.0, 0.5),
    AmplifierModel(2, True, False, False, 1.94, 7.9, 512.0, 6.0, 90.0, 0.6),
    AmplifierModel(3, True, True, True, 2.07, 7.7, 489.0, 11.0, 150.0, 0.4),
    AmplifierModel(4, False, True, True, 1.98, 7.5, 441.0, 7.0, 110.0, 0.5),
)

# CRSTLK{i}{j}: signal from Q{i} onto Q{j}, ADU per ADU at the same raw position
# (all four amplifiers are read at once). Order 1e-4, a choice; BANZAI holds defaults
# of this kind for old data. Written to the truth, not to the header.
CROSSTALK: tuple[tuple[float, ...], ...] = (
    (0.0, 4.0e-4, 1.5e-4, 2.0e-4),
    (3.5e-4, 0.0, 2.5e-4, 1.0e-4),
    (1.0e-4, 3.0e-4, 0.0, 4.5e-4),
    (2.5e-4, 1.0e-4, 3.5e-4, 0.0),
)


@dataclass(frozen=True, slots=True)
class AmpLayout:
    """Where one amplifier's raw pixels are, in FITS sections and numpy slices.

    Attributes
    ----------
    datasec, detsec, biassec : str
        The header sections (1-based, inclusive; DETSEC reversed on flipped axes).
    data_rows : slice
        Raw rows of DATASEC (numpy, 0-based).
    det_rows, det_cols : slice
        The amplifier's quadrant of the detector plane (numpy, ascending).
    """

    datasec: str
    detsec: str
    biassec: str
    data_rows: slice
    det_rows: slice
    det_cols: slice


@dataclass(frozen=True, slots=True)
class MefLayout:
    """The raw layout at one scale.

    Attributes
    ----------
    scale : float
    n : int
        Data rows and columns of one amplifier (2048 at full size).
    n_overscan : int
        Raw columns after the data (32 at full size).
    bias_skip : int
        Overscan columns before BIASSEC (6 at full size).
    amps : tuple of AmpLayout
        In ``AMPLIFIERS`` order.
    """

    scale: float
    n: int
    n_overscan: int
    bias_skip: int
    amps: tuple[AmpLayout, ...]

    @property
    def amp_shape(self) -> tuple[int, int]:
        """numpy shape of one raw extension: ``(n + 1, n + n_overscan)``."""
        return (self.n + 1, self.n + self.n_overscan)

    @property
    def detector_shape(self) -> tuple[int, int]:
        """numpy shape of the detector plane the four DETSECs tile: ``(2n, 2n)``."""
        return (2 * self.n, 2 * self.n)

    @property
    def clean_overscan(self) -> slice:
        """Raw columns of BIASSEC (numpy)."""
        return slice(self.n + self.bias_skip, self.n + self.n_overscan)


def _axis(lo: int, hi: int, reverse: bool) -> str:
    return f"{hi}:{lo}" if reverse else f"{lo}:{hi}"


def mef_layout(scale: float) -> MefLayout:
    """The Sinistro layout shrunk by ``scale``.

    Parameters
    ----------
    scale : float
        Linear factor in ``(0, 1]``.

    Returns
    -------
    MefLayout

    Raises
    ------
    ConfigurationError
        ``scale`` outside ``(0, 1]`` or amplifiers smaller than 16 × 16 pixels.
    """
    try:
        value = float(scale)
    except (TypeError, ValueError):
        raise ConfigurationError(f"scale must be a number in (0, 1], not {scale!r}") from None
    if not 0.0 < value <= 1.0:
        raise ConfigurationError(f"scale must be in (0, 1], not {scale!r}")
    n = round(_AMP_SIZE * value)
    if n < 16:
        raise ConfigurationError(f"scale {value} leaves {n}×{n}-pixel amplifiers; "
                                 "use a larger scale")
    # At least 8 overscan columns, 2 of them skipped, so BIASSEC keeps 6 clean columns.
    n_over = max(8, round(_OVERSCAN * value))
    skip = max(2, round(_BIAS_SKIP * value))
    width = n + n_over
    amps = []
    for amp in AMPLIFIERS:
        x_lo, y_lo = (n + 1 if amp.flip_x else 1), (n + 1 if amp.upper else 1)
        first_row = 2 if amp.upper else 1
        amps.append(AmpLayout(
            datasec=f"[1:{n},{first_row}:{first_row + n - 1}]",
            detsec=f"[{_axis(x_lo, x_lo + n - 1, amp.flip_x)},"
                   f"{_axis(y_lo, y_lo + n - 1, amp.flip_y)}]",
            biassec=f"[{n + skip + 1}:{width},1:{n}]",
            data_rows=slice(first_row - 1, first_row - 1 + n),
            det_rows=slice(y_lo - 1, y_lo - 1 + n),
            det_cols=slice(x_lo - 1, x_lo - 1 + n)))
    return MefLayout(scale=value, n=n, n_overscan=n_over, bias_skip=skip, amps=tuple(amps))
