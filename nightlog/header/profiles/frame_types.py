"""The frame-type vocabulary: which raw type words mean a bias, a dark, a flat or
science.

A header's type value (``IMAGETYP = 'Light Frame'``) is compared with a profile's
``frame_types`` words in :func:`vocabulary_form`: upper case with spaces, ``_`` and
``-`` removed, so ``'Bias Frame'``, ``'BIAS_FRAME'`` and ``'biasframe'`` are alike.
A value in no kind's list is ``'unknown'``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

__all__ = ["DEFAULT_FRAME_TYPES", "classify_frame_type", "vocabulary_form"]

#: The words of each frame kind a profile knows unless its ``frame_types`` says more.
DEFAULT_FRAME_TYPES: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "bias": ("BIAS", "ZERO", "Bias Frame", "Zero Frame"),
    "dark": ("DARK", "Dark Frame"),
    "flat": ("FLAT", "FLATFIELD", "Flat Field", "Flat Frame", "SKYFLAT", "DOMEFLAT",
             "TWIFLAT", "Sky Flat", "Dome Flat", "Twilight Flat"),
    "science": ("OBJECT", "LIGHT", "Light Frame", "SCIENCE", "SCI"),
})


def vocabulary_form(text: str) -> str:
    """The form in which frame-type words are compared (upper case, no separators)."""
    return re.sub(r"[\s_\-]+", "", text).upper()


def classify_frame_type(raw_type: str | None,
                        frame_types: Mapping[str, tuple[str, ...]]) -> str:
    """Frame kind of a raw type value in the vocabulary ``frame_types``: ``'bias'``,
    ..., or ``'unknown'`` (also for ``None``)."""
    if raw_type is None:
        return "unknown"
    form = vocabulary_form(raw_type)
    for kind, words in frame_types.items():
        if any(form == vocabulary_form(w) for w in words):
            return kind
    return "unknown"
