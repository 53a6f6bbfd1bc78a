"""A daemon's start with the catalogue away: wait for it, as for any outage.

``nightlog watch`` is started by systemd at boot, often before the database
server is up. Rather than exit, it checks the catalogue's schema (creating it in
an empty database) with the same capped backoff and log lines as an outage during
the night (``event: db-retry``, then ``db-recovered``). A schema that is out of
date or a database that is not nightlog's is no outage: that is reported at once.
"""

from __future__ import annotations

import threading

from sqlalchemy import Engine

from nightlog.catalogue.schema import ensure_schema
from nightlog.coordinator.retry import call_with_retry
from nightlog.daemon.options import WatchOptions

__all__ = ["wait_for_catalogue"]


def wait_for_catalogue(engine: Engine, options: WatchOptions, stop: threading.Event) -> str:
    """Check (or create) the catalogue's schema, waiting while it is unreachable.

    Parameters
    ----------
    engine : Engine
        The daemon's catalogue.
    options : WatchOptions
        Its ``backoff_first`` and ``backoff_cap`` pace the retries.
    stop : threading.Event
        Set (by a signal) to give up waiting.

    Returns
    -------
    str
        The schema revision.

    Raises
    ------
    Stopped
        ``stop`` was set while waiting.
    SchemaOutOfDateError, CatalogueError
        The catalogue answers but cannot be used as it is.
    """
    return call_with_retry(lambda: ensure_schema(engine), stop=stop,
                           first=options.backoff_first, cap=options.backoff_cap,
                           what="catalogue")
