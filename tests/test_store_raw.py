"""The file store reads plain, gzip and tile-compressed FITS and spots bad files."""

from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path

import pytest
from astropy.io import fits

from nightlog.errors import IncompleteFileError, NotFitsError, UnreadableFileError
from nightlog.store.atomic import DeferredDeletes, atomic_write
from nightlog.store.raw import header_to_json, read_raw_file
from tests.factories import write_frame

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize("name", ["a.fits", "a.fit", "a.fts", "a.fits.gz", "a.fits.fz"])
def test_reads_every_supported_form(tmp_path: Path, name: str) -> None:
    path = write_frame(tmp_path / name, seed=3)
    raw = read_raw_file(path)
    assert raw.shape == (24, 32)
    assert raw.header["IMAGETYP"] == "LIGHT"
    assert raw.header["EXPTIME"] == 30.0
    assert raw.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert raw.size == path.stat().st_size
    expected = {"a.fits.gz": "gzip", "a.fits.fz": "tile"}.get(name, "none")
    assert raw.compression == expected


def test_header_json_keeps_order_duplicates_and_odd_values(tmp_path: Path) -> None:
    hdu = fits.PrimaryHDU()
    hdu.header["OBJECT"] = "M 31"
    hdu.header.append(("HISTORY", "first"))
    hdu.header.append(("HISTORY", "second"))
    hdu.header.append(fits.Card.fromstring("AIRMASS =                  NaN"))
    items = header_to_json(hdu.header)
    keys = [k for k, _, _ in items]
    assert keys.index("OBJECT") < keys.index("HISTORY")
    assert [v for k, v, _ in items if k == "HISTORY"] == ["first", "second"]
    (airmass,) = [v for k, v, _ in items if k == "AIRMASS"]
    assert isinstance(airmass, str) and "NaN" in airmass  # kept as text: JSON has no NaN


def test_truncated_data_is_incomplete(tmp_path: Path) -> None:
    full = write_frame(tmp_path / "f.fits").read_bytes()
    cut = tmp_path / "cut.fits"
    for length in (100, 2880, 2880 + 10, len(full) - 2000):
        cut.write_bytes(full[:length])
        with pytest.raises(IncompleteFileError):
            read_raw_file(cut)


def test_missing_final_padding_is_tolerated(tmp_path: Path) -> None:
    full = write_frame(tmp_path / "f.fits").read_bytes()
    data_bytes = 24 * 32 * 2
    short = tmp_path / "nopad.fits"
    header_len = len(full) - (-(-data_bytes // 2880) * 2880)
    short.write_bytes(full[: header_len + data_bytes])
    assert read_raw_file(short).shape == (24, 32)


def test_not_fits_and_not_regular(tmp_path: Path) -> None:
    text = tmp_path / "x.fits"
    text.write_text("hello")
    with pytest.raises(NotFitsError):
        read_raw_file(text)
    folder = tmp_path / "dir.fits"
    folder.mkdir()
    with pytest.raises(UnreadableFileError, match="regular"):
        read_raw_file(folder)
    fifo = tmp_path / "pipe.fits"
    os.mkfifo(fifo)
    with pytest.raises(UnreadableFileError, match="regular"):
        read_raw_file(fifo)


def test_huge_declared_data_is_refused_before_allocation(tmp_path: Path) -> None:
    hdr = fits.Header()
    hdr["SIMPLE"] = True
    hdr["BITPIX"] = 16
    hdr["NAXIS"] = 2
    hdr["NAXIS1"] = 250_000
    hdr["NAXIS2"] = 200_000  # 100 GB of data declared
    path = tmp_path / "huge.fits"
    path.write_bytes(hdr.tostring().encode() + b"\0" * 2880)
    with pytest.raises(UnreadableFileError, match="more than the limit"):
        read_raw_file(path, max_data_bytes=1 << 30)


def test_gzip_bomb_is_stopped(tmp_path: Path) -> None:
    path = tmp_path / "bomb.fits.gz"
    path.write_bytes(gzip.compress(b"\0" * (8 << 20)))
    with pytest.raises(UnreadableFileError, match="expands beyond"):
        read_raw_file(path, max_data_bytes=1 << 20)


def test_atomic_write_leaves_nothing_on_error(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "product.fits"
    with pytest.raises(RuntimeError), atomic_write(target) as fh:
        fh.write(b"partial")
        raise RuntimeError("writer died")
    assert not target.exists()
    assert list(target.parent.iterdir()) == []
    with atomic_write(target) as fh:
        fh.write(b"complete")
    assert target.read_bytes() == b"complete"
    assert [p.name for p in target.parent.iterdir()] == ["product.fits"]


def test_deferred_deletes_wait_for_run(tmp_path: Path) -> None:
    f = tmp_path / "old.fits"
    f.write_bytes(b"x")
    deletes = DeferredDeletes()
    deletes.schedule(f)
    assert f.exists()
    deletes.discard()
    assert deletes.run() == [] and f.exists()
    deletes.schedule(f)
    deletes.run()
    assert not f.exists()
