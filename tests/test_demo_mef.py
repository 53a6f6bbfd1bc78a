"""``nightlog demo --camera mef``: the simulated LCO Sinistro night (four amplifiers
written as MEF) through the whole flow (ingest, masters, reduction, the night
report) under the built-in profile alone."""

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
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    where = tmp_path_factory.mktemp("demo-mef") / "nightlog-demo"
    result = CliRunner().invoke(app, ["demo", str(where), "--camera", "mef", "--scale", "0.1"],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return where, result.output


@pytest.fixture
def run(demo: tuple[Path, str], monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    return archive_cli(demo[0], monkeypatch)


def test_the_demo_reduces_every_science_frame_without_a_warning(demo: tuple[Path, str]) -> None:
    where, output = demo
    assert "science frames reduced: 6 of 6" in output
    assert f"night report: {where / 'reports' / '2019-04-05.html'}" in output
    # The built-in profile reads every number and region from the extensions: no
    # profile warning (a primary header without SATURATE or BIASSEC is no reason).
    assert "warning" not in output
    # Nothing in the configuration for this camera.
    assert "[instruments" not in (where / "nightlog.toml").read_text(encoding="utf-8")


def test_every_frame_is_the_assembled_detector_under_lco_sinistro(run) -> None:  # type: ignore[no-untyped-def]
    frames = json.loads(run("frames", "--format", "json"))
    assert len(frames) == 27
    assert {f["profile"] for f in frames} == {"lco_sinistro"}
    assert {(f["naxis2"], f["naxis1"]) for f in frames} == {(410, 410)}
    assert "0 quarantined file(s)" in run("quarantine")


def test_masters_record_each_amplifier(run) -> None:  # type: ignore[no-untyped-def]
    masters = json.loads(run("calib", "list", "--format", "json"))
    assert Counter(m["kind"] for m in masters) == {"bias": 1, "dark": 1, "flat": 2}
    for m in masters:
        if m["kind"] in ("bias", "flat"):
            amps = m["stats"]["amplifiers"]
            assert [a["name"] for a in amps] == ["SCI,1", "SCI,2", "SCI,3", "SCI,4"]
    flats = [m for m in masters if m["kind"] == "flat"]
    assert all(a["gain"] > 0 for m in flats for a in m["stats"]["amplifiers"])
    # Assembled from the amplifiers times their gains: levels in electrons, not ADU.
    assert {m["kind"]: m["level_unit"] for m in masters} == {
        "bias": "e-", "dark": "e-/s", "flat": "e-"}


def test_a_product_is_one_image_with_the_amplifiers_cards(
        run, demo: tuple[Path, str]) -> None:  # type: ignore[no-untyped-def]
    frames = json.loads(run("frames", "--kind", "science", "--format", "json"))
    product = next((demo[0] / "products").rglob(
        Path(frames[0]["path"]).stem + "_final_*.fits"))
    with fits.open(product) as hdus:
        assert hdus[0].data.shape == (410, 410)
        header = hdus[0].header
    for k in range(1, 5):
        assert header[f"GAIN_A{k}"] > 0 and header[f"RDN_A{k}"] > 0


def test_the_night_report_shows_the_mef_night(demo: tuple[Path, str]) -> None:
    page = (demo[0] / "reports" / "2019-04-05.html").read_text(encoding="utf-8")
    assert "fa15" in page
    assert page.count("<img") >= 6


def test_profile_check_shows_each_amplifier(run, demo: tuple[Path, str]) -> None:  # type: ignore[no-untyped-def]
    """``nightlog profile check`` reads the file as ingestion does: the assembled
    detector, and the settings per amplifier, without a false warning."""
    path = sorted((demo[0] / "raw").glob("*-e00.fits"))[0]
    (check,) = json.loads(run("profile", "check", str(path), "--format", "json"))
    assert check["error"] is None and check["warnings"] == []
    assert check["match"]["profile"] == "lco_sinistro"
    assert check["fields"]["shape"]["value"] == "410x410"
    settings = check["settings"]
    assert settings["SCI,2 gain"]["value"] == 1.94
    assert settings["SCI,3 data"]["source"] == "placed at DETSEC [410:206,410:206]"
    assert settings["SCI,4 overscan"]["value"] == "[208:213,1:205]"
