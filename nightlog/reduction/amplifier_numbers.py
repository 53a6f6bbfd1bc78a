"""Read noise and gain of each amplifier, measured on pairs of biases and flats.

The lecture's methods (:mod:`nightlog.reduction.characterise`), applied to each
amplifier's own pixels: its extension less one overscan level per frame (a
per-row level would add its own noise to every row), trimmed to ``DATASEC``.

* read noise: ``std(b1 - b2) / √2`` in ADU, times the amplifier's gain for e-;
* gain: :func:`~nightlog.reduction.characterise.gain_from_flats` on the two
  flats, the master bias's pixels of that amplifier taken back to ADU (the master
  is assembled in electrons with the same gain), and the read noise from the
  difference of the two flats' overscans when the layout gives none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from astropy.nddata import CCDData

from nightlog.errors import ReductionError
from nightlog.header.amplifiers import Amplifier, AmplifierLayout
from nightlog.reduction.amplifiers import prepare_amplifier
from nightlog.reduction.characterise import gain_from_flats, read_noise_from_biases
from nightlog.sections import parse_section

__all__ = ["AmplifierNumbers", "measure_amplifier_gains", "measure_amplifier_read_noise"]


@dataclass(frozen=True)
class AmplifierNumbers:
    """One amplifier's measured figures (``None`` where not measured)."""

    name: str
    read_noise_adu: float | None = None
    read_noise_e: float | None = None
    gain: float | None = None
    source: str = ""


def _pairs(a: Sequence[CCDData | npt.ArrayLike], b: Sequence[CCDData | npt.ArrayLike],
           layout: AmplifierLayout) -> None:
    n = len(layout.amplifiers)
    if len(a) != n or len(b) != n:
        raise ReductionError(f"{len(a)} and {len(b)} arrays for {n} amplifiers")


def measure_amplifier_read_noise(b1: Sequence[CCDData | npt.ArrayLike],
                                 b2: Sequence[CCDData | npt.ArrayLike],
                                 layout: AmplifierLayout, *, clip_sigma: float = 5.0
                                 ) -> list[AmplifierNumbers]:
    """Each amplifier's read noise from two raw biases.

    Parameters
    ----------
    b1, b2 : sequence of CCDData or array
        The two biases' amplifier extensions (raw ADU), in layout order.
    layout : AmplifierLayout
        The amplifiers.
    clip_sigma : float
        Outlier rejection on the difference (cosmic rays), in standard deviations.

    Returns
    -------
    list of AmplifierNumbers
        ``read_noise_adu`` and, where the gain is known, ``read_noise_e``.
    """
    _pairs(b1, b2, layout)
    out = []
    for amp, x, y in zip(layout.amplifiers, b1, b2, strict=True):
        a = prepare_amplifier(x, amp, layout, per_row=False)
        b = prepare_amplifier(y, amp, layout, per_row=False)
        rn = read_noise_from_biases(a, b, clip_sigma=clip_sigma, gain=amp.gain)
        out.append(AmplifierNumbers(amp.name, read_noise_adu=rn.adu, read_noise_e=rn.electrons,
                                    source="measured on two biases"))
    return out


def _master_pixels(master: npt.NDArray[np.float32], amp: Amplifier) -> npt.NDArray[np.float32]:
    """The amplifier's pixels of an assembled image, back in its readout orientation."""
    block = master[slice(*amp.rows), slice(*amp.cols)]
    flip = (slice(None, None, -1) if amp.flip_y else slice(None),
            slice(None, None, -1) if amp.flip_x else slice(None))
    return np.asarray(block[flip], dtype=np.float32)


def _overscan_noise(x: CCDData | npt.ArrayLike, y: CCDData | npt.ArrayLike,
                    amp: Amplifier, layout: AmplifierLayout) -> float:
    if amp.biassec is None:
        raise ReductionError(f"amplifier {amp.name}: no read noise and no overscan to "
                             "measure it on")
    section = parse_section(amp.biassec, layout.raw_shape)
    a = np.asarray(x.data if isinstance(x, CCDData) else x, dtype=np.float64)[section]
    b = np.asarray(y.data if isinstance(y, CCDData) else y, dtype=np.float64)[section]
    return read_noise_from_biases(a - np.median(a), b - np.median(b), clip_sigma=5.0).adu


def measure_amplifier_gains(f1: Sequence[CCDData | npt.ArrayLike],
                            f2: Sequence[CCDData | npt.ArrayLike], layout: AmplifierLayout,
                            *, master_bias: CCDData | npt.ArrayLike
                            ) -> list[AmplifierNumbers]:
    """Each amplifier's gain from two raw flats and the assembled master bias.

    Parameters
    ----------
    f1, f2 : sequence of CCDData or array
        The two flats' amplifier extensions (raw ADU), in layout order.
    layout : AmplifierLayout
        The amplifiers (the gains the master bias was assembled with).
    master_bias : CCDData or array
        The assembled master bias (electrons).

    Returns
    -------
    list of AmplifierNumbers
        ``gain`` in e-/ADU, and the read noise it assumed (``read_noise_adu``).
    """
    _pairs(f1, f2, layout)
    bias = np.asarray(master_bias.data if isinstance(master_bias, CCDData) else master_bias,
                      dtype=np.float32)
    out = []
    for amp, x, y in zip(layout.amplifiers, f1, f2, strict=True):
        a = prepare_amplifier(x, amp, layout, per_row=False)
        b = prepare_amplifier(y, amp, layout, per_row=False)
        used = amp.gain if amp.gain is not None else 1.0
        residual = _master_pixels(bias, amp) / np.float32(used)
        if amp.read_noise is not None and amp.gain is not None:
            rn_adu, how = amp.read_noise / amp.gain, f"read noise {amp.read_noise_source}"
        else:
            rn_adu, how = _overscan_noise(x, y, amp, layout), "read noise from the overscans"
        gain = gain_from_flats(a, b, master_bias=residual, read_noise_adu=rn_adu)
        out.append(AmplifierNumbers(amp.name, read_noise_adu=rn_adu, gain=gain,
                                    source=f"measured on two flats ({how})"))
    return out
