"""Schema versions: alembic upgrades, the current revision and the guard.

The alembic tree lives at the top of the source tree in ``migrations/`` and is
mapped into the wheel as ``nightlog/_migrations``, so an installed nightlog can
migrate a database without its sources. Every command except ``nightlog db``
calls :func:`ensure_schema`, which creates an empty catalogue at the newest
revision and refuses one whose schema is behind.

A catalogue at the newest revision, the case of every command but the first, is
recognised without importing alembic (a large import for a read-only command): the
revisions are read from the migration files as text and the catalogue's from its
``alembic_version`` table. Anything else (an empty catalogue, a revision behind or
unknown, files this quick reading does not follow) is alembic's to judge.
"""

from __future__ import annotations

import ast
import re
from importlib import resources
from pathlib import Path

from sqlalchemy import Engine, inspect, text

from nightlog.errors import CatalogueError, SchemaOutOfDateError

__all__ = [
    "current_revision",
    "ensure_schema",
    "head_revision",
    "migrations_dir",
    "upgrade",
]


def migrations_dir() -> Path:
    """Folder of the alembic environment (installed copy first, then the source tree)."""
    installed = Path(str(resources.files("nightlog"))) / "_migrations"
    if (installed / "env.py").is_file():
        return installed
    source = Path(__file__).resolve().parents[2] / "migrations"
    if (source / "env.py").is_file():
        return source
    raise CatalogueError(
        "the alembic migrations are missing from this installation "
        f"(looked in {installed} and {source})"
    )


def _config(engine: Engine | None = None):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    if engine is not None:
        cfg.attributes["engine"] = engine
    return cfg


def head_revision() -> str:
    """Newest revision this version of nightlog knows."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_config()).get_current_head()
    if head is None:
        raise CatalogueError("the alembic tree has no revisions")
    return head


_DECLARATION = re.compile(r"^(revision|down_revision)\s*(?::[^=\n]*)?=\s*(.+?)\s*$", re.M)


def declared_head() -> str | None:
    """The newest revision as the migration files declare it, read as text.

    Returns
    -------
    str or None
        The one revision no other names as its ``down_revision``; ``None`` when the
        files are not a plain chain of literal declarations (alembic then decides).
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in sorted((migrations_dir() / "versions").glob("*.py")):
        found = dict(m.groups() for m in _DECLARATION.finditer(path.read_text("utf-8")))
        try:
            revision = ast.literal_eval(found["revision"])
            parent = ast.literal_eval(found["down_revision"])
        except (KeyError, ValueError, SyntaxError):
            return None
        if not isinstance(revision, str) or not isinstance(parent, str | None):
            return None
        revisions.add(revision)
        parents.update([] if parent is None else [parent])
    heads = revisions - parents
    return next(iter(heads)) if len(heads) == 1 and parents <= revisions else None


def _stamped_revision(engine: Engine) -> str | None:
    """The revision in the ``alembic_version`` table (None: no table or not one row)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    return rows[0] if len(rows) == 1 else None


def current_revision(engine: Engine) -> str | None:
    """Revision the database is at, or ``None`` for an empty database."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str]:
    """Upgrade the database to ``revision``; return ``(before, after)`` revisions."""
    from alembic import command

    before = current_revision(engine)
    command.upgrade(_config(engine), revision)
    after = current_revision(engine)
    assert after is not None
    return before, after


def ensure_schema(engine: Engine, *, create_if_empty: bool = True) -> str:
    """Check that the schema is current; create it in an empty database.

    Raises
    ------
    SchemaOutOfDateError
        The database is at an older revision (or an unknown one, e.g. written by a
        newer nightlog); the message says what to run.
    CatalogueError
        The database is empty and ``create_if_empty`` is false, or holds tables
        that nightlog did not create.
    """
    head = declared_head()
    if head is not None and _stamped_revision(engine) == head:
        return head
    head = head_revision()
    current = current_revision(engine)
    if current == head:
        return head
    if current is None:
        tables = set(inspect(engine).get_table_names())
        if tables - {"alembic_version"}:
            raise CatalogueError(
                "the database holds tables but no nightlog schema revision: "
                f"{', '.join(sorted(tables))[:200]}; use an empty database"
            )
        if not create_if_empty:
            raise SchemaOutOfDateError(
                "the catalogue database is empty; run 'nightlog db upgrade' to create it"
            )
        upgrade(engine)
        return head
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(_config())
    try:
        script.get_revision(current)
    except Exception as exc:
        raise SchemaOutOfDateError(
            f"the catalogue is at revision {current}, which this nightlog does not know "
            "(written by a newer version?); upgrade nightlog"
        ) from exc
    raise SchemaOutOfDateError(
        f"the catalogue schema is at revision {current} but this nightlog needs {head}; "
        "run 'nightlog db upgrade'"
    )
