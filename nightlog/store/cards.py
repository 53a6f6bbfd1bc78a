"""Fast reading of header cards, exactly as astropy reads them.

Ingesting thousands of small files is dominated by astropy's per-card parsing.
Most cards are plain ``KEYWORD = value / comment`` with a quoted string, an
integer, a real or a logical; those are parsed here directly. Every other card
(CONTINUE, HIERARCH, complex values, anything unusual such as the LFC's unescaped
quote in ``FILTER``) makes the whole header go to astropy, so the values are
always the ones astropy gives (a test compares both on every card of the test
headers and on generated ones).
"""

from __future__ import annotations

import math
import re
from typing import Any

__all__ = ["parse_card", "parse_cards"]

_CARD = 80
# Strings with quotes or slashes inside go to astropy, whose reading of them is the
# reference even where it is debatable.
_STRING = re.compile(r"^ *'([^'/]*)' *(?:/ ?(.*))?$")
_ANY_STRING = re.compile(r"^ *'((?:[^']|'')*)' *(?:/ ?(.*))?$", re.DOTALL)
_INT = re.compile(r"^ *([+-]?\d+) *(?:/ ?(.*))?$")
_REAL = re.compile(r"^ *([+-]?(?:\d+\.?\d*|\.\d+)(?:[EeDd][+-]?\d+)?) *(?:/ ?(.*))?$")
_BOOL = re.compile(r"^ *([TF]) *(?:/ ?(.*))?$")
_COMMENTARY = {"COMMENT", "HISTORY", ""}


def _fast(image: str) -> tuple[str, Any, str] | None:
    keyword = image[:8].rstrip()
    if keyword in _COMMENTARY:
        return keyword, image[8:].rstrip(), ""
    if image[8:10] != "= " or not keyword.isascii() or keyword.startswith("HIERARCH"):
        return None
    field = image[10:].rstrip()
    if field.count("'") not in (0, 2):
        return None  # escaped quotes or quotes in the comment: astropy decides
    if (m := _STRING.match(field)) is not None:
        # Only trailing blanks are insignificant in FITS; a control character a
        # broken camera wrote at the end is part of the value.
        value: Any = m.group(1).rstrip(" ")
    elif (m := _BOOL.match(field)) is not None:
        value = m.group(1) == "T"
    elif (m := _INT.match(field)) is not None:
        value = int(m.group(1))
    elif (m := _REAL.match(field)) is not None:
        text = m.group(1).replace("D", "E").replace("d", "e")
        value = float(text)
        if math.isinf(value):  # 1E400: kept as text, so a reason can quote it
            value = text
    else:
        return None
    return keyword, value, (m.group(2) or "").strip()


def parse_card(image: str) -> tuple[str, Any, str] | None:
    """``(keyword, value, comment)`` of one plain card image, or ``None`` when it is
    not one of the simple forms (the caller keeps its text as written)."""
    image = image.ljust(_CARD)[:_CARD]
    fast = _fast(image)
    if fast is not None or image[8:10] != "= ":
        return fast
    # A quoted string holding slashes or doubled quotes (with characters astropy
    # refuses, such as control characters).
    if (m := _ANY_STRING.match(image[10:].rstrip(" "))) is None:
        return None
    return image[:8].rstrip(), m.group(1).replace("''", "'").rstrip(" "), (m.group(2) or "").strip()


def parse_cards(header_bytes: bytes) -> list[tuple[str, Any, str]] | None:
    """``(keyword, value, comment)`` of every card up to ``END``, in order, or
    ``None`` when any card needs astropy (the caller then parses the header with it).

    Values are those astropy gives: strings without trailing blanks, ``int``,
    ``float``, ``bool``; commentary cards carry their text as the value.
    """
    text = header_bytes.decode("ascii", "replace")
    cards: list[tuple[str, Any, str]] = []
    for i in range(0, len(text), _CARD):
        image = text[i : i + _CARD]
        if image.rstrip() == "END":
            return cards
        if not image.strip():
            cards.append(("", "", ""))  # astropy keeps blank cards too
            continue
        parsed = _fast(image)
        if parsed is None or parsed[0] == "CONTINUE":
            return None
        cards.append(parsed)
    return None
