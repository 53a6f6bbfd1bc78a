"""Tile-compressed output: ``[archive] compress = "rice"`` writes ``.fits.fz`` files
that nightlog and ``CCDData.read`` open, lossless for the mask bits, with the
quantisation noise of the float planes well below the data's own noise."""

from __future__ import annotations

import dataclasses
import datetime as dt
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import CCDData
from sqlalchemy import Engine

from nightlog.catalogue.engine import make_sessionmaker
from nightlog.catalogue.models import Master, Product
from nightlog.coordinator.context import JobContext
from nightlog.coordinator.masters import run_build
from nightlog.coordinator.reduce import run_reduce, science_frames
from nightlog.errors import ConfigurationError
from nightlog.settings import load_settings
from nightlog.store.compression import QUANTIZE_LEVEL
from nightlog.store.images import write_hdulist
from nightlog.store.layout import ArchiveLayout
from nightlog.store.products import read_product


def test_the_setting_names_the_files_fz(tmp_path: Path) -> None:
    config = tmp_path / "nightlog.toml"
    config.write_text('[archive]\ncompress = "rice"\n', encoding="utf-8")
    ctx = JobContext.from_settings(load_settings(config, env={}))
    path = ctx.layout.product_path(instrument="LFC", night=dt.date(2016, 1, 15),
                                   raw_name="a.fits", product_kind="final",
                                   product_key="0" * 64)
    assert path.name == "a_final_0000000000.fits.fz"
    config.write_text('[archive]\ncompress = "gzip"\n', encoding="utf-8")
    with pytest.raises(ConfigurationError, match=r"archive\.compress"):
        load_settings(config, env={})


@pytest.fixture
def compressed(archive: tuple[Engine, JobContext], tmp_path: Path
               ) -> tuple[Engine, list[str], list[str]]:
    """The night's masters and products written tile-compressed: (engine, masters,
    products) paths."""
    engine, ctx = archive
    ctx = dataclasses.replace(ctx, layout=ArchiveLayout(ctx.layout.root, compress=True))
    assert any(o.status == "built" for o in run_build(engine, ctx))
    with make_sessionmaker(engine)() as s:
        ids = science_frames(s)
    outcomes = run_reduce(engine, ctx, ids)
    assert [o.status for o in outcomes] == ["reduced"] * len(ids)
    with make_sessionmaker(engine)() as s:
        masters = [m.path for m in s.query(Master).all()]
        products = [p.path for p in s.query(Product).all()]
    return engine, masters, products


def test_masters_and_products_are_fz_files_ccddata_and_nightlog_open(
        compressed: tuple[Engine, list[str], list[str]]) -> None:
    _, masters, products = compressed
    assert masters and products
    for path in [*masters, *products]:
        assert path.endswith(".fits.fz")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with fits.open(path, checksum=True) as hdul:
                hdul.verify("exception")
                assert [h.name for h in hdul][:4] == ["PRIMARY", "SCI", "UNCERT", "MASK"]
            with fits.open(path, disable_image_compression=True) as tables:
                assert all(h.verify_checksum() == 1 and h.verify_datasum() == 1
                           for h in tables)
            ccd = CCDData.read(path, hdu="SCI")  # as for any fpack file: the first extension
        ours = read_product(path).ccd
        assert ccd.unit == ours.unit and ccd.header["BUNIT"] == ours.header["BUNIT"]
        np.testing.assert_array_equal(ccd.data, ours.data)
        np.testing.assert_array_equal(ccd.mask, ours.mask)
        assert ccd.uncertainty is not None


def test_mask_bits_are_lossless_and_float_noise_is_bounded(
        compressed: tuple[Engine, list[str], list[str]], tmp_path: Path) -> None:
    _, _, products = compressed
    source = read_product(products[0])
    with fits.open(products[0]) as hdul:
        plain = fits.HDUList([fits.PrimaryHDU(hdul["SCI"].data, hdul["SCI"].header),
                              fits.ImageHDU(hdul["UNCERT"].data, hdul["UNCERT"].header,
                                            name="UNCERT"),
                              fits.ImageHDU(hdul["MASK"].data, hdul["MASK"].header,
                                            name="MASK")])
        again = write_hdulist(tmp_path / "again.fits.fz", plain)
    back = read_product(again.path)
    np.testing.assert_array_equal(back.ccd.flags, source.ccd.flags)
    sigma = source.ccd.uncertainty.array  # type: ignore[union-attr]
    good = ~source.ccd.mask & np.isfinite(source.ccd.data)
    added = np.asarray(back.ccd.data - source.ccd.data)[good]
    # a quantisation step of σ_tile / level adds about σ / (level √12) per pixel
    assert np.std(added) < 4 * np.median(sigma[good]) / (QUANTIZE_LEVEL * np.sqrt(12))


def test_a_flipped_byte_in_a_compressed_file_is_named_by_hdu(
        compressed: tuple[Engine, list[str], list[str]]) -> None:
    from nightlog.store.integrity import check_file, fits_checksum_failures
    from nightlog.store.raw import sha256_of

    _, _, products = compressed
    path = Path(products[0])
    expected = sha256_of(path)
    assert fits_checksum_failures(path) == []
    with fits.open(path, disable_image_compression=True) as hdul:
        offset = hdul["SCI"].fileinfo()["datLoc"] + 500
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))
    check = check_file(path, expected)
    assert check.status == "changed"
    assert check.detail == "FITS checksum fails in HDU 1 (SCI): DATASUM, HDU 1 (SCI): CHECKSUM"


def test_compressed_files_pass_fitsverify(
        compressed: tuple[Engine, list[str], list[str]]) -> None:
    import os
    import shutil
    import subprocess

    tool = shutil.which("fitsverify")
    if tool is None:
        if os.environ.get("NIGHTLOG_REQUIRE_FITSVERIFY") == "1":
            pytest.fail("NIGHTLOG_REQUIRE_FITSVERIFY=1 but fitsverify is not installed")
        pytest.skip("fitsverify is not installed (Debian package fitsverify)")
    _, masters, products = compressed
    for path in [*masters, *products]:
        run = subprocess.run([tool, "-e", path], capture_output=True, text=True, check=False)
        assert run.returncode == 0 and "0 error(s)" in run.stdout, run.stdout
