"""Alembic migrations build exactly the models' schema, on SQLite and PostgreSQL,
and every command refuses a catalogue whose schema is behind."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from nightlog.catalogue import schema
from nightlog.catalogue.engine import create_engine
from nightlog.catalogue.models import Base
from nightlog.catalogue.schema import (
    current_revision,
    declared_head,
    ensure_schema,
    head_revision,
    migrations_dir,
    upgrade,
)
from nightlog.errors import CatalogueError, SchemaOutOfDateError


def test_upgrade_head_equals_the_models(catalogue_url: str) -> None:
    engine = create_engine(catalogue_url)
    try:
        before, after = upgrade(engine)
        assert before is None and after == head_revision()
        with engine.connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
            )
        assert diff == []
        # Running it again is a no-op.
        assert upgrade(engine) == (after, after)
    finally:
        engine.dispose()


def test_downgrade_to_base_and_back(catalogue_url: str) -> None:
    from alembic import command

    from nightlog.catalogue.schema import _config

    engine = create_engine(catalogue_url)
    try:
        upgrade(engine)
        command.downgrade(_config(engine), "base")
        assert current_revision(engine) is None
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        upgrade(engine)
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_empty_database_is_created_and_behind_is_refused(catalogue_url: str) -> None:
    engine = create_engine(catalogue_url)
    try:
        with pytest.raises(SchemaOutOfDateError, match="nightlog db upgrade"):
            ensure_schema(engine, create_if_empty=False)
        assert ensure_schema(engine) == head_revision()
        # Pretend the database was left at an older revision.
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '0000'"))
        with pytest.raises(SchemaOutOfDateError, match="newer version"):
            ensure_schema(engine)
    finally:
        engine.dispose()


def test_foreign_tables_are_not_touched(catalogue_url: str) -> None:
    engine = create_engine(catalogue_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE somebody_elses (x INTEGER)"))
        with pytest.raises(CatalogueError, match="no nightlog schema"):
            ensure_schema(engine)
    finally:
        engine.dispose()


def test_migrations_are_found() -> None:
    assert (migrations_dir() / "env.py").is_file()


def test_the_head_read_from_the_files_is_alembics() -> None:
    assert declared_head() == head_revision()


def test_files_that_are_not_one_chain_are_left_to_alembic(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    versions = tmp_path / "versions"
    versions.mkdir()
    monkeypatch.setattr(schema, "migrations_dir", lambda: tmp_path)
    (versions / "a.py").write_text('revision = "a"\ndown_revision = None\n')
    (versions / "b.py").write_text('revision: str = "b"\ndown_revision: str | None = "a"\n')
    assert declared_head() == "b"
    (versions / "c.py").write_text('revision = "c"\ndown_revision = "a"\n')  # two heads
    assert declared_head() is None
    (versions / "c.py").write_text('revision = "c"\ndown_revision = ("a", "b")\n')  # a merge
    assert declared_head() is None
    (versions / "c.py").write_text('revision = make_revision()\ndown_revision = "b"\n')
    assert declared_head() is None


def test_a_current_catalogue_is_recognised_without_alembic(catalogue_url: str) -> None:
    engine = create_engine(catalogue_url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    probe = ("import json, sys\n"
             "from nightlog.catalogue.engine import create_engine\n"
             "from nightlog.catalogue.schema import ensure_schema\n"
             f"engine = create_engine({catalogue_url!r})\n"
             "head = ensure_schema(engine)\n"
             "engine.dispose()\n"
             "print(json.dumps([head, any(m.split('.')[0] == 'alembic' for m in sys.modules)]))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True, timeout=120)
    assert json.loads(done.stdout.splitlines()[-1]) == [head_revision(), False]


def test_a_catalogue_one_revision_behind_is_refused_then_upgraded(catalogue_url: str) -> None:
    engine = create_engine(catalogue_url)
    try:
        upgrade(engine, "0001")
        with engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO quarantined_files (path, reason, error, first_seen, last_seen, "
                "times_seen) VALUES ('/x.fits', 'kept', 'NotFitsError', "
                "'2024-01-01 00:00:00', '2024-01-01 00:00:00', 1)"))
        with pytest.raises(SchemaOutOfDateError, match="run 'nightlog db upgrade'"):
            ensure_schema(engine)
        assert upgrade(engine) == ("0001", head_revision())
        with engine.connect() as conn:
            assert conn.execute(text("SELECT reason FROM quarantined_files")).scalar() == "kept"
        assert ensure_schema(engine) == head_revision()
    finally:
        engine.dispose()


def _index_names(engine: object, table: str) -> set[str]:
    return {ix["name"] for ix in inspect(engine).get_indexes(table)}


def test_archive_indexes_come_with_0006_and_go_with_its_downgrade(catalogue_url: str) -> None:
    from alembic import command

    from nightlog.catalogue.schema import _config

    engine = create_engine(catalogue_url)
    try:
        upgrade(engine, "0005")
        assert "ix_frames_kind" in _index_names(engine, "frames")
        assert "ix_products_path" not in _index_names(engine, "products")
        assert upgrade(engine, "0006") == ("0005", "0006")
        frames = _index_names(engine, "frames")
        assert {"ix_frames_kind_obs_time", "ix_frames_kind_ingested_at",
                "ix_frames_kind_status_latest_night"} <= frames
        assert "ix_frames_kind" not in frames
        assert not {"ix_frames_path", "ix_frames_night", "ix_frames_setup_key"} & frames
        assert "ix_products_path" in _index_names(engine, "products")
        command.downgrade(_config(engine), "0005")
        assert current_revision(engine) == "0005"
        frames = _index_names(engine, "frames")
        assert "ix_frames_kind" in frames and "ix_frames_kind_obs_time" not in frames
        assert "ix_frames_kind_ingested_at" not in frames
        assert "ix_frames_kind_status_latest_night" not in frames
        assert {"ix_frames_path", "ix_frames_night", "ix_frames_setup_key"} <= frames
        assert "ix_products_path" not in _index_names(engine, "products")
    finally:
        engine.dispose()


def test_frame_amplifiers_come_with_0007_and_go_with_its_downgrade(catalogue_url: str) -> None:
    from alembic import command

    from nightlog.catalogue.schema import _config

    engine = create_engine(catalogue_url)
    try:
        upgrade(engine, "0006")
        assert "amplifiers" not in {c["name"] for c in inspect(engine).get_columns("frames")}
        assert upgrade(engine, "0007") == ("0006", "0007")
        assert "amplifiers" in {c["name"] for c in inspect(engine).get_columns("frames")}
        command.downgrade(_config(engine), "0006")
        assert current_revision(engine) == "0006"
        assert "amplifiers" not in {c["name"] for c in inspect(engine).get_columns("frames")}
        assert {"ix_frames_kind_obs_time", "ix_frames_kind_ingested_at"} <= _index_names(
            engine, "frames")
    finally:
        engine.dispose()


def test_frame_quality_comes_with_0010_and_goes_with_its_downgrade(catalogue_url: str) -> None:
    from alembic import command

    from nightlog.catalogue.schema import _config

    engine = create_engine(catalogue_url)
    try:
        upgrade(engine, "0006")
        assert "frame_quality" not in inspect(engine).get_table_names()
        assert upgrade(engine, "0010") == ("0006", "0010")
        assert "frame_quality" in inspect(engine).get_table_names()
        assert "ix_frame_quality_frame_id" in _index_names(engine, "frame_quality")
        command.downgrade(_config(engine), "0006")
        assert "frame_quality" not in inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_the_tally_group_index_comes_with_0015_and_goes_with_its_downgrade(
        catalogue_url: str) -> None:
    from alembic import command

    from nightlog.catalogue.schema import _config

    engine = create_engine(catalogue_url)
    try:
        upgrade(engine, "0014_night_tallies")
        assert _index_names(engine, "night_tallies") == {"ix_night_tallies_night_kind"}
        assert upgrade(engine, "0015_tally_groups") == ("0014_night_tallies",
                                                        "0015_tally_groups")
        assert _index_names(engine, "night_tallies") == {"ix_night_tallies_group"}
        command.downgrade(_config(engine), "0014_night_tallies")
        assert current_revision(engine) == "0014_night_tallies"
        assert _index_names(engine, "night_tallies") == {"ix_night_tallies_night_kind"}
    finally:
        engine.dispose()
