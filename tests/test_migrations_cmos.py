"""Migration 0008 adds the CMOS settings of frames, keeps every row, and goes back
cleanly, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect, text

from nightlog.catalogue.engine import create_engine
from nightlog.catalogue.schema import _config, current_revision, upgrade

_COLUMNS = {"gain_setting", "offset", "bayer_pattern"}

_INSERT = text(
    "INSERT INTO frames (path, path_version, is_latest, sha256, size, mtime, hdu, profile, "
    "kind, obs_time, night, binning, naxis1, naxis2, setup_key, header, status, "
    "ingested_at, software_version) VALUES ('/raw/a.fits', 1, :t, :sha, 1, "
    "'2021-03-02 20:19:00', 0, 'generic', 'science', '2021-03-02 20:19:00', '2021-03-02', "
    "'1x1', 32, 24, 'x', '[]', 'ok', '2021-03-02 20:19:00', 't')")


def _columns(engine: object) -> set[str]:
    return {c["name"] for c in inspect(engine).get_columns("frames")}


def test_cmos_settings_come_with_0008_and_go_with_its_downgrade(catalogue_url: str) -> None:
    engine = create_engine(catalogue_url)
    try:
        upgrade(engine, "0006")
        assert not _COLUMNS & _columns(engine)
        with engine.begin() as conn:
            conn.execute(_INSERT, {"t": True, "sha": "a" * 64})
        indexes = {ix["name"] for ix in inspect(engine).get_indexes("frames")}
        assert upgrade(engine, "0008") == ("0006", "0008")
        assert _columns(engine) >= _COLUMNS
        with engine.connect() as conn:
            row = conn.execute(text("SELECT sha256, gain_setting, \"offset\", bayer_pattern "
                                    "FROM frames")).one()
        assert tuple(row) == ("a" * 64, None, None, None)  # a CCD frame: no setting
        with engine.begin() as conn:
            conn.execute(text("UPDATE frames SET gain_setting = 0, \"offset\" = 30, "
                              "bayer_pattern = 'RGGB'"))
        command.downgrade(_config(engine), "0006")
        assert current_revision(engine) == "0006"
        assert not _COLUMNS & _columns(engine)
        assert {ix["name"] for ix in inspect(engine).get_indexes("frames")} == indexes
        with engine.connect() as conn:
            assert conn.execute(text("SELECT sha256 FROM frames")).scalar() == "a" * 64
    finally:
        engine.dispose()
