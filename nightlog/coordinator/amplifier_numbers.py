"""A master build's view of a multi-amplifier group: its first amplifier for the level
checks, and each amplifier's read noise (biases) or gain (flats) measured."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from nightlog.calibration.input_checks import CalibrationInput
from nightlog.coordinator.amplifier_frames import read_amplifiers
from nightlog.errors import NightlogError
from nightlog.header.amplifiers import AmplifierLayout
from nightlog.reduction.amplifier_numbers import (
    measure_amplifier_gains,
    measure_amplifier_read_noise,
)

__all__ = ["characterise_amplifiers", "first_amplifier"]


def first_amplifier(frame: CalibrationInput) -> CalibrationInput:
    """``frame`` as its first amplifier's extension (raw sections, saturation), for the
    checks that read a region of raw pixels; ``frame`` itself when single-image."""
    if frame.amplifiers is None:
        return frame
    layout = AmplifierLayout.from_json(frame.amplifiers)
    amp = layout.amplifiers[0]
    return dataclasses.replace(frame, hdu=amp.hdu, naxis1=layout.raw_shape[1],
                               naxis2=layout.raw_shape[0], biassec=amp.biassec,
                               datasec=amp.datasec, trimsec=None,
                               saturation=amp.saturation or frame.saturation)


def characterise_amplifiers(kind: str, frames: Sequence[CalibrationInput], bias: Any
                            ) -> dict[str, Any]:
    """Per-amplifier read noise from the first two biases, gain from the first two flats.

    ``read_noise_adu`` (what the reduction takes when nothing else gives a read
    noise) is the amplifiers' root mean square in electrons: the unit of the
    assembled image, whose gain is 1.
    """
    layout = AmplifierLayout.from_json(frames[0].amplifiers or {})
    try:
        a = read_amplifiers(frames[0].path, layout)
        b = read_amplifiers(frames[1].path, layout)
        if kind == "bias":
            numbers = measure_amplifier_read_noise(a, b, layout)
            electrons = [n.read_noise_e for n in numbers]
            figures: dict[str, Any] = {
                "amplifiers": [dataclasses.asdict(n) for n in numbers]}
            if all(e is not None for e in electrons):
                rms = (sum(e * e for e in electrons if e is not None) / len(electrons)) ** 0.5
                figures.update(read_noise_adu=rms, read_noise_e=rms)
            return figures
        if kind == "flat" and bias is not None:
            numbers = measure_amplifier_gains(a, b, layout, master_bias=bias)
            return {"amplifiers": [dataclasses.asdict(n) for n in numbers]}
    except NightlogError as exc:
        return {"characterisation_error": str(exc)}
    return {}
