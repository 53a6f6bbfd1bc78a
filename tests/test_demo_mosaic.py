"""``nightlog demo --camera mosaic``: the simulated two-CCD mosaic night through the
whole flow under the built-in profile alone, and the commands a user looks at it
with, per CCD: ``frames``, ``calib list``, ``match``, ``provenance``, the report."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nightlog.cli.app import app
from tests.factories import archive_cli


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    where = tmp_path_factory.mktemp("demo-mosaic") / "nightlog-demo"
    result = CliRunner().invoke(app, ["demo", str(where), "--camera", "mosaic", "--scale",
                                      "0.1"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return where, result.output


@pytest.fixture
def run(demo: tuple[Path, str], monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    return archive_cli(demo[0], monkeypatch)


def test_the_demo_reduces_every_ccd_of_every_science_file(demo: tuple[Path, str]) -> None:
    _where, output = demo
    assert "science frames reduced: 12 of 12" in output  # 6 files x 2 CCDs
    assert "warning" not in output
    assert "27 file(s)" in output


def test_frames_and_masters_are_per_ccd(run) -> None:  # type: ignore[no-untyped-def]
    frames = json.loads(run("frames", "--format", "json"))
    assert len(frames) == 2 * 27
    assert Counter(f["ccd"] for f in frames) == {"CCD1": 27, "CCD2": 27}
    assert {f["profile"] for f in frames} == {"mosaic_2x2"}
    assert "ccd" in run("frames", "--kind", "science").splitlines()[1]
    masters = json.loads(run("calib", "list", "--format", "json"))
    assert Counter((m["kind"], m["ccd"]) for m in masters) == {
        (kind, ccd): n for kind, n in (("bias", 1), ("dark", 1), ("flat", 2))
        for ccd in ("CCD1", "CCD2")}
    assert "0 quarantined file(s)" in run("quarantine")


def test_match_and_provenance_stay_on_the_frames_ccd(
        run, demo: tuple[Path, str]) -> None:  # type: ignore[no-untyped-def]
    frames = json.loads(run("frames", "--kind", "science", "--format", "json"))
    ccd2 = next(f for f in frames if f["ccd"] == "CCD2")
    masters = {m["id"]: m["ccd"] for m in json.loads(run("calib", "list", "--format",
                                                          "json"))}
    report = json.loads(run("match", str(ccd2["id"]), "--format", "json"))
    chosen = [m["chosen"] for m in report["matches"]]
    assert len(chosen) == 3 and {masters[c] for c in chosen} == {"CCD2"}
    (product,) = (demo[0] / "products").rglob(Path(ccd2["path"]).stem + "_CCD2_final_*.fits")
    assert f"raw frame {ccd2['id']} (CCD CCD2)" in run("provenance", str(product))


def test_the_night_report_names_each_ccd(demo: tuple[Path, str]) -> None:
    page = (demo[0] / "reports" / "2019-04-05.html").read_text(encoding="utf-8")
    assert page.count("CCD: CCD1") == 6 and page.count("CCD: CCD2") == 6
