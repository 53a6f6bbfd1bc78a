"""Database URLs made fit to print: every password shown as ``***``.

The one place a URL with credentials is turned into text for a person: errors,
logs, ``--help`` defaults, ``nightlog db current``, the demo and the report all go
through :func:`redact_url`, and messages quoting a URL nightlog did not format
itself (a driver's error) through :func:`redact_text`.
"""

from __future__ import annotations

import re

__all__ = ["redact_text", "redact_url"]

_QUERY_SECRET = re.compile(r"(?i)([?&](?:password|passwd|pass|sslpassword)=)[^&#\s'\"]*")
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def redact_url(url: str) -> str:
    """Return ``url`` with its password (if any) shown as ``***``.

    The password of the user part (``user:password@host``, a password holding
    ``@`` included) and a ``password=`` query parameter are hidden. This is the
    one place a database URL is made fit to print: errors, logs, ``--help``,
    ``nightlog db current`` and the demo all go through it.
    """
    url = _QUERY_SECRET.sub(r"\1***", url)
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, at, host = rest.rpartition("@")
    if ":" in creds:
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***{at}{host}"
    return url


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
