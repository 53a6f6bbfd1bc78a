"""Shared fixtures: catalogue databases on SQLite and PostgreSQL, archive folders, a
simulated LFC night ingested into a fresh archive.

PostgreSQL tests read the server URL from ``NIGHTLOG_TEST_POSTGRES_URL`` (``.ci/run``
sets it); without it they skip and say why. Each test gets its own schema, so
runs never see each other's rows.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from nightlog.catalogue.engine import create_engine
from nightlog.coordinator.context import JobContext
from nightlog.settings import Settings

PG_ENV = "NIGHTLOG_TEST_POSTGRES_URL"


def postgres_url() -> str | None:
    return os.environ.get(PG_ENV) or None


def _require_postgres() -> str:
    url = postgres_url()
    if url is None:
        pytest.skip(f"{PG_ENV} is not set: no PostgreSQL server to test against "
                    "(.ci/run sets it)")
    return url


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    """A URL whose connections use a fresh, empty PostgreSQL schema."""
    base = _require_postgres()
    schema = f"nl_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def catalogue_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty catalogue database URL, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'catalogue.sqlite'}"
    return str(request.getfixturevalue("pg_schema_url"))


@pytest.fixture
def catalogue_engine(catalogue_url: str) -> Iterator[Engine]:
    """An engine on an empty, migrated catalogue (both backends)."""
    from nightlog.catalogue.schema import upgrade

    engine = create_engine(catalogue_url)
    upgrade(engine)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def lfc_night(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small simulated LFC night (5 bias, 5 dark, 5 flat per filter, 3 science),
    written once per run; copy it before changing anything."""
    from nightlog.simulate import simulate_night

    out = tmp_path_factory.mktemp("lfc") / "raw"
    simulate_night(out, camera="lfc", scale=0.1, seed=3, n_bias=5, n_dark=5, n_flat=5,
                   n_science=3)
    return out


@pytest.fixture
def archive(catalogue_engine: Engine, lfc_night: Path, tmp_path: Path
            ) -> tuple[Engine, JobContext]:
    """The LFC night copied to ``tmp_path / 'raw'`` and ingested (no masters yet), with
    the job context of an archive in ``tmp_path`` (both backends)."""
    import shutil

    from nightlog.coordinator.ingest import IngestContext, discover, run_ingest
    from nightlog.settings import load_settings

    raw = tmp_path / "raw"
    shutil.copytree(lfc_night, raw)
    settings = load_settings(env={}, cwd=tmp_path)
    summary = run_ingest(catalogue_engine, discover([raw], settings.ingest.patterns),
                         IngestContext.from_settings(settings))
    assert summary.counts["added"] > 0
    return catalogue_engine, JobContext.from_settings(settings)


@pytest.fixture
def reduced(catalogue_url: str, lfc_night: Path, tmp_path: Path) -> Settings:
    """The LFC night reduced (masters built, science frames reduced) in an archive in
    ``tmp_path / 'night'``; its settings (both backends)."""
    from tests.factories import reduced_night

    url = None if catalogue_url.startswith("sqlite") else catalogue_url
    return reduced_night(tmp_path / "night", lfc_night, url)


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """A CLI runner in an empty folder: no configuration file or database URL from the
    environment, wide tables (one row per line)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NIGHTLOG_CONFIG", raising=False)
    monkeypatch.delenv("NIGHTLOG_DATABASE_URL", raising=False)
    monkeypatch.setenv("COLUMNS", "300")
    return CliRunner()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In CI (``NIGHTLOG_REQUIRE_POSTGRES=1``) a missing server is a failure, not a skip."""
    if os.environ.get("NIGHTLOG_REQUIRE_POSTGRES") == "1" and postgres_url() is None:
        raise pytest.UsageError(f"NIGHTLOG_REQUIRE_POSTGRES=1 but {PG_ENV} is not set")


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: one worker more than the cores this process may use. A quarter to a
    third of the suite's wall time is spent waiting (child processes starting and
    being killed, writers pausing between pieces, PostgreSQL, the browser), which a
    spare worker fills."""
    return len(os.sched_getaffinity(0)) + 1
