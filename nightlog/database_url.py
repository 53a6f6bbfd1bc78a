"""The catalogue's URL as people write it: checked once, when the settings load.

A URL that cannot be parsed is a configuration error of one line (exit code 2)
naming the URL with its password hidden, never a traceback from deep in a
command. A password holding an unencoded ``@`` (``nightlog:S3cret@PW@host``) is
what its writer meant: the credentials end at the last ``@``, and the ``@`` of the
password is percent-encoded so that the database driver receives the password
whole and the host alone (it used to connect to host ``PW@host``, and print it).
"""

from __future__ import annotations

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from nightlog.errors import ConfigurationError
from nightlog.redaction import redact_url, split_url

__all__ = ["normalise_database_url"]


def _malformed(url: str, why: str) -> ConfigurationError:
    return ConfigurationError(f"database.url is not a valid database URL ({why}): "
                              f"{redact_url(url)}")


def normalise_database_url(url: str) -> str:
    """Return ``url`` ready for the driver, or raise a one-line error.

    Parameters
    ----------
    url : str
        A SQLAlchemy URL as written in ``[database] url`` or
        ``NIGHTLOG_DATABASE_URL``.

    Returns
    -------
    str
        ``url`` with an ``@`` inside the password percent-encoded (unchanged
        otherwise).

    Raises
    ------
    ConfigurationError
        No ``scheme://``, a port that is not a whole number from 1 to 65535, or
        anything else SQLAlchemy cannot parse. The message shows the URL with its
        password hidden and quotes no part of what could not be parsed.
    """
    parts = split_url(url)
    if parts is None or not parts.scheme:
        raise _malformed(url, "no scheme://")
    if parts.password is not None and "@" in parts.password:
        url = (f"{parts.scheme}://{parts.user}:{parts.password.replace('@', '%40')}"
               f"@{parts.rest}")
    try:
        port = make_url(url).port
    except ValueError:  # int() of the port
        raise _malformed(url, "the port is not a whole number") from None
    except ArgumentError:
        raise _malformed(url, "SQLAlchemy cannot parse it") from None
    if port is not None and not 0 < port < 65536:
        raise _malformed(url, "the port is not between 1 and 65535")
    return url
