"""A header's gain or read noise against what the master measured: more than 10 % apart
is a warning.

A camera's ``GAIN`` and ``RDNOISE`` keywords are often a manufacturer's nominal
figures, or a controller's that was since changed (the simulated LFC writes GAIN =
1.1 for a true 2.37 e⁻/ADU). A master flat measures the gain by photon transfer
(``gain_ptc``) and a master bias the read noise on a pair of its biases
(``read_noise_adu``); when the header of the master's first frame says otherwise by
more than :data:`TOLERANCE`, the master records a warning (``header_disagrees`` in
its statistics) that ``calib build``, ``calib history`` and the night report show.
The read noise is compared in ADU: the header's electrons divided by the header's
gain, else the profile's. A converter of fewer than 16 bits whose values are shifted
up to 16 (the profile's ``bit_depth``) writes its gain per converter unit (ZWO's
``EGAIN``): a header gain is then also read per stored ADU, divided by the step,
and the nearer of the two is compared. A master in electrons (a multi-amplifier
detector's, assembled after each amplifier's gain) is compared in e⁻ instead, with
the amplifier whose measured read noise is nearest (the header is one extension's).

Pure: header cards and statistics in, warnings out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["TOLERANCE", "header_disagreements", "header_numbers"]

#: Relative difference above which a header's figure disagrees with the measurement.
TOLERANCE = 0.10


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def header_numbers(cards: Iterable[Any] | None, gain_keywords: Sequence[str],
                   read_noise_keywords: Sequence[str]) -> dict[str, tuple[str, float]]:
    """``{'gain': (keyword, e⁻/ADU), 'read_noise': (keyword, e⁻)}`` from a frame's
    original header cards (``[keyword, value, comment]`` lists): the first of the
    profile's keywords with a positive number; a number no keyword gives is left out."""
    present: dict[str, Any] = {}
    for card in cards or ():
        if isinstance(card, list | tuple) and len(card) >= 2:
            present.setdefault(str(card[0]).upper(), card[1])
    out: dict[str, tuple[str, float]] = {}
    for name, keywords in (("gain", gain_keywords), ("read_noise", read_noise_keywords)):
        for keyword in keywords:
            value = _number(present.get(keyword.upper()))
            if value is not None:
                out[name] = (keyword.upper(), value)
                break
    return out


def _apart(header: float, measured: float) -> float:
    return abs(header - measured) / measured


def _readings(gain: float, step: float | None) -> list[float]:
    """A header gain per stored ADU: as written, and per converter unit shifted by
    ``step`` (> 1) stored ADU."""
    return [gain, gain / step] if step is not None and step > 1 else [gain]


def header_disagreements(kind: str, stats: Mapping[str, Any],
                         header: Mapping[str, tuple[str, float]],
                         profile_gain: float | None = None,
                         step: float | None = None) -> list[dict[str, Any]]:
    """The header's figures more than :data:`TOLERANCE` from the master's measurement.

    Parameters
    ----------
    kind : {'bias', 'dark', 'flat'}
        The master's kind: a flat checks the gain, a bias the read noise.
    stats : mapping
        The master's statistics (``gain_ptc``; ``read_noise_adu``).
    header : mapping
        :func:`header_numbers` of its first frame.
    profile_gain : float or None
        The profile's gain (e⁻/ADU), converting a header read noise to ADU when the
        header gives no gain.
    step : float or None
        Stored ADU per converter unit (``2**(16 - bit_depth)``): a header gain may be
        per converter unit.

    Returns
    -------
    list of dict
        One per disagreement: ``number`` (``'gain'`` or ``'read_noise'``),
        ``keyword``, ``header`` and ``measured`` (the read noise in ADU),
        ``unit`` and ``message``.
    """
    out: list[dict[str, Any]] = []
    if kind == "flat" and "gain" in header:
        measured = _number(stats.get("gain_ptc"))
        keyword, written = header["gain"]
        value = written if measured is None else min(
            _readings(written, step), key=lambda g: _apart(g, measured))
        if measured is not None and _apart(value, measured) > TOLERANCE:
            out.append({"number": "gain", "keyword": keyword, "header": value,
                        "measured": measured, "unit": "e-/ADU",
                        "message": f"header {keyword} = {written:.4g} e-/ADU"
                                   + ("" if value == written else
                                      f" ({value:.4g} per stored ADU)")
                                   + f" but photon transfer measured {measured:.4g} "
                                   f"e-/ADU ({_apart(value, measured):.0%} apart)"})
    if kind == "bias" and "read_noise" in header and stats.get("level_unit") == "e-":
        out += _electron_read_noise(stats, header["read_noise"])
    elif kind == "bias" and "read_noise" in header:
        measured = _number(stats.get("read_noise_adu"))
        keyword, electrons = header["read_noise"]
        gains = (_readings(header["gain"][1], step) if "gain" in header
                 else [g for g in [_number(profile_gain)] if g is not None])
        if measured is not None and gains:
            gain = min(gains, key=lambda g: _apart(electrons / g, measured))
            value = electrons / gain
            if _apart(value, measured) > TOLERANCE:
                out.append({"number": "read_noise", "keyword": keyword, "header": value,
                            "measured": measured, "unit": "ADU",
                            "message": f"header {keyword} = {electrons:.4g} e- "
                                       f"({value:.4g} ADU at {gain:.4g} e-/ADU) but a pair "
                                       f"of biases measured {measured:.4g} ADU "
                                       f"({_apart(value, measured):.0%} apart)"})
    return out


def _electron_read_noise(stats: Mapping[str, Any], card: tuple[str, float]
                         ) -> list[dict[str, Any]]:
    """A master in electrons (a multi-amplifier detector's, assembled after each
    amplifier's gain): the header's read noise, in e⁻, against the amplifier whose
    measured read noise is nearest (the header is one extension's), else the
    master's own figure, which is then in e⁻ too."""
    keyword, electrons = card
    amps = stats.get("amplifiers")
    found = [_number(a.get("read_noise_e")) for a in amps if isinstance(a, Mapping)] \
        if isinstance(amps, list) else []
    candidates = [m for m in found if m] or [m for m in [_number(stats.get("read_noise_adu"))]
                                              if m]
    if not candidates:
        return []
    measured = min(candidates, key=lambda m: _apart(electrons, m))
    if _apart(electrons, measured) <= TOLERANCE:
        return []
    return [{"number": "read_noise", "keyword": keyword, "header": electrons,
             "measured": measured, "unit": "e-",
             "message": f"header {keyword} = {electrons:.4g} e- but a pair of biases "
                        f"measured {measured:.4g} e- ({_apart(electrons, measured):.0%} "
                        "apart)"}]
