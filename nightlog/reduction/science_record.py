"""What a science reduction returns: the reduced frame, its bit plane, and the record
of each step that made it (for provenance), with the recorder that times the steps.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from astropy.nddata import CCDData

from nightlog.reduction.bad_pixels import BitPlane

__all__ = ["ReducedFrame", "StepRecord", "StepRecorder"]


@dataclass(frozen=True)
class StepRecord:
    """What one step did, for provenance.

    Attributes
    ----------
    name : str
        ``saturation``, ``overscan``, ``trim``, ``bias``, ``uncertainty``, ``dark``,
        ``flat``, ``bad_pixels`` or ``cosmic_rays``.
    applied : bool
        ``False`` when the step was skipped (switched off or no master).
    parameters : mapping
        The settings the step ran with.
    summary : mapping
        Numbers describing the outcome (levels in ADU, pixel counts, ...), or the
        reason for a skip.
    seconds : float
        Wall-clock time the step took.
    """

    name: str
    applied: bool
    parameters: Mapping[str, Any]
    summary: Mapping[str, Any]
    seconds: float


@dataclass(frozen=True)
class ReducedFrame:
    """The reduced frame, its bit mask, and the steps that made it.

    Attributes
    ----------
    ccd : CCDData
        float32 data in ADU, :class:`~astropy.nddata.StdDevUncertainty` (ADU),
        boolean ``mask`` (any bit set) and ``flags`` (the bit plane).
    bits : ndarray of uint16
        :class:`~nightlog.reduction.mask.MaskBit` plane.
    steps : tuple of StepRecord
        In the order they ran.
    """

    ccd: CCDData
    bits: BitPlane
    steps: tuple[StepRecord, ...]


class StepRecorder:
    """Times steps and collects their records (one reduction)."""

    def __init__(self) -> None:
        self.steps: list[StepRecord] = []
        self.skipped: list[str] = []

    def step(self, name: str, parameters: Mapping[str, Any],
             action: Callable[[], tuple[CCDData, Mapping[str, Any]]]) -> CCDData:
        start = time.perf_counter()
        ccd, summary = action()
        self.steps.append(StepRecord(name, True, dict(parameters), dict(summary),
                                     time.perf_counter() - start))
        return ccd

    def skip(self, name: str, parameters: Mapping[str, Any], reason: str) -> None:
        self.steps.append(StepRecord(name, False, dict(parameters), {"reason": reason}, 0.0))
        self.skipped.append(f"{name}: {reason}")
