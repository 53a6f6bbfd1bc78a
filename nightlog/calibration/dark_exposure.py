"""How a master dark meets a frame's exposure, as the profile's ``dark_scaling`` says.

``linear``
    the dark is a rate (ADU/s), scaled to the frame's exposure: right while dark
    current grows linearly with time (CCDs, most cooled cameras);
``exact_exposure``
    a master dark of the frame's exposure (within the policy's
    ``dark_exptime_tolerance``) and no other: a CMOS camera's amplifier glow grows
    faster than linearly, so a scaled dark leaves the glow's excess in the corner;
``interpolate``
    a master of the frame's exposure when there is one, else the two masters whose
    exposures bracket it, nearest on each side, combined pixel by pixel linearly
    in exposure time (:func:`~nightlog.reduction.calibrate.interpolate_dark`).
    Never extrapolated: a frame longer or shorter than every master gets none,
    and the reason says so.

Among masters of the same exposure the usual order decides (nearest in time, same
night, more frames, newer version). The choice says how it was made; ``nightlog
match`` shows that sentence.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from nightlog.catalogue.models import Frame, Master

__all__ = ["DarkChoice", "choose_dark", "how_linear"]


@dataclass(frozen=True, slots=True)
class DarkChoice:
    """The master dark (and the second one of an interpolation) and how."""

    chosen: Master | None
    second: Master | None
    how: str
    reason: str = ""


def how_linear(frame: Frame) -> str:
    """The sentence of a dark rate scaled to the frame."""
    return f"linear: the master dark rate scaled to the frame's {frame.exptime or 0:g} s"


def _exposure(master: Master) -> float | None:
    return None if master.exptime is None else float(master.exptime)


def choose_dark(usable: Sequence[Any], frame: Frame, scaling: str, tolerance: float, *,
                allow_pair: bool, order: Callable[[Any], Any]) -> DarkChoice:
    """Choose among ``usable`` candidates (every other rule passed) for ``frame``.

    Parameters
    ----------
    usable : sequence of Candidate
        Candidates with ``.master``, already passing every rule but exposure for
        ``interpolate``.
    frame : Frame
        The frame calibrated.
    scaling : {'exact_exposure', 'interpolate'}
        The profile's ``dark_scaling``.
    tolerance : float
        Relative exposure tolerance (the policy's ``dark_exptime_tolerance``).
    allow_pair : bool
        Whether two darks may be interpolated (science frames; a flat's build
        takes one dark, so flats need an exact one).
    order : callable
        Sort key of candidates (best first).
    """
    t = float(frame.exptime or 0.0)
    tol = tolerance * max(abs(t), 1e-9)
    ranked = sorted(usable, key=order)
    exact = [c for c in ranked if (e := _exposure(c.master)) is not None and abs(e - t) <= tol]
    if exact:
        e = _exposure(exact[0].master)
        return DarkChoice(exact[0].master, None,
                          f"exact exposure: the {e:g} s master dark for a {t:g} s frame")
    exposures = sorted({e for c in ranked if (e := _exposure(c.master)) is not None})
    have = ", ".join(f"{e:g} s" for e in exposures) or "none"
    if scaling != "interpolate" or not allow_pair:
        why = ("" if scaling != "interpolate"
               else " (interpolating two darks is for science frames)")
        return DarkChoice(None, None, "", f"no master dark of {t:g} s{why}; exposures: {have}")
    below = [e for e in exposures if e < t]
    above = [e for e in exposures if e > t]
    if not below or not above:
        return DarkChoice(None, None, "",
                          f"no master dark of {t:g} s and none on both sides to interpolate "
                          f"(never extrapolated); exposures: {have}")
    low, high = below[-1], above[0]
    lower = next(c.master for c in ranked if _exposure(c.master) == low)
    upper = next(c.master for c in ranked if _exposure(c.master) == high)
    weight = (t - low) / (high - low)
    return DarkChoice(lower, upper,
                      f"interpolated: the {low:g} s and {high:g} s master darks for a "
                      f"{t:g} s frame (weights {1 - weight:.3f} and {weight:.3f})")
