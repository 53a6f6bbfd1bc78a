"""The demo and the calibration commands end to end through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nightlog.cli.app import app
from tests.factories import archive_cli


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("demo") / "nightlog-demo"
    result = CliRunner().invoke(app, ["demo", str(where), "--scale", "0.1"],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "science frames reduced: 8 of 8" in result.output
    assert (where / "nightlog.toml").is_file()
    return where


@pytest.fixture
def run(demo_dir: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    return archive_cli(demo_dir, monkeypatch)


def test_calib_list_show_and_match(run) -> None:  # type: ignore[no-untyped-def]
    masters = json.loads(run("calib", "list", "--format", "json"))
    assert sorted(m["kind"] for m in masters) == ["bias", "dark", "flat", "flat"]
    flat = next(m for m in masters if m["kind"] == "flat")
    shown = json.loads(run("calib", "show", str(flat["id"]), "--format", "json"))[0]
    assert len([i for i in shown["inputs"] if i["used"]]) == flat["n_frames"]
    assert len(shown["products"]) == 4  # the four science frames of its filter
    science = json.loads(run("frames", "--kind", "science", "--format", "json"))
    report = json.loads(run("match", str(science[0]["id"]), "--format", "json"))
    kinds = {m["kind"]: m for m in report["matches"]}
    assert set(kinds) == {"bias", "dark", "flat"}
    assert all(m["chosen"] is not None for m in kinds.values())
    flats = kinds["flat"]["candidates"]
    assert len(flats) == 2  # one per filter: the other filter fails its group rule
    failed = [c for c in flats if not c["usable"]]
    assert [r["rule"] for r in failed[0]["rules"] if not r["passed"]] == ["group.filter"]
    table = run("match", str(science[0]["id"]))
    assert "FAIL" in table and "group.filter" in table


def test_calib_list_and_show_tables_give_units_and_fit_80_columns(
        demo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(demo_dir)
    monkeypatch.delenv("NIGHTLOG_CONFIG", raising=False)
    monkeypatch.delenv("NIGHTLOG_DATABASE_URL", raising=False)
    runner = CliRunner()
    listed = runner.invoke(app, ["calib", "list"], env={"COLUMNS": "80"})
    assert listed.exit_code == 0, listed.output
    assert max(len(line) for line in listed.output.splitlines()) <= 80
    masters = json.loads(runner.invoke(app, ["calib", "list", "--format", "json"]).output)
    units = {m["kind"]: (m["level_unit"], m["noise_unit"]) for m in masters}
    # the demo's dark is scaled by exposure (a rate); a flat's noise is relative
    assert units == {"bias": ("adu", "adu"), "dark": ("adu/s", "adu/s"), "flat": ("adu", "1")}
    bias = next(m for m in masters if m["kind"] == "bias")
    assert f"{bias['level']:.3f} adu" in listed.output
    # the read noise the bias frames measured, as calib history gives it, and the gain
    assert f"{bias['stats']['read_noise_e']:.2f} e-" in listed.output
    assert "e-/adu" in listed.output
    flat = next(m for m in masters if m["kind"] == "flat")
    shown = runner.invoke(app, ["calib", "show", str(flat["id"])], env={"COLUMNS": "80"})
    assert shown.exit_code == 0, shown.output
    assert "{" not in shown.output and "'" not in shown.output.replace(flat["filter"], "")
    assert "e-/adu" in shown.output  # the gain measured from the flats, with its unit


def test_reduce_again_is_a_no_op(run) -> None:  # type: ignore[no-untyped-def]
    out = run("reduce")
    assert "up-to-date" in out and "reduced " not in out


def test_mark_bad_and_certify(run) -> None:  # type: ignore[no-untyped-def]
    masters = json.loads(run("calib", "list", "--kind", "dark", "--format", "json"))
    dark = masters[0]["id"]
    out = run("calib", "mark-bad", str(dark), "--reason", "shutter stuck")
    assert "marked bad" in out and "product(s) used it" in out
    assert json.loads(run("calib", "list", "--bad", "--format", "json"))[0]["id"] == dark
    run("calib", "mark-bad", str(dark), "--reason", "", code=4)  # a reason is required
    run("calib", "mark-good", str(dark))
    run("calib", "certify", str(dark), "--from", "2016-01-01", "--until", "2016-02-01")
    bias = json.loads(run("calib", "list", "--kind", "bias", "--format", "json"))[0]["id"]
    run("calib", "certify", str(bias), "--from", "2016-01-01", "--until", "2016-02-01")
    out = run("calib", "certify", str(bias), "--from", "2016-02-01", "--until", "2016-01-01",
              code=4)
    assert "empty" in out
    run("calib", "show", "99999", code=4)


def test_mark_bad_redo_reduces_the_users_again(run) -> None:  # type: ignore[no-untyped-def]
    flats = json.loads(run("calib", "list", "--kind", "flat", "--format", "json"))
    flat = flats[0]
    before = json.loads(run("calib", "show", str(flat["id"]), "--format", "json"))[0]
    assert len(before["products"]) == 4
    out = run("calib", "mark-bad", str(flat["id"]), "--reason", "dust donut", "--redo")
    # No other flat of that filter exists: the policy decides (the demo's: skip
    # the flat step and flag it) and each frame says what happened.
    assert out.count("frame ") == 4, out
    for line in (ln for ln in out.splitlines() if ln.startswith("frame ")):
        assert ": reduced (product " in line and "without flat" in line, line
    # The products that used the bad master are current no more.
    assert json.loads(run("calib", "show", str(flat["id"]), "--format", "json"))[0][
        "products"] == []
    run("calib", "mark-good", str(flat["id"]))
    again = run("reduce", "--redo-superseded")
    assert "reduced" in again


def test_ingest_build_and_reduce_speak_json_and_csv_to_scripts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import csv
    import io

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NIGHTLOG_CONFIG", raising=False)
    monkeypatch.setenv("NIGHTLOG_DATABASE_URL", f"sqlite:///{tmp_path / 'n.sqlite'}")
    runner = CliRunner()
    made = runner.invoke(app, ["simulate", str(tmp_path / "raw"), "--scale", "0.1"])
    assert made.exit_code == 0, made.output
    files = sorted((tmp_path / "raw").glob("*.fits"))
    ingested = runner.invoke(app, ["ingest", str(tmp_path / "raw"), str(tmp_path / "gone"),
                                   "--format", "json"])
    assert ingested.exit_code == 1  # the missing path failed, and says so
    document = json.loads(ingested.stdout)
    assert document["counts"] == {"added": len(files), "failed": 1}
    assert [p["path"] for p in document["problems"]] == [str(tmp_path / "gone")]
    built = runner.invoke(app, ["calib", "build", "--format", "json"])
    assert built.exit_code == 0, built.output
    groups = json.loads(built.stdout)["outcomes"]
    assert sorted(g["kind"] for g in groups) == ["bias", "dark", "flat", "flat"]
    assert all(g["status"] == "built" and g["master_id"] for g in groups)
    reduced = runner.invoke(app, ["reduce", "--format", "csv"])
    assert reduced.exit_code == 0, reduced.output
    rows = list(csv.DictReader(io.StringIO(reduced.stdout)))
    science = json.loads(runner.invoke(app, ["frames", "--kind", "science",
                                             "--format", "json"]).stdout)
    assert sorted(int(r["frame_id"]) for r in rows) == sorted(f["id"] for f in science)
    assert {r["status"] for r in rows} == {"reduced"}
    again = json.loads(runner.invoke(app, ["reduce", "--format", "json"]).stdout)
    assert again["counts"] == {"up-to-date": len(science)}
