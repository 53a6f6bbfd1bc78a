"""Provenance of a reduced night: the PROVENANCE table and keywords of every product
and master agree with the catalogue and with the files' own bytes; ``nightlog
provenance`` shows the tree down to the raw frames and ``--verify`` catches a raw
file rewritten and a master deleted. SQLite and PostgreSQL (``archive`` fixture)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from astropy.io import fits
from astropy.nddata import CCDData
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from nightlog.catalogue.engine import make_sessionmaker
from nightlog.catalogue.models import Frame, Master, MasterInput, Product, ProductMaster
from nightlog.cli.app import app
from nightlog.coordinator.context import JobContext
from nightlog.coordinator.masters import run_build
from nightlog.coordinator.reduce import run_reduce, science_frames
from nightlog.errors import ChecksumMismatchError
from nightlog.store.integrity import check_file


def _hash(path: str | Path) -> str:
    """SHA-256 of a file, computed here independently of the store's helper."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _table(path: str) -> list[dict[str, Any]]:
    """The PROVENANCE extension read with astropy alone."""
    with fits.open(path) as hdus:
        data = hdus["PROVENANCE"].data
        return [{"step": str(r["STEP"]), "id": int(r["ID"]), "path": str(r["PATH"]),
                 "sha256": str(r["SHA256"]), "used": bool(r["USED"]),
                 "reason": str(r["REASON"])} for r in data]


@pytest.fixture
def reduced(archive: tuple[Engine, JobContext]) -> tuple[Engine, list[int]]:
    """The night with its masters built and every science frame reduced."""
    engine, ctx = archive
    assert any(o.status == "built" for o in run_build(engine, ctx))
    with make_sessionmaker(engine)() as s:
        ids = science_frames(s)
    outcomes = run_reduce(engine, ctx, ids)
    assert [o.status for o in outcomes] == ["reduced"] * len(ids)
    return engine, [o.product_id for o in outcomes if o.product_id is not None]


def test_product_file_lists_raw_and_masters_with_their_checksums(
        reduced: tuple[Engine, list[int]]) -> None:
    engine, product_ids = reduced
    with make_sessionmaker(engine)() as s:
        for pid in product_ids:
            product = s.get(Product, pid)
            assert product is not None
            frame = s.get(Frame, product.frame_id)
            assert frame is not None
            rows = _table(product.path)
            assert rows[0] == {"step": "raw", "id": frame.id, "path": frame.path,
                               "sha256": frame.sha256, "used": True, "reason": ""}
            assert frame.sha256 == product.raw_sha256 == _hash(frame.path)
            links = {pm.role: pm for pm in s.scalars(
                select(ProductMaster).where(ProductMaster.product_id == pid))}
            assert [r["step"] for r in rows[1:]] == ["bias", "dark", "flat"] == list(links)
            header = fits.getheader(product.path)
            for row in rows[1:]:
                link = links[row["step"]]
                master = s.get(Master, link.master_id)
                assert master is not None
                assert row["id"] == master.id and row["path"] == master.path
                assert row["sha256"] == link.sha256 == master.sha256 == _hash(master.path)
                key = f"NL{row['step'].upper()}"
                assert header[key] == master.id
                assert header[f"{key[:5]}SHA"] == master.sha256
            # Software version and a parameter digest anyone can recompute from the
            # catalogue's JSON (threads are not recorded when not set).
            assert header["NLSOFT"] == product.software_version
            science = product.parameters["science"]
            assert science["cosmic_rays"]["threads"] is None
            digest = hashlib.sha256(json.dumps(science, sort_keys=True,
                                               separators=(",", ":")).encode()).hexdigest()
            assert header["NLPARSHA"] == product.parameters["digest"] == digest
            # The extra table costs CCDData.read nothing (warnings are errors here).
            ccd = CCDData.read(product.path)
            assert ccd.uncertainty is not None and ccd.mask is not None


def test_master_file_lists_every_input_frame(reduced: tuple[Engine, list[int]]) -> None:
    engine, _ = reduced
    with make_sessionmaker(engine)() as s:
        masters = s.scalars(select(Master)).all()
        assert {m.kind for m in masters} == {"bias", "dark", "flat"}
        for master in masters:
            rows = _table(master.path)
            inputs = [r for r in rows if r["step"] == "input"]
            recorded = s.scalars(select(MasterInput).where(
                MasterInput.master_id == master.id)).all()
            expected = set()
            for mi in recorded:
                frame = s.get(Frame, mi.frame_id)
                assert frame is not None
                assert mi.sha256 == _hash(frame.path)
                expected.add((frame.id, frame.path, mi.sha256, mi.used, mi.reason or ""))
            assert {(r["id"], r["path"], r["sha256"], r["used"], r["reason"])
                    for r in inputs} == expected
            assert sum(r["used"] for r in inputs) == master.n_frames
            # The masters it was calibrated with, as its statistics record them.
            used = {k: v for k, v in master.stats["masters_used"].items() if v is not None}
            calib = {r["step"]: r for r in rows if r["step"] != "input"}
            assert {k: r["id"] for k, r in calib.items()} == used
            header = fits.getheader(master.path)
            for role, row in calib.items():
                other = s.get(Master, row["id"])
                assert other is not None and row["sha256"] == other.sha256
                assert header[f"NL{role.upper()}"] == other.id
            assert header["NLPARSHA"] == master.parameters["digest"]
            assert header["NLSOFT"] == master.software_version


@pytest.fixture
def cli(reduced: tuple[Engine, list[int]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
        ) -> Any:
    engine, _ = reduced
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NIGHTLOG_CONFIG", raising=False)
    monkeypatch.setenv("NIGHTLOG_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("COLUMNS", "250")
    runner = CliRunner()

    def _run(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, ["provenance", *args])
        assert result.exit_code == code, result.output
        return result.output

    return _run


def test_cli_json_gives_the_whole_tree_with_the_files_checksums(
        cli: Any, reduced: tuple[Engine, list[int]]) -> None:
    engine, product_ids = reduced
    pid = product_ids[0]
    tree = json.loads(cli(str(pid), "--format", "json"))
    assert tree["id"] == pid and tree["sha256"] == _hash(tree["path"])
    assert tree["raw"]["sha256"] == _hash(tree["raw"]["path"])
    assert [m["role"] for m in tree["masters"]] == ["bias", "dark", "flat"]
    with make_sessionmaker(engine)() as s:
        product = s.get(Product, pid)
        assert product is not None
        assert tree["raw"]["frame_id"] == product.frame_id
        for node in tree["masters"]:
            master = s.get(Master, node["id"])
            assert master is not None
            assert (node["kind"], node["night"], node["version"]) == (
                master.kind, master.night.isoformat(), master.version)
            assert node["sha256"] == master.sha256 == _hash(node["path"])
            recorded = {mi.frame_id: mi for mi in s.scalars(
                select(MasterInput).where(MasterInput.master_id == master.id))}
            assert {i["frame_id"] for i in node["inputs"]} == set(recorded)
            for i in node["inputs"]:
                assert i["sha256"] == recorded[i["frame_id"]].sha256 == _hash(i["path"])
                assert i["used"] == recorded[i["frame_id"]].used
    # The same tree by the product's path; and a readable tree by default.
    assert json.loads(cli(tree["path"], "--format", "json")) == tree
    text = cli(str(pid))
    assert f"product {pid}" in text and os.path.basename(tree["raw"]["path"]) in text
    for node in tree["masters"]:
        assert f"{node['role']} master {node['id']}" in text


def test_verify_passes_then_reports_a_rewritten_raw_and_a_deleted_master(
        cli: Any, reduced: tuple[Engine, list[int]]) -> None:
    _, product_ids = reduced
    pid = str(product_ids[0])
    tree = json.loads(cli(pid, "--verify", "--format", "json"))
    n_files = 2 + sum(1 + len(m["inputs"]) for m in tree["masters"])
    assert tree["verification"] == {"checked": n_files, "problems": []}
    assert "all unchanged" in cli(pid, "--verify")

    raw = Path(tree["raw"]["path"])
    data = bytearray(raw.read_bytes())
    data[-1] ^= 0xFF  # one pixel byte of the raw frame
    raw.write_bytes(bytes(data))
    flat = next(m for m in tree["masters"] if m["role"] == "flat")
    Path(flat["path"]).unlink()

    code = ChecksumMismatchError.exit_code
    report = json.loads(cli(pid, "--verify", "--format", "json", code=code)
                        .split("\nerror:")[0])
    problems = {p["path"]: p for p in report["verification"]["problems"]}
    assert set(problems) == {str(raw), flat["path"]}
    assert problems[str(raw)]["status"] == "changed"
    assert problems[str(raw)]["actual"] == _hash(raw) != tree["raw"]["sha256"]
    assert problems[flat["path"]]["status"] == "missing"
    text = cli(pid, "--verify", code=code)
    assert "2 changed or missing" in text
    assert f"changed: raw frame {tree['raw']['frame_id']}" in text
    assert f"missing: flat master {flat['id']}" in text


def test_unknown_product_is_one_clear_error(cli: Any) -> None:
    out = cli("999999", code=4)
    assert "no product with id 999999" in out


@settings(max_examples=30, deadline=None)
@given(content=st.binary(max_size=5000), flip=st.integers(min_value=0))
def test_check_file_tells_unchanged_changed_and_missing(tmp_path_factory: pytest.TempPathFactory,
                                                        content: bytes, flip: int) -> None:
    path = tmp_path_factory.mktemp("f") / "file.fits"
    path.write_bytes(content)
    recorded = hashlib.sha256(content).hexdigest()
    assert check_file(path, recorded).status == "ok"
    if content:
        changed = bytearray(content)
        changed[flip % len(content)] ^= 0x01
        path.write_bytes(bytes(changed))
        result = check_file(path, recorded)
        assert result.status == "changed" and result.actual == _hash(path)
    path.unlink()
    missing = check_file(path, recorded)
    assert missing.status == "missing" and missing.actual is None


def test_verify_names_the_hdu_whose_fits_checksum_a_flipped_byte_breaks(
        cli: Any, reduced: tuple[Engine, list[int]]) -> None:
    _, product_ids = reduced
    pid = str(product_ids[0])
    tree = json.loads(cli(pid, "--format", "json"))
    product = Path(tree["path"])
    with fits.open(product, checksum=True) as hdus:
        assert all(h.verify_checksum() == 1 and h.verify_datasum() == 1 for h in hdus)
        offset = hdus["UNCERT"].fileinfo()["datLoc"] + 100  # one byte of the uncertainty
    data = bytearray(product.read_bytes())
    data[offset] ^= 0x01
    product.write_bytes(bytes(data))

    code = ChecksumMismatchError.exit_code
    report = json.loads(cli(pid, "--verify", "--format", "json", code=code)
                        .split("\nerror:")[0])
    [problem] = report["verification"]["problems"]
    assert problem["path"] == str(product) and problem["status"] == "changed"
    assert problem["detail"] == ("FITS checksum fails in HDU 1 (UNCERT): DATASUM, "
                                 "HDU 1 (UNCERT): CHECKSUM")
    text = cli(pid, "--verify", code=code)
    assert f"changed: product {pid}" in text and "HDU 1 (UNCERT): DATASUM" in text
