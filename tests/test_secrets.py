"""Secrets and permissions: a database password never reaches help text, errors, log
lines, ``nightlog status``, ``db current`` or the night report (it is shown as
``***``); the archive's files carry the permissions of its root, never writable by
others, whatever the umask."""

from __future__ import annotations

import logging
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine
from typer.testing import CliRunner

from nightlog.catalogue.engine import make_sessionmaker
from nightlog.cli.app import app
from nightlog.cli.logs import LogFormat, configure_logging
from nightlog.cli.reference import iter_commands
from nightlog.coordinator.context import JobContext
from nightlog.coordinator.masters import run_build
from nightlog.coordinator.night_report import run_report
from nightlog.coordinator.reduce import run_reduce, science_frames
from nightlog.redaction import redact_text, redact_url

SECRET = "s3cret-Pa55"
UNREACHABLE = f"postgresql://nightlog:{SECRET}@127.0.0.1:1/archive"


def _with_password(url: str) -> str:
    """``url`` (of a server that trusts its clients) with a password added to it."""
    scheme, rest = url.split("://", 1)
    user, host = rest.split("@", 1)
    return f"{scheme}://{user}:{SECRET}@{host}"


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NIGHTLOG_CONFIG", raising=False)
    (tmp_path / "nightlog.toml").write_text(f'[database]\nurl = "{UNREACHABLE}"\n')
    monkeypatch.setenv("NIGHTLOG_DATABASE_URL", UNREACHABLE)
    return CliRunner()


def _commands(group: Any) -> Iterator[tuple[str, ...]]:
    # Through click's own listing: the commands are loaded on use (nightlog.cli.lazy).
    for path, _command in iter_commands(group):
        yield path


def test_help_never_shows_the_password(runner: CliRunner) -> None:
    root = typer.main.get_command(app)
    paths = [(), *_commands(root)]
    assert len(paths) > 15
    for path in paths:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert SECRET not in result.output, path


@pytest.mark.parametrize("command", [["frames"], ["status"], ["nights"], ["reduce"],
                                     ["db", "current"], ["db", "upgrade"], ["report"],
                                     ["calib", "list"]])
def test_unreachable_catalogue_is_one_line_without_password(runner: CliRunner,
                                                            command: list[str]) -> None:
    result = runner.invoke(app, command)
    assert result.exit_code != 0
    assert SECRET not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines[-1].startswith("error: "), result.output  # no traceback
    assert "Traceback" not in result.output
    if "127.0.0.1" in lines[-1] and "postgresql://" in lines[-1]:
        assert "nightlog:***@127.0.0.1:1/archive" in lines[-1]


def test_log_lines_hide_passwords(capsys: pytest.CaptureFixture[str]) -> None:
    log = logging.getLogger("nightlog.watch")
    for fmt in LogFormat:
        configure_logging(fmt)
        try:
            raise RuntimeError(f"could not connect to {UNREACHABLE}")
        except RuntimeError:
            log.exception("catalogue %s unreachable", UNREACHABLE, extra={"url": UNREACHABLE})
        err = capsys.readouterr().err
        assert SECRET not in err and "nightlog:***@127.0.0.1" in err
    logging.getLogger("nightlog").handlers.clear()


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://u:s3cret@h/db?sslmode=require&password=x2",
     "postgresql://u:***@h/db?sslmode=require&password=***"),
    ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
])
def test_query_passwords_are_redacted(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert redact_text(f"error at {url}: refused") == f"error at {shown}: refused"


@pytest.mark.postgres
def test_status_db_and_report_hide_the_password(runner: CliRunner, pg_schema_url: str,
                                                lfc_night: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    url = _with_password(pg_schema_url)
    monkeypatch.setenv("NIGHTLOG_DATABASE_URL", url)
    outputs = []
    for command in (["db", "upgrade"], ["ingest", str(lfc_night)], ["db", "current"],
                    ["status"], ["report"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 0, (command, result.output)
        outputs.append(result.output)
    assert all(SECRET not in out for out in outputs)
    assert ":***@" in outputs[2]  # db current names the catalogue, password hidden
    reports = list(Path("reports").glob("*.html"))
    assert reports and SECRET not in reports[0].read_text(encoding="utf-8")


@pytest.fixture
def open_umask() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.parametrize("catalogue_url", ["sqlite"], indirect=True)  # files, not rows
@pytest.mark.parametrize(("root_mode", "file_mode"), [(0o755, 0o644), (0o750, 0o640),
                                                      (0o777, 0o664)])
def test_archive_files_take_the_root_permissions(archive: tuple[Engine, JobContext],
                                                 open_umask: None, root_mode: int,
                                                 file_mode: int) -> None:
    engine, ctx = archive
    ctx.layout.root.chmod(root_mode)
    assert all(o.status == "built" for o in run_build(engine, ctx))
    with make_sessionmaker(engine)() as s:
        ids = science_frames(s)
    assert [o.status for o in run_reduce(engine, ctx, ids, workers=1)] == ["reduced"] * len(ids)
    run_report(engine, ctx)
    written = 0
    for folder in ("masters", "products", "reports"):
        for path in (ctx.layout.root / folder).rglob("*"):
            mode = stat.S_IMODE(path.stat().st_mode)
            if path.is_dir():
                assert mode & 0o002 == 0, (path, oct(mode))
                assert mode == file_mode | ((file_mode & 0o444) >> 2), (path, oct(mode))
            else:
                written += 1
                assert mode == file_mode, (path, oct(mode))
    assert written >= 4 + len(ids) + 1



# -- malformed URLs -------------------------------------------------------------------

_PASSWORDS = st.text(alphabet=st.characters(codec="ascii", min_codepoint=33, max_codepoint=126),
                     min_size=1, max_size=24)
_HOSTS = st.sampled_from(["127.0.0.1", "db.example.org", "[::1]", "h", ""])
_TAILS = st.sampled_from(["/archive", ":5432/archive", ":notaport/db", "", "/db?sslmode=require",
                          ":1/a?application_name=x"])


@settings(max_examples=300, deadline=None)
@given(password=_PASSWORDS, host=_HOSTS, tail=_TAILS,
       user=st.sampled_from(["nightlog", "u", ""]))
def test_redaction_hides_any_password_of_any_url(password: str, host: str, tail: str,
                                                 user: str) -> None:
    """Whatever the password holds (``@``, ``:``, ``/``, ``?``…) and however malformed
    the rest, the URL is printed with the password replaced whole by ``***``."""
    url = f"postgresql://{user}:{password}@{host}{tail}"
    assert redact_url(url) == f"postgresql://{user}:***@{host}{tail}"
    said = redact_text(f"error: cannot reach {url} now")
    assert said == f"error: cannot reach postgresql://{user}:***@{host}{tail} now" or (
        any(c in password for c in "'\"<>"))  # a quote ends a URL in free text


@settings(max_examples=200, deadline=None)
@given(password=_PASSWORDS.filter(lambda p: not re.match(r"\d*(?:[/?]|$)", p)
                                   and "@" not in p))
def test_a_forgotten_at_sign_hides_what_may_be_a_password(password: str) -> None:
    """``user:secret/db`` (no ``@``) reads as host ``user``, port ``secret``: a port
    that is not a number is hidden with all that follows it."""
    shown = redact_url(f"postgresql://nightlog:{password}/archive")
    assert shown == "postgresql://nightlog:***"


@settings(max_examples=200, deadline=None)
@given(password=_PASSWORDS.filter(lambda p: "%" not in p))
def test_a_password_holding_at_signs_reaches_the_driver_whole(password: str) -> None:
    from sqlalchemy.engine import make_url

    from nightlog.database_url import normalise_database_url

    url = make_url(normalise_database_url(f"postgresql://nightlog:{password}@127.0.0.1:5432/db"))
    assert (url.username, url.password, url.host, url.port, url.database) == (
        "nightlog", password, "127.0.0.1", 5432, "db")


@settings(max_examples=100, deadline=None)
@given(password=_PASSWORDS, form=st.sampled_from([
    "postgresql://nightlog:{p}@127.0.0.1:notaport/db",
    "postgresql://nightlog:{p}@127.0.0.1:99999/db",
    "postgresql://nightlog:{p}/db",
]))
def test_malformed_urls_are_one_configuration_error_without_the_password(
        tmp_path_factory: pytest.TempPathFactory, password: str, form: str) -> None:
    from nightlog.errors import ConfigurationError
    from nightlog.settings import load_settings

    if form.endswith(":{p}/db") and ("@" in password
                                     or re.match(r"\d*(?:[/?]|$)", password)):
        return  # credentials after all, or a port (a number) as far as anyone can tell
    cwd = tmp_path_factory.mktemp("cfg")
    url = form.format(p=password)
    with pytest.raises(ConfigurationError) as err:
        load_settings(env={"NIGHTLOG_DATABASE_URL": url}, cwd=cwd)
    message = str(err.value)
    reference = form.format(p="PASSWORD")
    with pytest.raises(ConfigurationError) as ref:
        load_settings(env={"NIGHTLOG_DATABASE_URL": reference}, cwd=cwd)
    # The message does not depend on the password at all: no fragment of it is shown.
    assert message == str(ref.value)
    assert "\n" not in message and "***" in message


@pytest.mark.parametrize("command", [["status"], ["frames"], ["watch", "."], ["db", "current"],
                                     ["calib", "list"]])
def test_a_malformed_url_is_one_line_and_the_configuration_exit_code(
        runner: CliRunner, monkeypatch: pytest.MonkeyPatch, command: list[str]) -> None:
    monkeypatch.setenv("NIGHTLOG_DATABASE_URL",
                       f"postgresql://nightlog:{SECRET}@127.0.0.1:notaport/archive")
    result = runner.invoke(app, command)
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [
        "error: database.url is not a valid database URL (the port is not a whole number): "
        "postgresql://nightlog:***@127.0.0.1:notaport/archive"]


def test_a_password_with_an_at_sign_is_never_printed_in_part(runner: CliRunner,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    """``S3cret@PW``: the driver used to be told host ``PW@127.0.0.1`` and print it."""
    monkeypatch.setenv("NIGHTLOG_DATABASE_URL", "postgresql://nightlog:S3cret@PW@127.0.0.1:1/db")
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 4, result.output
    assert "S3cret" not in result.output and "PW" not in result.output
    assert "postgresql://nightlog:***@127.0.0.1:1/db" in result.output
    assert len(result.output.strip().splitlines()) == 1
