"""The converters of a profile table's plain values: each checks one value and
names the profile and the key in its :class:`~nightlog.errors.ProfileError`."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from nightlog.errors import ProfileError, SectionError
from nightlog.sections import parse_section

_KEYWORD_RE = re.compile(r"^[A-Z0-9_\-]{1,8}$|^HIERARCH [A-Z0-9_\- .]+$")
# Any real image is smaller; used only to check a section's syntax without a shape.
_ANY_SHAPE = (10**9, 10**9)


def _err(name: str, key: str, message: str) -> ProfileError:
    return ProfileError(f"instrument profile {name!r}, key {key!r}: {message}")


def _string(name: str, key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise _err(name, key, f"expected a string, not {type(value).__name__}")
    return value


def _keyword(name: str, key: str, value: Any) -> str:
    text = _string(name, key, value).strip().upper()
    if not _KEYWORD_RE.match(text):
        raise _err(name, key, f"{value!r} is not a FITS keyword name")
    return text


def _keywords(name: str, key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise _err(name, key, "expected a list of keyword names")
    return tuple(_keyword(name, key, v) for v in value)


def _strings(name: str, key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise _err(name, key, "expected a list of strings")
    return tuple(_string(name, key, v) for v in value)


def _bool(name: str, key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _err(name, key, f"expected true or false, not {value!r}")
    return value


def _int(name: str, key: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _err(name, key, f"expected a whole number >= {minimum}, not {value!r}")
    return value


def _float(name: str, key: str, value: Any, *, lo: float, hi: float = math.inf,
           lo_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _err(name, key, f"expected a number, not {value!r}")
    number = float(value)
    too_low = number <= lo if lo_open else number < lo
    if not math.isfinite(number) or too_low or number > hi:
        bound = f"> {lo}" if lo_open else f">= {lo}"
        raise _err(name, key, f"{value!r} out of range (must be {bound}"
                   + (f" and <= {hi})" if math.isfinite(hi) else ")"))
    return number


def _bit_depth(name: str, key: str, value: Any) -> int:
    number = _int(name, key, value, 1)
    if number > 16:
        raise _err(name, key, f"{number} bits: values are stored in 16-bit integers")
    return number


def _fraction(name: str, key: str, value: Any, *, zero_is_none: bool = False
              ) -> float | None:
    """A fraction in (0, 1) (of a median or a neighbourhood's response); ``0`` is
    ``None`` (switched off) when ``zero_is_none``."""
    if zero_is_none and not isinstance(value, bool) and value == 0:
        return None
    number = _float(name, key, value, lo=0.0, hi=1.0, lo_open=True)
    if number == 1.0 and not zero_is_none:
        raise _err(name, key, "1 would flag every pixel: give a fraction below 1")
    return number


def _region(name: str, key: str, value: Any, *, literal_only: bool = False) -> str | None:
    text = _string(name, key, value).strip()
    if not text:
        return None
    if text.startswith("["):
        try:
            parse_section(text, _ANY_SHAPE)
        except SectionError as exc:
            raise _err(name, key, str(exc)) from None
        return text
    if literal_only:
        raise _err(name, key, f"expected a FITS section such as '[1:100,1:100]', not {text!r}")
    return _keyword(name, key, text)


def _choice(choices: tuple[str, ...]) -> Callable[[str, str, Any], str]:
    def convert(name: str, key: str, value: Any) -> str:
        text = _string(name, key, value)
        if text not in choices:
            raise _err(name, key, f"{text!r}; known: {', '.join(choices)}")
        return text

    return convert
