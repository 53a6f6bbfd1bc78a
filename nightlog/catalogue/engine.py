"""One engine per process, configured for the backend.

SQLite runs in WAL mode with foreign keys on and a busy timeout, so a watching
daemon and a CLI query can share one file, with a page cache of up to 64 MB a
connection. PostgreSQL connects through psycopg 3.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy import create_engine as _sa_create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker

from nightlog.errors import CatalogueError, ConfigurationError
from nightlog.redaction import redact_url

__all__ = ["create_engine", "is_sqlite", "make_sessionmaker", "sqlite_path"]

SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_CACHE_KIB = 64 * 1024  # per connection, allocated as pages are read


def _normalise_url(url: str) -> str:
    # A bare postgresql:// URL would pick psycopg2; nightlog ships with psycopg 3.
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def sqlite_path(url: str) -> Path | None:
    """File of a SQLite URL, or ``None`` for other backends and in-memory databases."""
    parsed = make_url(_normalise_url(url))
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    if parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def is_sqlite(engine: Engine) -> bool:
    """Whether ``engine`` talks to SQLite."""
    return engine.dialect.name == "sqlite"


def _on_sqlite_connect(dbapi_connection: Any, _record: Any, *, busy_timeout_ms: int) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # The default page cache (2 MB) is smaller than the indexes of frames of a
        # catalogue of years: each insert would read their pages from the file.
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
    finally:
        cursor.close()


def create_engine(url: str, *, echo: bool = False,
                  busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS) -> Engine:
    """Create the process's engine for ``url``.

    ``busy_timeout_ms`` is how long a SQLite statement waits for a lock held by
    another process before it fails (and the unit of work is retried, see
    :mod:`nightlog.coordinator.retry`).

    Raises
    ------
    ConfigurationError
        The URL is malformed or names a driver that is not installed.
    CatalogueError
        The SQLite file's folder does not exist and cannot be created.
    """
    url = _normalise_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigurationError(f"invalid database URL {redact_url(url)}: {exc}") from exc
    kwargs: dict[str, Any] = {"echo": echo, "future": True}
    if parsed.get_backend_name() == "sqlite":
        path = sqlite_path(url)
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise CatalogueError(f"cannot create folder for {path}: {exc}") from exc
    else:
        kwargs["pool_pre_ping"] = True
    try:
        engine = _sa_create_engine(url, **kwargs)
    except (NoSuchModuleError, ModuleNotFoundError) as exc:
        raise ConfigurationError(
            f"no driver for {redact_url(url)}: {exc}. For PostgreSQL install 'nightlog[postgres]'."
        ) from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect",
                     functools.partial(_on_sqlite_connect, busy_timeout_ms=busy_timeout_ms))
    return engine


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions for units of work; ``expire_on_commit`` off so results outlive commits."""
    return sessionmaker(engine, expire_on_commit=False)
