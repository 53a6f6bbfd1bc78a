"""The built wheel carries the alembic migrations: an installed nightlog (no source
tree anywhere near) creates and upgrades a catalogue."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_ships_migrations_and_db_upgrade_works(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(dist), str(ROOT)],
        check=True, capture_output=True, text=True,
    )
    (wheel,) = dist.glob("nightlog-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "nightlog/_migrations/env.py" in names
    assert any(n.startswith("nightlog/_migrations/versions/0001") for n in names)

    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(target),
         str(wheel)],
        check=True, capture_output=True, text=True,
    )
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target)}
    env.pop("NIGHTLOG_CONFIG", None)
    env["NIGHTLOG_DATABASE_URL"] = f"sqlite:///{work / 'cat.sqlite'}"

    def run(*args: str) -> str:
        proc = subprocess.run([sys.executable, "-m", "nightlog", *args], cwd=work, env=env,
                              capture_output=True, text=True, check=True)
        return proc.stdout

    where = subprocess.run(
        [sys.executable, "-c", "import nightlog; print(nightlog.__file__)"],
        cwd=work, env=env, capture_output=True, text=True, check=True,
    ).stdout.strip()
    assert where.startswith(str(target)), where
    assert "upgraded from an empty database" in run("db", "upgrade")
    assert "up to date" in run("db", "current")
