"""Database URLs made fit to print: every password shown as ``***``.

The one place a URL with credentials is turned into text for a person: errors,
logs, ``--help`` defaults, ``nightlog db current``, the demo and the report all go
through :func:`redact_url`, and messages quoting a URL nightlog did not format
itself (a driver's error) through :func:`redact_text`.

Redaction holds for malformed URLs too, as people write them:

- the credentials end at the **last** ``@`` (a password holding an unencoded
  ``@``, ``:`` or ``/`` is hidden whole);
- a URL without ``@`` whose "port" is not a port number (1 to 65535) (``user:secret/db``, the ``@``
  forgotten) has everything after that ``:`` hidden, as it may be a password;
- a ``password=`` query parameter is hidden.
"""

from __future__ import annotations

import re
from typing import NamedTuple

__all__ = ["UrlParts", "redact_text", "redact_url", "split_url"]

_QUERY_SECRET = re.compile(r"(?i)([?&](?:password|passwd|pass|sslpassword)=)[^&#\s'\"]*")
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
_PORT = re.compile(r"(\d{1,5})(?=[/?]|$)")


class UrlParts(NamedTuple):
    """A URL cut where a person meant it: ``scheme://user:password@rest``.

    ``password`` is ``None`` when the credentials have no ``:`` (or there are none);
    ``user`` is ``None`` when there is no ``@``.
    """

    scheme: str
    user: str | None
    password: str | None
    rest: str


def split_url(url: str) -> UrlParts | None:
    """Cut ``url`` into scheme, user, password and the rest (host, port, database,
    query), the credentials ending at the last ``@``; ``None`` without ``://``.

    Never raises: the parts are as written, not decoded or checked.
    """
    scheme, sep, tail = url.partition("://")
    if not sep:
        return None
    creds, at, rest = tail.rpartition("@")
    if not at:
        return UrlParts(scheme, None, None, tail)
    user, colon, password = creds.partition(":")
    return UrlParts(scheme, user, password if colon else None, rest)


def _hide_port_without_at(scheme: str, tail: str) -> str:
    """``host:port…`` without credentials; a port that is not a number is hidden
    with everything after it (the ``@`` of ``user:password@`` may be missing)."""
    host, colon, after = tail.partition(":")
    if not colon or host.startswith("["):  # no port, or an IPv6 host: nothing to hide
        return f"{scheme}://{tail}"
    port = _PORT.match(after)
    if port and 0 < int(port.group(1)) < 65536:
        return f"{scheme}://{tail}"
    return f"{scheme}://{host}:***"


def redact_url(url: str) -> str:
    """Return ``url`` with its password (if any) shown as ``***``.

    The password of the user part (``user:password@host``, up to the last ``@``, so
    a password holding ``@`` is hidden whole), a non-numeric port of a URL without
    ``@`` (a forgotten ``@``: see the module) and a ``password=`` query parameter
    are hidden. Never raises, whatever the text.
    """
    parts = split_url(url)
    if parts is None:
        return _QUERY_SECRET.sub(r"\1***", url)
    rest = _QUERY_SECRET.sub(r"\1***", parts.rest)
    if parts.user is None:
        return _hide_port_without_at(parts.scheme, rest)
    if parts.password is None:
        return f"{parts.scheme}://{parts.user}@{rest}"
    return f"{parts.scheme}://{parts.user}:***@{rest}"


def redact_text(text: str) -> str:
    """``text`` with the password of every URL in it shown as ``***``.

    For messages that may quote a URL nightlog did not format itself (a driver's
    error, a log line with an exception).
    """
    def _one(match: re.Match[str]) -> str:
        url = match.group(0)
        bare = url.rstrip(".,:;)]}")  # punctuation of the sentence, not of the URL
        return redact_url(bare) + url[len(bare):]

    return _URL_IN_TEXT.sub(_one, text)
