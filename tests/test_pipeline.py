"""The whole night on a simulated LFC night: ingest, masters, matching, reduction,
provenance, idempotency and the policy when a master is missing. SQLite and
PostgreSQL (the ``lfc_night`` and ``archive`` fixtures are in conftest.py)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from astropy.nddata import CCDData
from sqlalchemy import Engine, select

from nightlog.calibration.policy import CalibrationPolicy
from nightlog.catalogue.engine import make_sessionmaker
from nightlog.catalogue.masters import products_using, set_quality
from nightlog.catalogue.models import Frame, Master, MasterInput, Product, ProductMaster
from nightlog.coordinator.context import JobContext
from nightlog.coordinator.masters import run_build
from nightlog.coordinator.reduce import run_reduce, science_frames
from nightlog.store.raw import sha256_of


def _science(engine: Engine) -> list[int]:
    with make_sessionmaker(engine)() as s:
        return science_frames(s)


def test_night_is_reduced_with_full_provenance(archive: tuple[Engine, JobContext]) -> None:
    engine, ctx = archive
    built = run_build(engine, ctx)
    assert sorted(o.kind for o in built if o.status == "built") == ["bias", "dark", "flat",
                                                                    "flat"]
    ids = _science(engine)
    outcomes = run_reduce(engine, ctx, ids)
    assert [o.status for o in outcomes] == ["reduced"] * len(ids)
    with make_sessionmaker(engine)() as s:
        for product in s.scalars(select(Product)):
            frame = s.get(Frame, product.frame_id)
            assert frame is not None
            # The product file is what the catalogue says, and opens as CCDData.
            assert sha256_of(Path(product.path)) == product.sha256
            assert product.raw_sha256 == frame.sha256 == sha256_of(Path(frame.path))
            ccd = CCDData.read(product.path, hdu_uncertainty="UNCERT", hdu_mask="MASK")
            assert ccd.uncertainty is not None and ccd.mask is not None
            assert ccd.header["NLRAWSHA"] == frame.sha256
            # Each master used, by role, with its checksum, down to its own inputs.
            roles = {pm.role: pm for pm in s.scalars(
                select(ProductMaster).where(ProductMaster.product_id == product.id))}
            assert set(roles) == {"bias", "dark", "flat"}
            for role, link in roles.items():
                master = s.get(Master, link.master_id)
                assert master is not None and master.kind == role
                assert link.sha256 == master.sha256 == sha256_of(Path(master.path))
                inputs = s.scalars(select(MasterInput).where(
                    MasterInput.master_id == master.id)).all()
                assert len([i for i in inputs if i.used]) == master.n_frames
                for mi in inputs:
                    raw = s.get(Frame, mi.frame_id)
                    assert raw is not None and mi.sha256 == raw.sha256
                if role == "flat":
                    assert master.filter == frame.filter
            params = product.parameters
            assert params["science"]["gain"] == frame.gain
            assert [st["name"] for st in params["steps"]][:1] == ["saturation"]
            assert product.software_version and product.missing_steps == []
            json.dumps(params)  # provenance is plain JSON


def test_second_run_reduces_nothing_and_force_redoes(archive: tuple[Engine, JobContext]) -> None:
    engine, ctx = archive
    run_build(engine, ctx)
    ids = _science(engine)[:1]
    first = run_reduce(engine, ctx, ids)
    assert [o.status for o in first] == ["reduced"]
    assert [o.status for o in run_reduce(engine, ctx, ids)] == ["up-to-date"]
    again = run_reduce(engine, ctx, ids, force=True)
    assert [o.status for o in again] == ["reduced"]
    with make_sessionmaker(engine)() as s:
        old = s.get(Product, first[0].product_id)
        assert old is not None and old.status == "replaced"
        assert old.replaced_by_id == again[0].product_id
        assert Path(old.path).exists()  # kept for provenance


def test_force_leaves_one_current_product_file_per_frame(
        archive: tuple[Engine, JobContext]) -> None:
    engine, ctx = archive
    run_build(engine, ctx)
    ids = _science(engine)[:1]
    (first,) = run_reduce(engine, ctx, ids)
    (second,) = run_reduce(engine, ctx, ids, force=True)
    (third,) = run_reduce(engine, ctx, ids, force=True)
    with make_sessionmaker(engine)() as s:
        products = {p.id: p for p in s.scalars(select(Product).where(
            Product.frame_id == ids[0]))}
        current = [p for p in products.values() if p.status == "current"]
        assert [p.id for p in current] == [third.product_id]
        folder = Path(current[0].path).parent
        # The night's folder holds the one current product file of the frame ...
        assert [p.name for p in folder.glob("*.fits")] == [Path(current[0].path).name]
        # ... and the replaced ones are kept beside, their rows following them, unchanged.
        for pid in (first.product_id, second.product_id):
            old = products[pid]
            assert old.status == "replaced" and old.inputs_key == current[0].inputs_key
            assert Path(old.path).parent == folder / "replaced"
            assert sha256_of(Path(old.path)) == old.sha256
        assert products[first.product_id].replaced_by_id == second.product_id


def test_a_bad_master_is_replaced_on_redo(archive: tuple[Engine, JobContext]) -> None:
    engine, ctx = archive
    run_build(engine, ctx)
    ids = _science(engine)[:1]
    (first,) = run_reduce(engine, ctx, ids)
    with make_sessionmaker(engine)() as s, s.begin():
        link = s.scalars(select(ProductMaster).where(
            ProductMaster.product_id == first.product_id, ProductMaster.role == "dark")).one()
        dark = s.get(Master, link.master_id)
        assert dark is not None
        assert [p.id for p in products_using(s, dark)] == [first.product_id]
        set_quality(s, dark, "bad", "light leak in the dome")
    # Without a usable dark the policy skips the step (and says so).
    assert [o.status for o in run_reduce(engine, ctx, ids)] == ["up-to-date"]
    (redo,) = run_reduce(engine, ctx, ids, redo_superseded=True)
    assert redo.status == "reduced" and redo.missing == ("dark",)
    with make_sessionmaker(engine)() as s:
        product = s.get(Product, redo.product_id)
        assert product is not None and product.missing_steps == ["dark"]
        assert CCDData.read(product.path, hdu_uncertainty="UNCERT",
                            hdu_mask="MASK").header["NLMISS"] == "dark"


def test_stop_policy_refuses_without_a_bias(archive: tuple[Engine, JobContext]) -> None:
    engine, ctx = archive  # no masters built at all
    stop_all = dataclasses.replace(ctx, policy=CalibrationPolicy(
        on_missing={"bias": "stop", "dark": "skip", "flat": "skip"}))
    outcomes = run_reduce(engine, stop_all, _science(engine)[:1])
    assert outcomes[0].status == "stopped" and "no bias master" in outcomes[0].reason
    with make_sessionmaker(engine)() as s:
        assert s.scalars(select(Product)).all() == []
