"""``nightlog demo --camera cmos``: the simulated ZWO ASI1600MM Pro night through the
whole flow (ingest, masters per gain setting, reduction, the night report)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from astropy.io import fits
from typer.testing import CliRunner

from nightlog.cli.app import app
from tests.factories import archive_cli


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("demo-cmos") / "nightlog-demo"
    result = CliRunner().invoke(app, ["demo", str(where), "--camera", "cmos", "--scale", "0.1"],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "science frames reduced: 7 of 7" in result.output
    assert f"night report: {where / 'reports' / '2021-03-02.html'}" in result.output
    return where


@pytest.fixture
def run(demo_dir: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    return archive_cli(demo_dir, monkeypatch)


def test_every_frame_is_read_by_the_asi1600_profile(run) -> None:  # type: ignore[no-untyped-def]
    frames = json.loads(run("frames", "--format", "json"))
    assert {f["profile"] for f in frames} == {"zwo_asi1600_nina"}
    assert {(f["gain_setting"], f["offset"]) for f in frames} == {(0.0, 10.0), (139.0, 50.0)}
    windows = [f for f in frames if f["window"] is not None]
    assert len(windows) == 1 and windows[0]["kind"] == "science"


def test_masters_are_built_per_gain_setting(run) -> None:  # type: ignore[no-untyped-def]
    masters = json.loads(run("calib", "list", "--format", "json"))
    # bias and flat per setting; darks per setting at 30, 60, 120 and 300 s
    assert Counter(m["kind"] for m in masters) == {"bias": 2, "dark": 8, "flat": 2}
    for setting in ("gain_setting=0.0|offset=10.0", "gain_setting=139.0|offset=50.0"):
        assert sum(setting in m["group_key"] for m in masters) == 6
    flats = [m for m in masters if m["kind"] == "flat"]
    assert all(m["stats"]["gain_from_flats"] > 0 for m in flats)


def test_the_window_is_reduced_from_cropped_masters_of_its_setting(
        run, demo_dir: Path) -> None:  # type: ignore[no-untyped-def]
    frames = json.loads(run("frames", "--kind", "science", "--format", "json"))
    window = next(f for f in frames if f["window"] is not None)
    report = json.loads(run("match", str(window["id"]), "--format", "json"))
    kinds = {m["kind"]: m for m in report["matches"]}
    assert all(kinds[k]["chosen"] is not None for k in ("bias", "dark", "flat"))
    assert kinds["dark"]["how"].startswith("exact exposure")
    table = run("match", str(window["id"]))
    assert "group.gain_setting" in table and "cropped" in table
    product = next((demo_dir / "products").rglob(
        Path(window["path"]).stem + "_final_*.fits"))
    header = fits.getheader(product)
    assert header["WINDOW"] == window["window"] and header["NLCROP"] == "bias,dark,flat"
    assert header["QSTEP"] == 16


def test_the_night_report_shows_the_cmos_night(demo_dir: Path) -> None:
    page = (demo_dir / "reports" / "2021-03-02.html").read_text(encoding="utf-8")
    assert "ZWO ASI1600MM Pro" in page
    assert page.count("<img") >= 7
