"""Settings: where the file comes from, defaults, validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from nightlog.errors import ConfigurationError
from nightlog.header.model import Site
from nightlog.header.profiles import ProfileRegistry
from nightlog.redaction import redact_url
from nightlog.settings import DEFAULT_DB_FILENAME, load_settings


def test_no_file_means_defaults_in_the_working_folder(tmp_path: Path) -> None:
    s = load_settings(env={}, cwd=tmp_path)
    assert s.archive_root == tmp_path.resolve()
    assert s.database_url == f"sqlite:///{tmp_path.resolve() / DEFAULT_DB_FILENAME}"
    assert s.config_path is None
    assert s.site.longitude_deg is None and s.site.timezone is None


def test_precedence_option_then_env_then_local_file(tmp_path: Path) -> None:
    local = tmp_path / "nightlog.toml"
    local.write_text('[archive]\nroot = "local"\n')
    env_file = tmp_path / "env.toml"
    env_file.write_text('[archive]\nroot = "env"\n')
    opt_file = tmp_path / "opt.toml"
    opt_file.write_text('[archive]\nroot = "opt"\n')
    env = {"NIGHTLOG_CONFIG": str(env_file)}
    assert load_settings(opt_file, env=env, cwd=tmp_path).archive_root.name == "opt"
    assert load_settings(env=env, cwd=tmp_path).archive_root.name == "env"
    assert load_settings(env={}, cwd=tmp_path).archive_root.name == "local"


def test_relative_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    sub = tmp_path / "conf"
    sub.mkdir()
    cfg = sub / "n.toml"
    cfg.write_text('[archive]\nroot = "../arch"\n[watch]\ndirectories = ["raw"]\n'
                   '[site]\nlongitude = -116.9\n')
    s = load_settings(cfg, env={}, cwd=Path("/"))
    assert s.archive_root == (tmp_path / "arch").resolve()
    assert s.watch_dirs == ((sub / "raw").resolve(),)
    assert s.database_url.endswith(str((tmp_path / "arch" / DEFAULT_DB_FILENAME).resolve()))
    assert s.site.longitude_deg == -116.9


def test_database_url_from_environment_wins(tmp_path: Path) -> None:
    cfg = tmp_path / "n.toml"
    cfg.write_text('[database]\nurl = "sqlite:///a.sqlite"\n')
    s = load_settings(cfg, env={"NIGHTLOG_DATABASE_URL": "postgresql://u:pw@h/db"}, cwd=tmp_path)
    assert s.database_url == "postgresql://u:pw@h/db"
    assert "pw" not in s.safe_database_url and "***" in s.safe_database_url


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[archive\nroot=1", "not valid TOML"),
        ("[bogus]\nx = 1\n", "unknown section"),
        ('[site]\nlongitude = "west"\n', "site.longitude"),
        ('[site]\ntimezone = "Mars/Olympus"\n', "time zone"),
        ("[site]\nlongitud = -116.9\n", "did you mean 'longitude'"),
        ("[site]\nlatitude = 95.0\n", "site.latitude"),
        ("[site]\nlongitude = true\n", "site.longitude"),
        ("[site]\nlongitude = nan\n", "site.longitude"),
        ("[site]\ntimezone = 5\n", "site.timezone"),
        ('[site]\nname = ""\n', "site.name"),
        ('[database]\nurl = "nonsense"\n', "database URL"),
        ('[reduction]\nmemory_limit = "lots"\n', "memory_limit"),
        ('[reduction]\nunit = "photons"\n', "reduction.unit"),
        ("[watch]\ndirectories = 3\n", "watch.directories"),
        ("[database]\nretries = 0\n", "database.retries"),
        ("[database]\nretries = true\n", "database.retries"),
        ('[database]\nbusy_timeout_seconds = "long"\n', "busy_timeout_seconds"),
        ("[database]\nbusy_timeout_seconds = -1\n", "busy_timeout_seconds"),
        ("[database]\ntimeout = 3\n", "unknown key"),
    ],
)
def test_bad_files_give_clear_errors(tmp_path: Path, text: str, needle: str) -> None:
    cfg = tmp_path / "n.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigurationError, match=needle):
        load_settings(cfg, env={}, cwd=tmp_path)


def test_database_waits_reach_the_engine_and_the_jobs(tmp_path: Path) -> None:
    from nightlog.cli.state import CliState
    from nightlog.coordinator.context import JobContext

    cfg = tmp_path / "n.toml"
    cfg.write_text("[database]\nbusy_timeout_seconds = 2.5\nretries = 3\n")
    settings = load_settings(cfg, env={}, cwd=tmp_path)
    assert JobContext.from_settings(settings).db_backoff.attempts == 3
    engine = CliState(config_path=cfg, _settings=settings).engine()
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 2500
    finally:
        engine.dispose()
    defaults = load_settings(env={}, cwd=tmp_path / "elsewhere")
    assert defaults.database.busy_timeout_seconds == 30.0
    assert JobContext.from_settings(defaults).db_backoff.attempts == 6


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not found"):
        load_settings(tmp_path / "absent.toml", env={}, cwd=tmp_path)
    with pytest.raises(ConfigurationError, match="NIGHTLOG_CONFIG"):
        load_settings(env={"NIGHTLOG_CONFIG": str(tmp_path / "gone.toml")}, cwd=tmp_path)


def test_memory_limit_units(tmp_path: Path) -> None:
    cfg = tmp_path / "n.toml"
    cfg.write_text('[reduction]\nmemory_limit = "1.5 GiB"\n')
    assert load_settings(cfg, env={}, cwd=tmp_path).reduction.memory_limit_bytes == int(
        1.5 * 1024**3)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://alice:s3cret@db.example/nl", "postgresql://alice:***@db.example/nl"),
        ("postgresql+psycopg://alice@db/nl", "postgresql+psycopg://alice@db/nl"),
        ("sqlite:////tmp/x.sqlite", "sqlite:////tmp/x.sqlite"),
        ("postgresql://bob:p@ss@h/db", "postgresql://bob:***@h/db"),
    ],
)
def test_passwords_are_redacted(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_a_site_table_means_the_same_in_the_settings_and_in_a_profile(tmp_path: Path) -> None:
    cfg = tmp_path / "n.toml"
    cfg.write_text('[site]\nname = "Palomar"\nlongitude = -116.86\nlatitude = 33.36\n'
                   'timezone = "America/Los_Angeles"\n'
                   '[instruments.cam]\nmatch = { INSTRUME = "CAM" }\n'
                   'site = { name = "Palomar", longitude = -116.86, latitude = 33.36, '
                   'timezone = "America/Los_Angeles" }\n')
    settings = load_settings(cfg, env={}, cwd=tmp_path)
    palomar = Site(longitude_deg=-116.86, timezone="America/Los_Angeles", name="Palomar",
                   latitude_deg=33.36)
    assert settings.site == palomar
    assert ProfileRegistry.from_settings(settings.instruments).get("cam").site == palomar
    assert palomar.has_place and not Site(name="nowhere", latitude_deg=10.0).has_place


@pytest.mark.parametrize(
    ("text", "where", "typo", "suggestion"),
    [
        ("[archive]\nroots = 'a'\n", "[archive]", "roots", "root"),
        ("[database]\nurll = 'sqlite:///a'\n", "[database]", "urll", "url"),
        ("[site]\ntimezon = 'UTC'\n", "site", "timezon", "timezone"),
        ("[watch]\nsettle_second = 1\n", "[watch]", "settle_second", "settle_seconds"),
        ("[ingest]\npattern = ['*.fits']\n", "[ingest]", "pattern", "patterns"),
        ("[reduction]\nworker = 2\n", "[reduction]", "worker", "workers"),
        ("[calibration]\nvalidity_day = 3\n", "[calibration]", "validity_day",
         "validity_days"),
        ("[calibration.checks]\nflat_min = 5\n", "[calibration.checks]", "flat_min",
         "flat_min_level"),
        ("[calibration.validity_days]\nflats = 3\n", "calibration.validity_days", "flats",
         "flat"),
        ("[calibration.on_missing]\nbais = 'stop'\n", "calibration.on_missing", "bais",
         "bias"),
        ("[reductions]\nworkers = 2\n", "n.toml", "reductions", "reduction"),
    ],
)
def test_every_section_refuses_unknown_keys_with_a_suggestion(
        tmp_path: Path, text: str, where: str, typo: str, suggestion: str) -> None:
    cfg = tmp_path / "n.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigurationError) as info:
        load_settings(cfg, env={}, cwd=tmp_path)
    message = str(info.value)
    assert message.startswith(where if where != "n.toml" else str(cfg))
    assert ("unknown section" if where == "n.toml" else "unknown") in message
    assert repr(typo) in message and f"did you mean {suggestion!r}?" in message


def test_an_instrument_profile_refuses_unknown_keys_with_a_suggestion() -> None:
    from nightlog.errors import ProfileError
    from nightlog.header.profiles import ProfileRegistry

    with pytest.raises(ProfileError, match="did you mean 'filter_keywords'"):
        ProfileRegistry.from_settings({"mine": {"filter_keyword": ["FILTER"]}})


def test_a_key_far_from_any_gets_the_known_list_only(tmp_path: Path) -> None:
    cfg = tmp_path / "n.toml"
    cfg.write_text("[archive]\ncompletely_different = 1\n")
    with pytest.raises(ConfigurationError) as info:
        load_settings(cfg, env={}, cwd=tmp_path)
    assert "did you mean" not in str(info.value) and "known: root" in str(info.value)
