"""Every file nightlog writes opens and works in the tools astronomers use.

The demo archive (a simulated LFC night, masters built, science reduced) plus its
quick-looks: each product and master opens with ``CCDData.read`` without a warning
(data, uncertainty, mask, unit), passes astropy's strictest verification with
its FITS checksums and, where Debian's ``fitsverify`` is installed, fitsverify
with no error; its cards say what the data are; and ccdproc, given nightlog's
masters, makes the product nightlog made.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import warnings
from pathlib import Path

import ccdproc
import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.nddata import CCDData
from astropy.time import Time

from nightlog.catalogue.engine import create_engine, make_sessionmaker
from nightlog.catalogue.models import Frame, Product
from nightlog.coordinator.context import JobContext
from nightlog.coordinator.reduce import run_reduce, science_frames
from nightlog.coordinator.reduce_plan import science_parameters
from nightlog.demo import DemoReport, run_demo
from nightlog.reduction.cosmics import CosmicRaySettings
from nightlog.reduction.interchange import legal_header
from nightlog.reduction.science import reduce_science
from nightlog.settings import load_settings
from nightlog.states import ProductKind
from nightlog.store.images import read_image

REQUIRE_FITSVERIFY = os.environ.get("NIGHTLOG_REQUIRE_FITSVERIFY") == "1"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[DemoReport, JobContext]:
    """The demo archive, with a quick-look of every science frame besides its finals."""
    report = run_demo(tmp_path_factory.mktemp("demo") / "night", scale=0.1, seed=1)
    settings = load_settings(report.directory / "nightlog.toml", env={})
    ctx = JobContext.from_settings(settings)
    engine = create_engine(settings.database_url)
    try:
        with make_sessionmaker(engine)() as session:
            ids = science_frames(session)
        outcomes = run_reduce(engine, ctx, ids, kind=ProductKind.QUICKLOOK, live=True,
                              force=True)
        assert [o.status for o in outcomes] == ["reduced"] * len(ids)
    finally:
        engine.dispose()
    return report, ctx


def _written(report: DemoReport) -> dict[str, list[Path]]:
    """Every FITS file the demo wrote, by kind: bias, dark, flat, final, quicklook."""
    files: dict[str, list[Path]] = {}
    for path in sorted((report.directory / "masters").rglob("*.fits*")):
        files.setdefault(path.relative_to(report.directory / "masters").parts[1],
                         []).append(path)
    for path in sorted(report.products.rglob("*.fits*")):
        kind = str(fits.getval(path, "NLKIND"))
        files.setdefault(kind, []).append(path)
    return files


def _all(report: DemoReport) -> list[Path]:
    return [p for paths in _written(report).values() for p in paths]


def test_the_demo_writes_every_kind_of_file(demo: tuple[DemoReport, JobContext]) -> None:
    assert set(_written(demo[0])) == {"bias", "dark", "flat", "final", "quicklook"}


def test_every_file_opens_with_ccddata_read_without_a_warning(
        demo: tuple[DemoReport, JobContext]) -> None:
    report, _ = demo
    for kind, paths in _written(report).items():
        for path in paths:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                ccd = CCDData.read(path)
            assert [str(w.message) for w in caught] == [], path
            assert ccd.uncertainty is not None and ccd.mask is not None, path
            assert ccd.uncertainty.array.shape == ccd.mask.shape == ccd.shape
            expected = u.dimensionless_unscaled if kind == "flat" else u.adu
            assert ccd.unit == expected, (path, ccd.unit)
            # the observation time is the exposure's, not midnight of DATE-OBS
            start = Time(ccd.header["DATE-BEG"], scale="utc")
            assert abs(start.mjd - ccd.header["MJD-OBS"]) < 1e-6
            assert start.mjd % 1 != 0
            assert Time(ccd.header["DATE-END"], scale="utc") >= start


def test_every_file_passes_strict_verification_and_its_checksums(
        demo: tuple[DemoReport, JobContext]) -> None:
    for path in _all(demo[0]):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with fits.open(path, checksum=True) as hdul:
                hdul.verify("exception")
                for hdu in hdul:
                    assert "CHECKSUM" in hdu.header and "DATASUM" in hdu.header, path
                    assert hdu.verify_checksum() == 1 and hdu.verify_datasum() == 1, path


def test_every_file_passes_fitsverify(demo: tuple[DemoReport, JobContext]) -> None:
    tool = shutil.which("fitsverify")
    if tool is None:
        if REQUIRE_FITSVERIFY:
            pytest.fail("NIGHTLOG_REQUIRE_FITSVERIFY=1 but fitsverify is not installed")
        pytest.skip("fitsverify is not installed (Debian package fitsverify)")
    for path in _all(demo[0]):
        run = subprocess.run([tool, "-e", str(path)], capture_output=True, text=True,
                             check=False)
        assert run.returncode == 0, run.stdout
        assert "0 warning(s) and 0 error(s)" in run.stdout, run.stdout


def test_raw_cards_that_are_not_legal_are_repaired_with_a_history_line(
        demo: tuple[DemoReport, JobContext]) -> None:
    raw_card = fits.Card.fromstring("FILTER  = 'g'      '            / Filter description")
    header = fits.Header([fits.Card("OBJECT", "m31"), raw_card])
    fixed = legal_header(header)
    assert fixed["FILTER"] == "g" and fixed.comments["FILTER"] == "Filter description"
    assert fixed["OBJECT"] == "m31"
    # astropy splits a long HISTORY text over cards of 72 characters
    assert "".join(fixed["HISTORY"]) == ("Repaired card not FITS-legal (text after the "
                                         "closing quote of its string): " + raw_card.image.rstrip())
    # The demo's raw frames carry such a card; the products say what they made of it.
    product = _written(demo[0])["final"][0]
    with fits.open(product) as hdul:
        header = hdul[0].header
    assert header["FILTER"] in {"g", "r", "i"}
    history = "".join(header["HISTORY"])
    assert "Repaired card not FITS-legal" in history and "FILTER  = '" in history


def test_cards_state_the_gain_read_noise_and_saturation_of_the_data(
        demo: tuple[DemoReport, JobContext]) -> None:
    report, _ = demo
    engine = create_engine(f"sqlite:///{report.directory / 'nightlog.sqlite'}")
    try:
        with make_sessionmaker(engine)() as session:
            for product in session.query(Product).all():
                frame = session.get(Frame, product.frame_id)
                assert frame is not None and frame.gain and frame.saturation
                header = fits.getheader(product.path)
                assert header["GAIN"] == pytest.approx(frame.gain)
                assert header["RDNOISE"] == pytest.approx(frame.read_noise)
                assert header["BUNIT"] == "adu"
                # the raw level less the overscan pedestal taken away
                assert header["SATURATE"] == pytest.approx(
                    frame.saturation - header["OVSCLEV"], abs=1e-2)
    finally:
        engine.dispose()
    for path in _written(report)["flat"]:
        header = fits.getheader(path)
        assert "GAIN" not in header and header["BUNIT"] == ""


def _master_paths(product: Path) -> dict[str, str]:
    with fits.open(product) as hdul:
        rows = hdul["PROVENANCE"].data
        return {str(r["STEP"]): str(r["PATH"]) for r in rows}


def test_ccdproc_with_nightlogs_masters_makes_nightlogs_product(
        demo: tuple[DemoReport, JobContext]) -> None:
    report, ctx = demo
    engine = create_engine(f"sqlite:///{report.directory / 'nightlog.sqlite'}")
    try:
        with make_sessionmaker(engine)() as session:
            product = session.query(Product).filter_by(kind="final").first()
            assert product is not None
            frame = session.get(Frame, product.frame_id)
            assert frame is not None
            params = science_parameters(frame, ctx.profile_of(frame),
                                        skip_columns=ctx.skip_columns_of(frame))
            raw_path, hdu = frame.path, frame.hdu
    finally:
        engine.dispose()
    made = CCDData.read(product.path)
    masters = {role: CCDData.read(path) for role, path in _master_paths(
        Path(product.path)).items() if role in {"bias", "dark", "flat"}}
    assert set(masters) == {"bias", "dark", "flat"}
    # nightlog's overscan and trim, then ccdproc's calibration with nightlog's masters
    prepared = reduce_science(
        read_image(raw_path, hdu), bias=None, dark=None, flat=None,
        params=dataclasses.replace(params, cosmic_rays=CosmicRaySettings(enabled=False))).ccd
    dark = masters["dark"]
    assert dark.unit == u.adu and dark.header["EXPTIME"] == 1.0
    step = ccdproc.subtract_bias(prepared, masters["bias"])
    step = ccdproc.subtract_dark(step, dark, dark_exposure=dark.header["EXPTIME"] * u.s,
                                 data_exposure=made.header["EXPTIME"] * u.s, scale=True)
    step = ccdproc.flat_correct(step, masters["flat"], norm_value=1.0)
    assert step.unit == made.unit == u.adu
    good = ~made.mask  # cosmic rays are cleaned in nightlog's product, and masked
    assert good.mean() > 0.9
    np.testing.assert_allclose(np.asarray(step.data)[good], np.asarray(made.data)[good],
                               rtol=2e-6, atol=2e-3)


def test_products_in_electrons_when_the_settings_ask(archive: tuple[object, JobContext],
                                                     tmp_path: Path) -> None:
    from nightlog.coordinator.masters import run_build

    engine, ctx = archive
    config = tmp_path / "nightlog.toml"
    config.write_text('[reduction]\nunit = "electron"\n', encoding="utf-8")
    assert JobContext.from_settings(load_settings(config, env={})).output_unit == "electron"
    assert any(o.status == "built" for o in run_build(engine, ctx))  # type: ignore[arg-type]
    with make_sessionmaker(engine)() as session:  # type: ignore[arg-type]
        ids = science_frames(session)[:1]
    [in_adu] = run_reduce(engine, ctx, ids)  # type: ignore[arg-type]
    with make_sessionmaker(engine)() as session:  # type: ignore[arg-type]
        frame = session.get(Frame, ids[0])
        assert frame is not None and frame.gain
        gain = frame.gain
        adu = CCDData.read(session.get(Product, in_adu.product_id).path)  # type: ignore
    electron_ctx = dataclasses.replace(ctx, output_unit="electron")
    [in_e] = run_reduce(engine, electron_ctx, ids, force=True)  # type: ignore[arg-type]
    assert in_adu.status == in_e.status == "reduced" and in_adu.product_id != in_e.product_id
    with make_sessionmaker(engine)() as session:  # type: ignore[arg-type]
        electrons = CCDData.read(session.get(Product, in_e.product_id).path)  # type: ignore
    assert adu.unit == u.adu and electrons.unit == u.electron
    assert adu.header["GAIN"] == pytest.approx(gain) and electrons.header["GAIN"] == 1.0
    assert electrons.header["RDNOISE"] == adu.header["RDNOISE"]
    assert electrons.header["SATURATE"] == pytest.approx(adu.header["SATURATE"] * gain,
                                                         rel=1e-6)
    good = ~(adu.mask | electrons.mask)
    np.testing.assert_allclose(electrons.data[good], adu.data[good] * gain, rtol=1e-5,
                               atol=1e-2)
    np.testing.assert_allclose(electrons.uncertainty.array[good],
                               adu.uncertainty.array[good] * gain, rtol=1e-5)


def test_cards_that_cannot_be_recovered_are_dropped_with_a_history_line() -> None:
    header = fits.Header([fits.Card.fromstring("BADNUM  = 1.2.3 / what"),
                          fits.Card.fromstring("CTRL    = 'a\x01b'  / c"),
                          fits.Card("EXPTIME", 30.0)])
    fixed = legal_header(header)
    assert "BADNUM" not in fixed and fixed["CTRL"] == "a b" and fixed["EXPTIME"] == 30.0
    history = "".join(fixed["HISTORY"])
    assert "Dropped card not FITS-legal (a value that cannot be parsed): BADNUM" in history
    assert "Repaired card not FITS-legal (non-printable characters): CTRL" in history
    fits.PrimaryHDU(header=fixed).verify("exception")


def test_the_deprecated_epoch_becomes_equinox_with_a_history_line() -> None:
    header = fits.Header()
    header["EPOCH"] = (2000.0, "Equinox of RA and DEC")
    fixed = legal_header(header)
    assert "EPOCH" not in fixed
    assert fixed["EQUINOX"] == 2000.0 and fixed.comments["EQUINOX"] == "Equinox of RA and DEC"
    assert "Renamed deprecated EPOCH to EQUINOX" in "".join(fixed["HISTORY"])
    assert "EPOCH" in header  # the input is untouched


def test_an_epoch_beside_an_equinox_is_dropped_and_a_different_one_quoted() -> None:
    same = fits.Header([("EQUINOX", 2000.0), ("EPOCH", 2000.0)])
    fixed = legal_header(same)
    assert "EPOCH" not in fixed and fixed["EQUINOX"] == 2000.0 and "HISTORY" not in fixed
    other = legal_header(fits.Header([("EQUINOX", 2000.0), ("EPOCH", 1950.0)]))
    assert "EPOCH" not in other and other["EQUINOX"] == 2000.0
    assert "1950" in "".join(other["HISTORY"])
