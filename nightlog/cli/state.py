"""What every command shares: the settings and the catalogue engine, built lazily.

The root callback stores the ``--config`` choice; a command asks for the settings
or the engine when it needs them, so ``--help`` and commands that need no
database never touch one. One engine per process. The settings and the engine's
modules are imported when first asked for, so that ``--help`` starts at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from nightlog.errors import CatalogueError

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from nightlog.settings import Settings

__all__ = ["CliState", "state_of"]


@dataclass
class CliState:
    """Per-invocation state of the CLI."""

    config_path: Path | None = None
    _settings: Settings | None = field(default=None, repr=False)
    _engine: Engine | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from nightlog.settings import load_settings

            self._settings = load_settings(self.config_path)
        return self._settings

    def engine(self, *, must_exist: bool = False, check_schema: bool = True) -> Engine:
        """The catalogue engine; its schema checked (an empty catalogue is created).

        ``must_exist`` refuses to create a SQLite file that is not there yet
        (read-only commands should not leave an empty database behind).
        """
        if self._engine is None:
            from sqlalchemy.exc import DBAPIError

            from nightlog.catalogue.engine import create_engine, sqlite_path
            from nightlog.catalogue.schema import ensure_schema

            url = self.settings.database_url
            path = sqlite_path(url)
            if must_exist and path is not None and not path.exists():
                raise CatalogueError(
                    f"no catalogue at {path}; ingest some files first "
                    "('nightlog ingest PATH') or give --config"
                )
            self._engine = create_engine(url, busy_timeout_ms=round(
                1000 * self.settings.database.busy_timeout_seconds))
            if check_schema:
                try:
                    ensure_schema(self._engine)
                except DBAPIError as exc:
                    first = str(exc.orig or exc).strip().splitlines()[:1]
                    raise CatalogueError(
                        f"cannot use the catalogue at {self.settings.safe_database_url}: "
                        f"{first[0] if first else type(exc).__name__}") from exc
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


def state_of(ctx: typer.Context) -> CliState:
    """The :class:`CliState` of this invocation."""
    root = ctx.find_root()
    if not isinstance(root.obj, CliState):
        root.obj = CliState()
    return root.obj
