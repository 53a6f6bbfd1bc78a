"""A night of the CMOS test camera through ingest, master builds and reduction: the
master bias carries its read-noise map, the science frame gets two darks
interpolated to its exposure, and the catalogue and ``nightlog match`` say so."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.nddata import CCDData

from nightlog.archive import Archive
from nightlog.reduction.mask import MaskBit
from nightlog.settings import Settings
from nightlog.store.products import read_product
from tests.cmos_camera import PROFILE_TOML, RTN_PIXELS, T0, Camera
from tests.factories import reduced_night


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("cmos")
    raw = root / "incoming"
    raw.mkdir()
    camera = Camera(seed=11)
    when = iter(T0 + dt.timedelta(minutes=3 * i) for i in range(100))
    for i in range(7):
        camera.write(raw / f"bias_{i:03d}.fits", "BIAS", 0.0, when=next(when), seed=10 + i)
    for t in (50.0, 70.0):
        for i in range(5):
            camera.write(raw / f"dark_{int(t)}s_{i:03d}.fits", "DARK", t, when=next(when),
                         seed=int(t) * 100 + i)
    for i in range(5):
        camera.write(raw / f"flat_{i:03d}.fits", "FLAT", 2.0, sky_e=5000.0, when=next(when),
                     seed=7000 + i)
    camera.write(raw / "light_001.fits", "LIGHT", 60.0, sky_e=200.0, when=next(when),
                 seed=9000)
    folder = root / "night"
    folder.mkdir()
    (folder / "nightlog.toml").write_text(PROFILE_TOML, encoding="utf-8")
    return reduced_night(folder, raw)


def test_the_science_frame_gets_two_darks_interpolated(night: Settings) -> None:
    with Archive(night) as archive:
        science = archive.frames(kind="science")
        assert len(science) == 1
        frame_id = int(science["id"][0])
        report = archive.match(frame_id)
        dark = next(m for m in report.matches if m["kind"] == "dark")
        assert dark["chosen"] is not None and dark["second"] is not None
        assert dark["how"].startswith("interpolated: the 50 s and 70 s master darks")
        products = archive.products()
        assert len(products) == 1
        product = archive.product(int(products["id"][0]))
    with fits.open(product.path) as hdus:
        header = hdus[0].header
        assert header["DARKINTP"] == "50-70 s w=0.5000"
        assert header["NLDARK2"] == dark["second"] and header["NLDARK"] == dark["chosen"]
        assert header["QSTEP"] == 16 and header["QSTEPOFF"] == 0
        assert list(hdus["PROVENANCE"].data["STEP"]).count("dark2") == 1
    bits = read_product(product.path).ccd.flags
    assert bits is not None
    for y, x in RTN_PIXELS:
        assert bits[y, x] & MaskBit.NOISY and not bits[y, x] & MaskBit.COSMIC_RAY


def test_the_master_bias_carries_its_read_noise_map(night: Settings) -> None:
    with Archive(night) as archive:
        biases = archive.masters(kind="bias")
        assert len(biases) == 1
        master = archive.master(int(biases["id"][0]))
    stats = master.record["stats"]
    assert stats["noisy_pixels"] >= len(RTN_PIXELS)
    assert stats["read_noise_map_median_adu"] == pytest.approx(3.6 / 0.25, rel=0.1)
    stored = read_product(master.path)
    assert stored.read_noise is not None and np.isfinite(stored.read_noise).all()


def test_darks_are_kept_per_exposure_and_the_flat_says_it_had_none(night: Settings) -> None:
    with Archive(night) as archive:
        darks = archive.masters(kind="dark")
        assert sorted(float(t) for t in darks["exptime"]) == [50.0, 70.0]
        flats = archive.masters(kind="flat")
        assert len(flats) == 1
        flat = archive.master(int(flats["id"][0]))
    # No 2 s dark: the flat is built without one, and its file says so.
    assert fits.getheader(flat.path)["NLDARK"] == "none"


def test_the_raw_files_are_kept(night: Settings) -> None:
    with Archive(night) as archive:
        assert len(archive.frames()) == 7 + 10 + 5 + 1


def test_a_master_made_elsewhere_at_another_gain_setting_is_refused(
        night: Settings, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from nightlog.cli.app import app
    from nightlog.errors import ConfigurationError

    config = Path(night.archive_root) / "nightlog.toml"
    assert config.is_file()
    with Archive(night) as archive:
        frame = str(int(archive.frames(kind="science")["id"][0]))
        before = len(archive.masters(all_versions=True))
    for card, value, needle in (("GAIN", 120, "gain setting 120"), ("OFFSET", 10, "offset 10")):
        path = tmp_path / f"bias_{card}.fits"
        header = {"IMAGETYP": "MASTER BIAS", "INSTRUME": "ZWO ASI1600MM Pro", "GAIN": 0,
                  "OFFSET": 30, card: value}
        CCDData(np.full((96, 128), 768.0, np.float32), unit=u.adu, meta=header).write(path)
        result = CliRunner().invoke(app, ["--config", str(config), "calib", "add", str(path),
                                          "--like", frame])
        assert result.exit_code == ConfigurationError.exit_code, result.output
        assert needle in result.output
    with Archive(night) as archive:
        assert len(archive.masters(all_versions=True)) == before
