"""What a subarray frame's reduction plan adds: the crops, the cards, the provenance.

The calibration manager has chosen the masters (the ``window`` rule of
:mod:`~nightlog.calibration.windows`); here the crop of each full-frame master goes
into the job, and the product is told where it lies on the detector:

- ``WINDOW``: the section of the full readout (at the frame's binning) the
  product's pixels cover, ``XORGSUBF``/``YORGSUBF`` its origin (binned pixels from
  0, the MaxIm DL convention) and ``LTV1``/``LTV2`` the IRAF offsets
  (physical = logical - LTV, the physical frame being the full readout);
- ``NLCROP``: the masters cropped to it, each named with its crop in the
  ``PROVENANCE`` table (the ``reason`` column) and in the catalogue's parameters
  (the reduction core adds ``WINCROPB``/``D``/``F`` and a HISTORY line per crop).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from nightlog.calibration.windows import crop_section, frame_data_origin, window_verdict
from nightlog.catalogue.models import Frame, Master
from nightlog.header.profiles import InstrumentProfile
from nightlog.reduction.products import ProvenanceEntry

__all__ = ["crop_section", "cropped_entries", "master_crops", "window_cards", "window_record"]

Crop = tuple[int, int, int, int]


def master_crops(frame: Frame, chosen: dict[str, Master | None], profile: InstrumentProfile
                 ) -> dict[str, Crop]:
    """The crop of each chosen full-frame master serving ``frame``'s window, by role."""
    crops: dict[str, Crop] = {}
    for role, master in chosen.items():
        if master is None:
            continue
        verdict = window_verdict(frame, master, role, profile)
        if verdict is not None and verdict.crop is not None:
            crops[role] = verdict.crop
    return crops


def window_cards(frame: Frame, sections: dict[str, str]) -> list[tuple[str, Any, str]]:
    """Header cards of a windowed frame's product (none for a full frame)."""
    data = frame_data_origin(frame)
    if data is None:
        return []
    x0, y0, nx, ny = data
    cards: list[tuple[str, Any, str]] = [
        ("WINDOW", f"[{x0 + 1}:{x0 + nx},{y0 + 1}:{y0 + ny}]",
         "section of the full readout (binned) covered"),
        ("XORGSUBF", x0, "Subframe X position in binned pixels"),
        ("YORGSUBF", y0, "Subframe Y position in binned pixels"),
        ("LTV1", -x0, "physical = logical - LTV1 (full readout)"),
        ("LTV2", -y0, "physical = logical - LTV2 (full readout)"),
    ]
    if sections:
        cards.append(("NLCROP", ",".join(sorted(sections)),
                      "full-frame masters cropped to the window"))
    return cards


def cropped_entries(entries: Iterable[ProvenanceEntry], sections: dict[str, str]
                    ) -> list[ProvenanceEntry]:
    """``entries`` with each cropped master's crop in its ``reason``."""
    return [dataclasses.replace(e, reason=f"cropped to {sections[e.step]}")
            if e.step in sections else e for e in entries]


def window_record(frame: Frame, sections: dict[str, str]) -> dict[str, Any]:
    """The product parameters' ``window`` entry (empty for a full frame)."""
    data = frame_data_origin(frame)
    if frame.window is None or data is None:
        return {}
    x0, y0, nx, ny = data
    return {"raw": frame.window, "product": f"[{x0 + 1}:{x0 + nx},{y0 + 1}:{y0 + ny}]",
            "crops": dict(sorted(sections.items()))}
