"""``nightlog calib add``: a master made elsewhere, checked, recorded as external with its
checksum, and matched and used like any master."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from astropy import units as u
from astropy.nddata import CCDData
from typer.testing import CliRunner

import nightlog
from nightlog.catalogue.engine import create_engine
from nightlog.cli.app import app
from nightlog.coordinator.context import JobContext
from nightlog.coordinator.night import finish_night
from nightlog.errors import ConfigurationError, ShapeMismatchError
from nightlog.settings import Settings
from nightlog.store.raw import sha256_of


def _config(settings: Settings) -> Path:
    cfg = settings.archive_root / "nightlog.toml"
    cfg.write_text(f'[database]\nurl = "{settings.database_url}"\n', encoding="utf-8")
    return cfg


def _write(path: Path, data: np.ndarray, unit: u.UnitBase, **header: object) -> Path:
    CCDData(np.asarray(data, dtype=np.float32), unit=unit, meta=header).write(path)
    return path


def _add(runner: CliRunner, cfg: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["--config", str(cfg), "calib", "add", *args])
    return result.exit_code, result.output


def test_an_external_bias_is_checked_recorded_and_matched(reduced: Settings,
                                                          runner: CliRunner,
                                                          tmp_path: Path) -> None:
    cfg = _config(reduced)
    with nightlog.Archive(cfg) as archive:
        built = archive.master(int(archive.masters(kind="bias")["id"][0]))
        bias = built.ccd()
        science = int(archive.products()["frame_id"][0])
    # A bias made by another pipeline (ccdproc writes CCDData like this): 2 ADU higher.
    path = _write(tmp_path / "ccdproc_bias.fits", np.asarray(bias.data) + 2.0, u.adu,
                  IMAGETYP="BIAS", INSTRUME=bias.header["INSTRUME"], NCOMBINE=20,
                  OVERSCAN=bias.header["OVERSCAN"],
                  **{"DATE-OBS": bias.header["DATE-OBS"]})
    code, out = _add(runner, cfg, str(path), "--like", str(science), "--format", "json")
    assert code == 0, out
    (added,) = json.loads(out)
    assert added["kind"] == "bias" and added["external"] is True
    assert added["sha256"] == sha256_of(path) and added["superseded"] == built.id
    assert added["unit"] == "adu" and added["version"] == 2

    with nightlog.Archive(cfg) as archive:
        record = archive.master(added["id"]).record
        assert record["stats"]["external"] is True and record["n_frames"] == 20
        assert record["level"] == pytest.approx(float(np.median(bias.data)) + 2.0, abs=1e-3)
        report = archive.match(science)
        chosen = {m["kind"]: m["chosen"] for m in report.matches}
        assert chosen["bias"] == added["id"]  # matched like any master

    # Reduced again with it: the product names it, and its provenance verifies.
    engine = create_engine(reduced.database_url)
    try:
        finish_night(engine, JobContext.from_settings(reduced), workers=1, local=True,
                     redo_superseded=True)
    finally:
        engine.dispose()
    with nightlog.Archive(cfg) as archive:
        (product,) = archive.products(frame_id=science)
        tree = archive.provenance(int(product["id"]))
        assert {m.role: m.id for m in tree.masters}["bias"] == added["id"]
        assert archive.product(int(product["id"])).ccd().header["NLBIAS"] == added["id"]
        assert archive.verify(tree.id).problems == []
        raw = bytearray(path.read_bytes())
        raw[-10] ^= 0xFF
        path.write_bytes(bytes(raw))
        problems = archive.verify(tree.id).problems
        assert [(c.path, c.status) for _, c in problems] == [(str(path.resolve()), "changed")]


def test_an_external_flat_joins_its_filter(reduced: Settings, runner: CliRunner,
                                           tmp_path: Path) -> None:
    cfg = _config(reduced)
    with nightlog.Archive(cfg) as archive:
        flats = archive.masters(kind="flat")
        ccd = archive.master(int(flats["id"][0])).ccd()
        products = archive.products()
    by_filter = {str(r["filter"]): int(r["frame_id"]) for r in products}
    path = _write(tmp_path / "flat_i.fits", ccd.data, u.dimensionless_unscaled,
                  IMAGETYP="FLAT", FILTER="i'", OVERSCAN=ccd.header["OVERSCAN"])
    code, out = _add(runner, cfg, str(path), "--like", str(by_filter["g'"]))
    assert code == ConfigurationError.exit_code and "filter" in out
    code, out = _add(runner, cfg, str(path), "--like", str(by_filter["i'"]))
    assert code == 0, out and "external flat" in out
    with nightlog.Archive(cfg) as archive:
        (row,) = archive.masters(kind="flat", filter="i'")
        assert row["path"] == str(path.resolve())
        chosen = {m["kind"]: m["chosen"] for m in archive.match(by_filter["i'"]).matches}
        assert chosen["flat"] == int(row["id"])
        chosen = {m["kind"]: m["chosen"] for m in archive.match(by_filter["g'"]).matches}
        assert chosen["flat"] != int(row["id"])


@pytest.mark.parametrize(("unit", "header", "kind", "needle"), [
    (u.adu / u.s, {"IMAGETYP": "BIAS"}, None, "unit"),
    (u.adu, {}, None, "--kind"),
    (u.adu, {"IMAGETYP": "BIAS"}, "dark", "says it is a bias"),
    (u.adu, {"IMAGETYP": "DARK"}, None, "EXPTIME"),
    (u.adu, {"IMAGETYP": "BIAS", "INSTRUME": "Other Cam"}, None, "instrument"),
    (u.dimensionless_unscaled, {"IMAGETYP": "FLAT"}, None, "filter"),
    (u.dimensionless_unscaled, {"IMAGETYP": "FLAT", "FILTER": "g'"}, None, "normalised"),
])
def test_masters_that_do_not_fit_are_refused(reduced: Settings, runner: CliRunner,
                                             tmp_path: Path, unit: u.UnitBase,
                                             header: dict[str, object], kind: str | None,
                                             needle: str) -> None:
    cfg = _config(reduced)
    with nightlog.Archive(cfg) as archive:
        shape = archive.master(int(archive.masters()["id"][0])).ccd().shape
        frame = str(int(archive.products()["frame_id"][0]))
        before = len(archive.masters(all_versions=True))
    path = _write(tmp_path / "m.fits", np.full(shape, 3.0), unit, OVERSCAN="[1:2,1:2]",
                  **header)
    code, out = _add(runner, cfg, str(path), "--like", frame,
                     *(["--kind", kind] if kind else []))
    assert code == ConfigurationError.exit_code, out
    assert needle in out
    with nightlog.Archive(cfg) as archive:
        assert len(archive.masters(all_versions=True)) == before  # nothing recorded


def test_without_like_the_one_set_up_of_its_instrument_and_shape_is_taken(
        reduced: Settings, runner: CliRunner, tmp_path: Path) -> None:
    cfg = _config(reduced)
    with nightlog.Archive(cfg) as archive:
        flat = archive.master(int(archive.masters(kind="flat", filter="i'")["id"][0])).ccd()
        frames = archive.frames(kind="science", filter="i'")
    path = _write(tmp_path / "flat_i.fits", flat.data, u.dimensionless_unscaled,
                  IMAGETYP="FLAT", FILTER="i'", INSTRUME=flat.header["INSTRUME"],
                  OVERSCAN=flat.header["OVERSCAN"])
    code, out = _add(runner, cfg, str(path), "--format", "json")
    assert code == 0, out
    (added,) = json.loads(out)
    with nightlog.Archive(cfg) as archive:
        chosen = {m["kind"]: m["chosen"] for m in archive.match(int(frames["id"][0])).matches}
    assert chosen["flat"] == added["id"]
    nameless = _write(tmp_path / "nameless.fits", flat.data, u.dimensionless_unscaled,
                      IMAGETYP="FLAT", FILTER="i'")
    code, out = _add(runner, cfg, str(nameless))
    assert code == ConfigurationError.exit_code and "--like" in out
    other = _write(tmp_path / "other.fits", flat.data[:-1], u.dimensionless_unscaled,
                   IMAGETYP="FLAT", FILTER="i'", INSTRUME=flat.header["INSTRUME"])
    code, out = _add(runner, cfg, str(other))
    assert code == ConfigurationError.exit_code and "0 set-ups" in out


def test_a_master_of_another_shape_is_refused(reduced: Settings, runner: CliRunner,
                                              tmp_path: Path) -> None:
    cfg = _config(reduced)
    with nightlog.Archive(cfg) as archive:
        frame = str(int(archive.products()["frame_id"][0]))
    path = _write(tmp_path / "small.fits", np.zeros((10, 12)), u.adu, IMAGETYP="BIAS")
    code, out = _add(runner, cfg, str(path), "--like", frame)
    assert code == ShapeMismatchError.exit_code and "10x12" in out


def test_a_master_not_overscan_subtracted_like_its_frames_is_refused(
        reduced: Settings, runner: CliRunner, tmp_path: Path) -> None:
    cfg = _config(reduced)
    with nightlog.Archive(cfg) as archive:
        bias = archive.master(int(archive.masters(kind="bias")["id"][0])).ccd()
        frame = str(int(archive.products()["frame_id"][0]))
    path = _write(tmp_path / "raw_bias.fits", bias.data, u.adu, IMAGETYP="BIAS")
    code, out = _add(runner, cfg, str(path), "--like", frame)
    assert code == ConfigurationError.exit_code and "overscan" in out
