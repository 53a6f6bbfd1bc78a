"""HTML that escapes by construction: text is escaped unless it is already markup.

A :class:`Markup` is a string known to be safe HTML (made here, from escaped
pieces). :func:`fill` puts values into a template: every value that is not
``Markup`` is escaped with :func:`html.escape` (quotes included) and its control
characters written as their escapes (``\\x1b``), so a header's ``OBJECT =
'<script>...'`` shows as text wherever it lands, inside an element or an
attribute. Templates are code, never data: only a literal of this package is a
template.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any

__all__ = ["Markup", "escape", "fill", "join"]


class Markup(str):
    """A string of safe HTML (built by :func:`fill`, :func:`join` or :func:`escape`)."""

    __slots__ = ()


def _visible(text: str) -> str:
    # A NUL or an escape sequence is not text a browser shows faithfully.
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def escape(value: object) -> Markup:
    """``value`` as HTML text: ``Markup`` unchanged, ``None`` empty, anything else
    its ``str`` escaped (quotes too), control characters as ``\\xNN``."""
    if isinstance(value, Markup):
        return value
    if value is None:
        return Markup("")
    return Markup(html.escape(_visible(str(value)), quote=True))


def fill(template: str, **values: Any) -> Markup:
    """``template`` with each ``{name}`` replaced by ``escape(values[name])``.

    Raises
    ------
    KeyError
        The template names a value that is not given.
    """
    return Markup(template.format_map({k: escape(v) for k, v in values.items()}))


def join(parts: Iterable[object], sep: str = "") -> Markup:
    """The pieces, each escaped unless it is ``Markup``, joined by ``sep`` (markup)."""
    return Markup(sep.join(escape(p) for p in parts))
