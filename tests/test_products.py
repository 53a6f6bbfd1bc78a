"""Reduced products: FITS that CCDData.read opens, bit plane kept, headers FITS-legal."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.nddata import CCDData, StdDevUncertainty, VarianceUncertainty
from astropy.wcs import FITSFixedWarning

from nightlog.errors import ReductionError, UnreadableFileError
from nightlog.reduction.mask import MaskBit
from nightlog.reduction.products import (
    ProvenanceEntry,
    add_history,
    set_keywords,
    to_hdulist,
)
from nightlog.store.products import provenance_of, read_product

SHAPE = (20, 30)


def raw_like_header() -> fits.Header:
    """Cards as a raw LFC frame has them (uint16 scaling, a date, a quoted filter)."""
    header = fits.Header()
    for key, value in [("SIMPLE", True), ("BITPIX", 16), ("NAXIS", 2), ("NAXIS1", 2080),
                       ("NAXIS2", 4128), ("BZERO", 32768), ("BSCALE", 1),
                       ("DATE-OBS", "2016-01-16"), ("UTSHUT", "2016-01-16T03:00:00"),
                       ("FILTER", "i'"), ("EXPTIME", 300.062), ("GAIN", 1.1),
                       ("BIASSEC", "[2049:2080,1:4127]")]:
        header[key] = value
    return header


def reduced(seed: int = 0, *, flags: bool = True) -> CCDData:
    rng = np.random.default_rng(seed)
    mask = rng.random(SHAPE) < 0.05
    bits = None
    if flags:
        bits = np.where(mask, np.uint16(MaskBit.HOT), np.uint16(0)).astype(np.uint16)
        bits[0, 0] = MaskBit.SATURATED | MaskBit.COSMIC_RAY
        mask[0, 0] = True
    return CCDData(rng.normal(100, 10, SHAPE).astype(np.float32), unit="adu",
                   uncertainty=StdDevUncertainty(rng.uniform(1, 2, SHAPE).astype(np.float32)),
                   mask=mask, flags=bits, meta=raw_like_header())


def write(hdulist: fits.HDUList, path: Path) -> Path:
    hdulist.writeto(path)
    return path


def test_ccddata_read_gets_data_uncertainty_and_mask(tmp_path: Path) -> None:
    ccd = reduced(1)
    path = write(to_hdulist(ccd), tmp_path / "p.fits")
    back = CCDData.read(path)  # astropy's own reader, no help from us
    np.testing.assert_array_equal(back.data, ccd.data)
    assert back.data.dtype.kind == "f" and back.data.dtype.itemsize == 4  # big-endian float32
    assert isinstance(back.uncertainty, StdDevUncertainty)
    np.testing.assert_array_equal(back.uncertainty.array, ccd.uncertainty.array)
    np.testing.assert_array_equal(back.mask, ccd.mask)
    assert back.unit == ccd.unit


def test_bit_plane_survives_and_reads_back_as_flags(tmp_path: Path) -> None:
    ccd = reduced(2)
    path = write(to_hdulist(ccd), tmp_path / "p.fits")
    bits = read_product(path).ccd.flags
    assert bits is not None and bits.dtype == np.uint16
    np.testing.assert_array_equal(bits, ccd.flags)
    product = read_product(path).ccd
    np.testing.assert_array_equal(product.flags, ccd.flags)
    np.testing.assert_array_equal(product.mask, ccd.flags != 0)
    with fits.open(path) as hdus:
        assert hdus["MASK"].header["MASKTYPE"] == "BITPLANE"
        header = hdus["MASK"].header
        assert header["MASKB1"] == "HOT"  # bit number 1, value 2
        assert "dark" in header.comments["MASKB1"]
        named = {header[f"MASKB{int(bit).bit_length() - 1}"] for bit in MaskBit}
        assert named == {bit.name for bit in MaskBit}


def test_masked_pixels_without_a_bit_stay_masked(tmp_path: Path) -> None:
    ccd = reduced(3)
    mask = ccd.mask.copy()
    mask[5, 5] = True
    ccd.flags[5, 5] = 0
    ccd.mask = mask
    path = write(to_hdulist(ccd), tmp_path / "p.fits")
    assert read_product(path).ccd.flags[5, 5] == MaskBit.UNSPECIFIED
    assert CCDData.read(path).mask[5, 5]


def test_boolean_mask_only_and_explicit_bits(tmp_path: Path) -> None:
    ccd = reduced(4, flags=False)
    path = write(to_hdulist(ccd), tmp_path / "bool.fits")
    assert read_product(path).ccd.flags is None
    np.testing.assert_array_equal(read_product(path).ccd.mask, ccd.mask)
    bits = np.where(ccd.mask, np.uint16(MaskBit.DEAD), np.uint16(0))
    path2 = write(to_hdulist(ccd, mask_bits=bits), tmp_path / "bits.fits")
    np.testing.assert_array_equal(read_product(path2).ccd.flags, bits)
    with pytest.raises(ReductionError):
        to_hdulist(ccd, mask_bits=bits.astype(np.float32))


def test_header_keeps_raw_cards_and_drops_layout_ones(tmp_path: Path) -> None:
    ccd = add_history(set_keywords(reduced(5), {"NLBIAS": ("bias/2016-01-16/0001", "master"),
                                                "NLVERS": "0.1"}), "reduced by nightlog")
    hdul = to_hdulist(ccd)
    header = hdul[0].header
    assert header["FILTER"] == "i'" and header["EXPTIME"] == 300.062
    assert header["BITPIX"] == -32 and "BZERO" not in header
    assert header["NLBIAS"] == "bias/2016-01-16/0001"
    assert "reduced by nightlog" in "".join(header["HISTORY"])
    path = write(hdul, tmp_path / "p.fits")
    assert read_product(path).ccd.header["NLVERS"] == "0.1"


def test_no_warnings_anywhere(tmp_path: Path) -> None:
    ccd = set_keywords(reduced(6), {"OBSERVER": "Zoë Ångström " * 10,
                                    "NOTE": ("a'b" * 40, "c" * 100)})
    ccd = add_history(ccd, "non-ASCII é and a very long line " * 20)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path = write(to_hdulist(ccd), tmp_path / "p.fits")
        product = read_product(path).ccd
    observer = product.header["OBSERVER"]
    assert observer.isascii() and "\\xeb" in observer and observer.endswith("...")
    assert len(product.header["NOTE"]) <= 68


def test_set_keywords_refuses_long_names() -> None:
    with pytest.raises(ReductionError):
        set_keywords(reduced(7), {"NIGHTLOG_BIAS": "x"})


def test_variance_uncertainty_is_stored_as_standard_deviation(tmp_path: Path) -> None:
    ccd = reduced(8)
    ccd.uncertainty = VarianceUncertainty(np.full(SHAPE, 4.0, dtype=np.float32))
    path = write(to_hdulist(ccd), tmp_path / "p.fits")
    np.testing.assert_allclose(read_product(path).ccd.uncertainty.array, 2.0)


def test_dict_metadata_and_dimensionless_products(tmp_path: Path) -> None:
    ccd = CCDData(np.ones(SHAPE, np.float32), unit="", meta={"OBJECT": "M 31",
                                                            "longer_keyword": 3})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path = write(to_hdulist(ccd), tmp_path / "p.fits")
        product = read_product(path).ccd
    assert product.header["OBJECT"] == "M 31"
    assert product.unit.to_string() == ""


def test_read_product_of_a_missing_file_is_an_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFileError):
        read_product(tmp_path / "missing.fits")
    with pytest.raises(UnreadableFileError):
        provenance_of(tmp_path / "missing.fits")
    broken = tmp_path / "broken.fits"
    broken.write_bytes(b"SIMPLE  =                    T" + b" " * 50)
    with pytest.raises(UnreadableFileError):
        read_product(broken)


# --- reading back: the store's reader -------------------------------------------------------

_OPENED: list[str] | None = None


def _count_opens(event: str, args: tuple[object, ...]) -> None:
    if _OPENED is not None and event == "open" and isinstance(args[0], str | Path):
        _OPENED.append(str(args[0]))


sys.addaudithook(_count_opens)


def test_one_read_opens_the_file_once_and_gives_frame_bits_and_provenance(
        tmp_path: Path) -> None:
    global _OPENED
    ccd = reduced(9)
    entries = [ProvenanceEntry("raw", "/raw/é.fits", "a" * 64, 7),
               ProvenanceEntry("input", "/raw/b.fits", "b" * 64, 8, False, "too warm")]
    path = write(to_hdulist(ccd, provenance=entries), tmp_path / "master.fits")
    _OPENED = []
    try:
        product = read_product(path)
        opened = [p for p in _OPENED if Path(p).name == path.name]
    finally:
        _OPENED = None
    assert len(opened) == 1
    np.testing.assert_array_equal(product.ccd.data, ccd.data)
    np.testing.assert_array_equal(product.ccd.flags, ccd.flags)
    np.testing.assert_array_equal(product.ccd.mask, ccd.flags != 0)
    assert [(e.step, e.ref, e.used, e.reason) for e in product.provenance] == [
        ("raw", 7, True, ""), ("input", 8, False, "too warm")]
    assert product.provenance[0].path == "/raw/\\xe9.fits"  # FITS text is ASCII
    assert provenance_of(path) == product.provenance
    assert read_product(write(to_hdulist(ccd), tmp_path / "bare.fits")).provenance == ()


def test_read_product_gives_what_ccddata_read_gives(tmp_path: Path) -> None:
    ccd = reduced(10)
    wcs_cards = {"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": 150.0,
                 "CRVAL2": 2.0, "CRPIX1": 15.0, "CRPIX2": 10.0, "CD1_1": -1e-4,
                 "CD1_2": 0.0, "CD2_1": 0.0, "CD2_2": 1e-4, "MJD-OBS": 57403.125}
    for key, value in wcs_cards.items():
        ccd.meta[key] = value
    hdul = to_hdulist(ccd)
    hdul[0].header["BUNIT"] = "ADU"  # as cameras write it
    path = write(hdul, tmp_path / "wcs.fits")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        theirs = CCDData.read(path)
    ours = read_product(path).ccd
    np.testing.assert_array_equal(ours.data, theirs.data)
    assert ours.unit == theirs.unit == u.adu
    assert type(ours.uncertainty) is type(theirs.uncertainty)
    np.testing.assert_array_equal(ours.uncertainty.array, theirs.uncertainty.array)
    np.testing.assert_array_equal(ours.mask, theirs.mask)
    assert list(ours.header.items()) == list(theirs.header.items())
    assert "CD1_1" not in ours.header and "CTYPE1" not in ours.header
    assert ours.wcs is not None and ours.wcs.to_header() == theirs.wcs.to_header()
