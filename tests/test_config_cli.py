"""``nightlog config show`` and ``config check``: every value with its source, passwords
hidden, problems reported with the configuration's exit status."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from nightlog.cli.app import app
from nightlog.errors import ConfigurationError
from nightlog.settings_keys import SECTION_KEYS


def _show(runner: CliRunner, *args: str, env: dict[str, str] | None = None) -> dict:
    result = runner.invoke(app, [*args, "config", "show", "--format", "json"], env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_show_gives_every_key_with_its_source(runner: CliRunner, tmp_path: Path) -> None:
    cfg = tmp_path / "site.toml"
    cfg.write_text('[archive]\nroot = "arch"\n[reduction]\nworkers = 3\n'
                   '[calibration.validity_days]\nflat = 2.5\n'
                   '[database]\nurl = "postgresql://obs:hunter2@db.example/night"\n')
    doc = _show(runner, "--config", str(cfg))
    assert doc["config_file"] == str(cfg.resolve()) and "--config" in doc["found_by"]
    values = {v["key"]: v for v in doc["values"]}
    for section, keys in SECTION_KEYS.items():
        if section == "calibration":
            continue
        for key in keys:
            assert f"{section}.{key}" in values, f"{section}.{key} not shown"
    assert values["archive.root"] == {"key": "archive.root", "value": str(tmp_path / "arch"),
                                      "source": "file"}
    assert values["reduction.workers"]["value"] == 3
    assert values["reduction.workers"]["source"] == "file"
    assert values["reduction.retries"] == {"key": "reduction.retries", "value": 2,
                                           "source": "default"}
    assert values["calibration.validity_days.flat"]["value"] == 2.5
    assert values["calibration.validity_days.flat"]["source"] == "file"
    assert values["calibration.validity_days.bias"]["source"] == "default"
    assert values["database.url"]["source"] == "file"
    assert values["database.url"]["value"] == "postgresql://obs:***@db.example/night"
    result = runner.invoke(app, ["--config", str(cfg), "config", "show"])
    assert result.exit_code == 0 and "hunter2" not in result.output
    assert "reduction.workers" in result.output and "file" in result.output


def test_the_environment_is_a_source_and_its_password_hidden(runner: CliRunner,
                                                             tmp_path: Path) -> None:
    doc = _show(runner, env={"NIGHTLOG_DATABASE_URL": "postgresql://u:s3cret@h/db"})
    assert doc["config_file"] is None and "defaults" in doc["found_by"]
    values = {v["key"]: v for v in doc["values"]}
    assert values["database.url"]["source"] == "environment"
    assert "s3cret" not in json.dumps(doc) and "***" in values["database.url"]["value"]
    assert {v["source"] for k, v in values.items() if k != "database.url"} == {"default"}
    assert values["archive.root"]["value"] == str(tmp_path)


def test_show_finds_the_file_as_every_command_does(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "nightlog.toml").write_text("[watch]\nsettle_seconds = 7\n")
    doc = _show(runner)
    assert doc["config_file"] == str((tmp_path / "nightlog.toml").resolve())
    (value,) = [v for v in doc["values"] if v["key"] == "watch.settle_seconds"]
    assert value == {"key": "watch.settle_seconds", "value": 7.0, "source": "file"}


def test_check_accepts_a_valid_file_and_opens_no_catalogue(runner: CliRunner,
                                                           tmp_path: Path) -> None:
    cfg = tmp_path / "n.toml"
    cfg.write_text('[instruments.mine]\nextends = "generic"\n[ingest]\n'
                   'default_profile = "mine"\n')
    result = runner.invoke(app, ["--config", str(cfg), "config", "check"])
    assert result.exit_code == 0, result.output
    assert "configuration valid" in result.output and str(cfg.resolve()) in result.output
    assert not (tmp_path / "nightlog.sqlite").exists()


def test_check_reports_each_problem_with_the_configuration_exit_code(
        runner: CliRunner, tmp_path: Path) -> None:
    cfg = tmp_path / "n.toml"
    for text, needle in [
        ("[reduction]\nworker = 2\n", "did you mean 'workers'"),
        ("[instruments.mine]\nfilter_keyword = ['F']\n", "did you mean 'filter_keywords'"),
        ('[ingest]\ndefault_profile = "nosuch"\n', "nosuch"),
        ("[archive]\nrot = 'x'\n", "did you mean 'root'"),
    ]:
        cfg.write_text(text)
        result = runner.invoke(app, ["--config", str(cfg), "config", "check"])
        assert result.exit_code == ConfigurationError.exit_code, (text, result.output)
        assert needle in result.output, (text, result.output)
