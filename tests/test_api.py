"""The Python API: ``nightlog.Archive`` on a reduced night, and the page that documents it
executed block by block."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.nddata import CCDData
from astropy.table import Table
from typer.testing import CliRunner

import nightlog
from nightlog.cli.app import app
from nightlog.errors import CatalogueError, NotFoundError
from nightlog.settings import Settings
from tests.factories import reduced_night

ROOT = Path(__file__).resolve().parents[1]


def test_import_nightlog_is_cheap() -> None:
    code = ("import sys, nightlog; "
            "print(sorted(m for m in ('astropy', 'sqlalchemy', 'numpy', 'nightlog.archive') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
    assert nightlog.Archive.__name__ == "Archive"  # there when asked for
    with pytest.raises(AttributeError):
        _ = nightlog.NoSuchThing  # type: ignore[attr-defined]


def test_listings_are_tables_with_the_cli_filters(reduced: Settings) -> None:
    with nightlog.Archive(reduced) as archive:
        frames = archive.frames()
        assert isinstance(frames, Table) and len(frames) == 33
        assert list(frames["obs_time"]) == sorted(frames["obs_time"])
        assert str(frames["exptime"].unit) == "s"
        flats = archive.frames(kind="flat", filter="g'")
        assert len(flats) == 5 and set(flats["filter"]) == {"g'"}
        long = archive.frames(exptime_min=100.0)
        assert len(long) == sum(1 for e in frames["exptime"] if e >= 100.0) > 0
        assert min(long["exptime"]) >= 100.0
        assert len(archive.frames(limit=4)) == 4
        assert len(archive.frames(night="2001-01-01")) == 0

        masters = archive.masters()
        assert sorted(masters["kind"]) == ["bias", "dark", "flat", "flat"]
        bias = masters[masters["kind"] == "bias"][0]
        assert bias["filter"] is np.ma.masked  # a bias has no filter
        assert len(archive.masters(kind="flat", filter="i'")) == 1
        assert len(archive.masters(bad=True)) == 0

        products = archive.products()
        assert len(products) == 3 and set(products["status"]) == {"current"}
        assert set(products["frame_id"]) == set(frames[frames["kind"] == "science"]["id"])
        assert len(archive.products(filter="g'")) == 2


def test_listings_are_the_clis(reduced: Settings, runner: CliRunner) -> None:
    """The CLI prints what the API returns: one query for both."""
    config = reduced.archive_root / "nightlog.toml"
    config.write_text(f'[database]\nurl = "{reduced.database_url}"\n', encoding="utf-8")
    with nightlog.Archive(config) as archive:
        frames = archive.frames(kind="dark")
        masters = archive.masters()
    out = runner.invoke(app, ["--config", str(config), "frames", "--kind", "dark",
                              "--oldest-first", "--format", "json"])
    assert out.exit_code == 0, out.output
    cli = json.loads(out.output)
    assert [r["id"] for r in cli] == list(frames["id"])
    assert [r["path"] for r in cli] == list(frames["path"])
    out = runner.invoke(app, ["--config", str(config), "calib", "list", "--oldest-first",
                              "--format", "json"])
    assert [r["id"] for r in json.loads(out.output)] == list(masters["id"])
    assert [r["level"] for r in json.loads(out.output)] == pytest.approx(list(masters["level"]))


def test_products_and_masters_open_as_ccddata(reduced: Settings) -> None:
    with nightlog.Archive(reduced) as archive:
        product = archive.product(int(archive.products()["id"][0]))
        ccd = product.ccd()
        assert isinstance(ccd, CCDData) and ccd.uncertainty is not None
        assert ccd.mask is not None and ccd.mask.shape == ccd.shape
        assert str(ccd.unit) == "adu"
        assert archive.product(str(product.path)).id == product.id  # by path too
        assert product.read().provenance[0].step == "raw"
        for row in archive.masters():
            master = archive.master(int(row["id"]))
            assert master.kind == row["kind"]
            assert master.ccd().shape == ccd.shape
        with pytest.raises(NotFoundError):
            archive.master(9999)
        with pytest.raises(NotFoundError):
            archive.product(9999)


def test_match_and_provenance_are_objects(reduced: Settings) -> None:
    with nightlog.Archive(reduced) as archive:
        products = archive.products()
        frame_id = int(products["frame_id"][0])
        report = archive.match(frame_id)
        chosen = {m["kind"]: m["chosen"] for m in report.matches}
        assert set(chosen) == {"bias", "dark", "flat"} and None not in chosen.values()
        tree = archive.provenance(int(products["id"][0]))
        assert tree.raw.frame_id == frame_id
        assert {m.role: m.id for m in tree.masters} == chosen  # reduced with what it matches
        assert archive.verify(tree.id).problems == []
        Path(tree.raw.path).write_bytes(b"changed")
        assert [c.status for _, c in archive.verify(tree.id).problems] == ["changed"]


def test_the_archive_owns_its_engine_and_writes_nothing(tmp_path: Path, lfc_night: Path
                                                        ) -> None:
    with pytest.raises(CatalogueError, match="no catalogue"):
        nightlog.Archive(tmp_path)
    assert not (tmp_path / "nightlog.sqlite").exists()  # never created by looking
    settings = reduced_night(tmp_path / "night", lfc_night)
    database = settings.archive_root / "nightlog.sqlite"
    archive = nightlog.Archive(settings.archive_root)  # the folder, no nightlog.toml
    before = database.stat().st_mtime_ns
    archive.frames(), archive.masters(), archive.products(), archive.match(31)
    archive.close()
    archive.close()  # twice is harmless
    assert database.stat().st_mtime_ns == before
    with pytest.raises(CatalogueError, match="closed"):
        archive.frames()


def _python_blocks(page: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), re.S)


def test_the_api_page_runs(tmp_path: Path, lfc_night: Path,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Every python block of docs/api.md, in order, on a reduced night in ./nightlog-demo."""
    reduced_night(tmp_path / "nightlog-demo", lfc_night)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NIGHTLOG_CONFIG", raising=False)
    monkeypatch.delenv("NIGHTLOG_DATABASE_URL", raising=False)
    blocks = _python_blocks(ROOT / "docs" / "api.md")
    assert len(blocks) >= 5
    namespace: dict[str, object] = {}
    for block in blocks:
        exec(compile(block, "docs/api.md", "exec"), namespace)
    assert namespace["check"].problems == []  # type: ignore[attr-defined]
