"""Alembic environment of the nightlog catalogue.

nightlog runs migrations programmatically (``nightlog db upgrade``), passing its
engine in ``config.attributes['engine']``; the plain ``alembic`` command works too
with ``-x url=...`` or ``NIGHTLOG_DATABASE_URL``.
"""

from __future__ import annotations

import os

from alembic import context

from nightlog.catalogue.models import Base

config = context.config
target_metadata = Base.metadata


def _engine():  # type: ignore[no-untyped-def]
    engine = config.attributes.get("engine")
    if engine is not None:
        return engine
    from nightlog.catalogue.engine import create_engine

    url = context.get_x_argument(as_dictionary=True).get("url") or os.environ.get(
        "NIGHTLOG_DATABASE_URL"
    )
    if not url:
        raise SystemExit("give the database with -x url=... or NIGHTLOG_DATABASE_URL")
    return create_engine(url)


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = _engine()
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
