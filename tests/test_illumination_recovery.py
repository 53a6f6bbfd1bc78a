"""A simulated night whose flats' illumination differs from the night sky's (a 3 %
tilt across the field in the flats only, a uniform sky, dithered stars), reduced
through the public flow with and without ``illumination = "night-sky"``.

The simulator's truth is that the sky is uniform, so every large-scale structure
left in a reduced frame is an error. Flatness: the scatter of 32 x 32 block means
of a frame's sky (divided by its median; masked pixels and stars left out). Noise
floor: the same scatter that the reduction's noise alone gives, measured on the
frame as half the scatter of (even rows − odd rows) of each block; it holds every
noise that is independent from row to row (the pixels', each frame's per-row
overscan level, the master bias's rows and the master flat's pixels), while a
large-scale pattern is the same on adjacent rows and cancels.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.io import fits
from scipy import ndimage
from sqlalchemy import select

from nightlog.calibration.match_report import explain_match
from nightlog.catalogue.engine import create_engine, make_sessionmaker
from nightlog.catalogue.models import Master, MasterInput, Product, ProductMaster
from nightlog.coordinator.context import JobContext
from nightlog.coordinator.night import finish_night
from nightlog.settings import Settings, load_settings
from nightlog.simulate import load_truth, simulate_night
from nightlog.states import ProductStatus
from nightlog.store.products import read_product
from tests.factories import reduced_night

_ON = '[instruments.lfc]\nillumination = "night-sky"\nillumination_min_frames = 5\n'
_BLOCK = 32


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("illumination") / "sim"
    # 12 science frames alternate g' and i': 6 per filter, dithered by ~150 px.
    simulate_night(out, camera="lfc", scale=0.2, seed=7, n_bias=5, n_dark=5, n_flat=5,
                   n_science=12, twilight_gradient=0.03, sky_gradient=0.0, dither_px=150)
    return out


def _night(tmp_path_factory: pytest.TempPathFactory, raw: Path, name: str, config: str
           ) -> Settings:
    folder = tmp_path_factory.mktemp(name)
    (folder / "nightlog.toml").write_text(config, encoding="utf-8")
    return reduced_night(folder, raw)


@pytest.fixture(scope="module")
def corrected(raw: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return _night(tmp_path_factory, raw, "with-illumination", _ON)


@pytest.fixture(scope="module")
def uncorrected(raw: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return _night(tmp_path_factory, raw, "without-illumination", "")


def _current_products(settings: Settings) -> list[Product]:
    engine = create_engine(settings.database_url)
    try:
        with make_sessionmaker(engine)() as s:
            rows = list(s.scalars(select(Product).where(
                Product.status == ProductStatus.CURRENT).order_by(Product.frame_id)))
            s.expunge_all()
            return rows
    finally:
        engine.dispose()


def _flatness(path: str) -> tuple[float, float]:
    """(flatness, noise floor) of one product's sky, as the module doc says."""
    ccd = read_product(path).ccd
    data = np.asarray(ccd.data, dtype=np.float64)
    bad = np.asarray(ccd.mask, dtype=bool) | ~np.isfinite(data)
    data = data / np.median(data[~bad])
    sigma = 1.4826 * np.median(np.abs(data[~bad] - 1.0))
    bad |= ndimage.binary_dilation(data - 1.0 > 3.0 * sigma, iterations=3)
    ny, nx = (n - n % _BLOCK for n in data.shape)
    data, bad = data[:ny, :nx], bad[:ny, :nx]
    even = (np.arange(ny) % 2 == 0)[:, None] & np.ones((1, nx), bool)

    def block_means(rows: np.ndarray) -> np.ndarray:
        use = ~bad & rows
        shape = (ny // _BLOCK, _BLOCK, nx // _BLOCK, _BLOCK)
        total = np.where(use, data, 0.0).reshape(shape).sum(axis=(1, 3))
        return total / use.reshape(shape).sum(axis=(1, 3))

    a, b = block_means(even), block_means(~even)
    return float(np.std((a + b) / 2)), float(np.std(a - b) / 2)


def _ratios(settings: Settings) -> list[tuple[float, float]]:
    return [_flatness(p.path) for p in _current_products(settings)]


def test_with_the_option_the_reduced_sky_is_flat_to_its_noise_floor(
        corrected: Settings) -> None:
    figures = _ratios(corrected)
    assert len(figures) == 12
    flat = np.sqrt(np.mean([f**2 for f, _ in figures]))
    floor = np.sqrt(np.mean([n**2 for _, n in figures]))
    assert flat <= 1.1 * floor, [round(f / n, 2) for f, n in figures]
    assert all(f <= 1.25 * n for f, n in figures), [round(f / n, 2) for f, n in figures]


def test_without_the_option_the_flats_illumination_stays(uncorrected: Settings,
                                                          raw: Path) -> None:
    figures = _ratios(uncorrected)
    flat = np.sqrt(np.mean([f**2 for f, _ in figures]))
    floor = np.sqrt(np.mean([n**2 for _, n in figures]))
    assert flat > 5 * floor
    # The flats' tilt (±3 % across the field, an rms of 3 %/√3 over the frame) is
    # what is left, in the opposite sense, in every frame.
    tilt = load_truth(raw).summary["illumination"]["twilight_gradient"]
    assert flat == pytest.approx(tilt / np.sqrt(3), rel=0.15)


def _catalogue(settings: Settings) -> Any:
    return create_engine(settings.database_url)


def test_each_product_names_its_illumination_model(corrected: Settings) -> None:
    engine = _catalogue(corrected)
    try:
        with make_sessionmaker(engine)() as s:
            models = list(s.scalars(select(Master).where(Master.kind == "illumination")))
            assert sorted(m.filter for m in models) == ["g'", "i'"]
            flats = {m.filter: m for m in s.scalars(select(Master).where(Master.kind == "flat"))}
            for model in models:
                assert model.n_frames == 6
                assert model.stats["flat_id"] == flats[model.filter].id
                inputs = list(s.scalars(select(MasterInput).where(
                    MasterInput.master_id == model.id)))
                assert len(inputs) == 6 and all(i.used for i in inputs)
            by_id = {m.id: m for m in models}
            for product in s.scalars(select(Product).where(
                    Product.status == ProductStatus.CURRENT)):
                links = {link.role: link for link in s.scalars(select(ProductMaster).where(
                    ProductMaster.product_id == product.id))}
                model = by_id[links["illumination"].master_id]
                assert links["illumination"].sha256 == model.sha256
                assert "illumination" not in (product.missing_steps or [])
                with fits.open(product.path) as hdul:
                    header = hdul[0].header
                    assert header["NLILLUM"] == model.id
                    assert header["NLILLSHA"] == model.sha256
                    assert header["ILLUMCOR"] is True
                    table = hdul["PROVENANCE"].data
                    steps = {str(r["step"]).strip(): str(r["sha256"]).strip() for r in table}
                    assert steps["illumination"] == model.sha256
                # The model file names what it was made of.
                with fits.open(model.path) as hdul:
                    assert hdul[0].header["NLFLAT"] == model.stats["flat_id"]
                    assert hdul[0].header["ILLUMNFR"] == 6
    finally:
        engine.dispose()


def test_match_shows_the_model_and_its_rules(corrected: Settings) -> None:
    engine = _catalogue(corrected)
    ctx = JobContext.from_settings(corrected)
    try:
        with make_sessionmaker(engine)() as s:
            product = s.scalars(select(Product)).first()
            assert product is not None
            report = explain_match(s, ctx, str(product.frame_id))
            record = next(m for m in report.as_dict()["matches"]
                          if m["kind"] == "illumination")
            assert record["chosen"] is not None
            rules = {r["rule"] for c in record["candidates"] for r in c["rules"]}
            assert {"night", "flat", "current", "quality"} <= rules
    finally:
        engine.dispose()


def test_finishing_the_night_again_builds_and_reduces_nothing(corrected: Settings) -> None:
    engine = _catalogue(corrected)
    try:
        run = finish_night(engine, JobContext.from_settings(corrected), workers=1, local=True)
        assert [b for b in run.builds if b.kind == "illumination"] == []
        assert {o.status for o in run.outcomes} == {"up-to-date"}
    finally:
        engine.dispose()


def test_too_few_frames_skip_the_step_and_say_why(raw: Path,
                                                  tmp_path_factory: pytest.TempPathFactory
                                                  ) -> None:
    folder = tmp_path_factory.mktemp("too-few")
    (folder / "nightlog.toml").write_text(
        '[instruments.lfc]\nillumination = "night-sky"\nillumination_min_frames = 7\n',
        encoding="utf-8")
    shutil.copytree(raw, folder / "raw")
    from nightlog.catalogue.schema import upgrade
    from nightlog.coordinator.ingest import IngestContext, discover, run_ingest

    settings = load_settings(env={}, cwd=folder)
    engine = create_engine(settings.database_url)
    try:
        upgrade(engine)
        run_ingest(engine, discover([folder / "raw"], settings.ingest.patterns),
                   IngestContext.from_settings(settings))
        run = finish_night(engine, JobContext.from_settings(settings), workers=1, local=True)
        skipped = [b for b in run.builds if b.kind == "illumination"]
        assert len(skipped) == 2 and {b.status for b in skipped} == {"skipped"}
        assert all("6 science frame(s)" in b.reason and "7 needed" in b.reason
                   for b in skipped)
        with make_sessionmaker(engine)() as s:
            assert s.scalars(select(Master).where(Master.kind == "illumination")).first() is None
            products = list(s.scalars(select(Product)))
            assert len(products) == 12
            for product in products:
                assert "illumination" in product.missing_steps
                assert "7 needed" in product.stats["missing"]["illumination"]
                assert "illumination" in fits.getheader(product.path)["NLMISS"]
                assert "ILLUMCOR" not in fits.getheader(product.path)
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_on_postgresql_the_models_are_built_recorded_and_applied(
        raw: Path, pg_schema_url: str, tmp_path: Path) -> None:
    (tmp_path / "nightlog.toml").write_text(_ON, encoding="utf-8")
    settings = reduced_night(tmp_path, raw, pg_schema_url)
    engine = _catalogue(settings)
    try:
        with make_sessionmaker(engine)() as s:
            models = {m.id for m in s.scalars(select(Master).where(
                Master.kind == "illumination"))}
            assert len(models) == 2
            links = list(s.scalars(select(ProductMaster).where(
                ProductMaster.role == "illumination")))
            assert len(links) == 12 and {link.master_id for link in links} == models
        again = finish_night(engine, JobContext.from_settings(settings), workers=1, local=True)
        assert [b for b in again.builds if b.kind == "illumination"] == []
    finally:
        engine.dispose()
