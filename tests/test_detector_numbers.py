"""The detector measures itself: a read noise neither the profile nor the header gives
is the one measured on the master bias, and every product and ``nightlog match`` say
where each number came from."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from sqlalchemy import Engine, select

from nightlog.calibration.match_report import explain_match
from nightlog.catalogue.engine import make_sessionmaker
from nightlog.catalogue.models import Master, Product
from nightlog.coordinator.context import JobContext
from nightlog.coordinator.ingest import IngestContext, discover, run_ingest
from nightlog.coordinator.masters import run_build
from nightlog.coordinator.reduce import run_reduce, science_frames
from nightlog.settings import load_settings
from nightlog.simulate import load_truth

# The LFC as a new user would describe it from the docs, the gain measured but no read
# noise (and the LFC writes no RDNOISE keyword).
PROFILE = """
[instruments.lfc_new]
priority = 10
match = { INSTRUME = "LFC" }
type_keywords = ["IMAGETYP"]
date_keywords = ["DATE-OBS"]
time_keywords = ["UT"]
jd_keywords = ["JD"]
binning_keywords = [["CCDBIN1", "CCDBIN2"]]
site = { timezone = "America/Los_Angeles", longitude = -116.8647 }
gain = 2.37
saturation = 65535.0
overscan = "BIASSEC"
overscan_skip_columns = 7
subtract_overscan = true
trim = "DATASEC"
file_patterns = ["ccd.*.fits"]
"""


@pytest.fixture
def no_read_noise(catalogue_engine: Engine, lfc_night: Path, tmp_path: Path
                  ) -> tuple[Engine, JobContext, Path]:
    raw = tmp_path / "raw"
    shutil.copytree(lfc_night, raw)
    (tmp_path / "nightlog.toml").write_text(PROFILE, encoding="utf-8")
    settings = load_settings(env={}, cwd=tmp_path)
    run_ingest(catalogue_engine, discover([raw], settings.ingest.patterns),
               IngestContext.from_settings(settings))
    return catalogue_engine, JobContext.from_settings(settings), raw


def _sky_z_std(path: str) -> float:
    """Robust spread of the differences of horizontally adjacent good pixels, each
    divided by its propagated uncertainty: 1 when the uncertainty plane is honest.
    Differences cancel the sky and the diffuse light; the median absolute deviation
    ignores the few differences across stars."""
    with fits.open(path) as hdul:
        data = np.asarray(hdul["PRIMARY"].data, dtype=np.float64)
        sigma = np.asarray(hdul["UNCERT"].data, dtype=np.float64)
        bits = np.asarray(hdul["MASK"].data)
    good = (bits == 0) & np.isfinite(data) & np.isfinite(sigma)
    pair = good[:, 1:] & good[:, :-1]
    diff = (data[:, 1:] - data[:, :-1])[pair]
    z = diff / np.hypot(sigma[:, 1:], sigma[:, :-1])[pair]
    return float(1.482602218505602 * np.median(np.abs(z - np.median(z))))


def test_a_night_without_read_noise_uses_the_measured_one(
        no_read_noise: tuple[Engine, JobContext, Path], tmp_path: Path) -> None:
    engine, ctx, raw = no_read_noise
    truth = load_truth(raw).summary
    run_build(engine, ctx)
    with make_sessionmaker(engine)() as s:
        ids = science_frames(s)
        bias = s.scalars(select(Master).where(Master.kind == "bias")).one()
        measured_adu = bias.stats["read_noise_adu"]
        report = explain_match(s, ctx, str(ids[0]))
    # The master bias measured it, near the simulator's truth.
    assert measured_adu * 2.37 == pytest.approx(truth["read_noise_e"], rel=0.05)
    outcomes = run_reduce(engine, ctx, ids)
    assert {o.status for o in outcomes} == {"reduced"}
    assert report.detector["read_noise"] == {
        "value": pytest.approx(measured_adu * 2.37), "master": bias.id,
        "source": f"measured on master {bias.id}"}
    assert report.detector["gain"] == {"value": 2.37, "source": "profile lfc_new",
                                       "master": None}
    with make_sessionmaker(engine)() as s:
        products = list(s.scalars(select(Product)))
    assert len(products) == len(ids)
    for product in products:
        assert product.parameters["science"]["read_noise"] == pytest.approx(
            measured_adu * 2.37)
        assert product.parameters["detector"]["read_noise"]["source"] == (
            f"measured on master {bias.id}")
        header = fits.getheader(product.path)
        assert header["NLRDNSRC"] == f"measured on master {bias.id}"
        assert header["NLGAINSR"] == "profile lfc_new"
    # The uncertainty plane is nearly as honest as with the read noise given: the same
    # frames reduced with the built-in LFC profile (12.98 e-) spread within 2 %. (The
    # masters of this night are combined with the MAD clip, not the noise model, which
    # needs each input frame's read noise.)
    given = _reduced_with_the_builtin_profile(raw, tmp_path / "given")
    for product in products:
        name = Path(product.path).name.split("_final_")[0]
        assert _sky_z_std(product.path) == pytest.approx(_sky_z_std(given[name]), abs=0.02)


def _reduced_with_the_builtin_profile(raw: Path, where: Path) -> dict[str, str]:
    """Product paths, by raw name, of ``raw`` reduced in a second archive whose
    settings have no profile of their own (the built-in ``lfc`` matches)."""
    from sqlalchemy import create_engine

    from nightlog.catalogue.schema import upgrade

    where.mkdir()
    engine = create_engine(f"sqlite:///{where / 'catalogue.sqlite'}")
    upgrade(engine)
    try:
        settings = load_settings(env={}, cwd=where)
        run_ingest(engine, discover([raw], settings.ingest.patterns),
                   IngestContext.from_settings(settings))
        jobs = JobContext.from_settings(settings)
        run_build(engine, jobs)
        with make_sessionmaker(engine)() as s:
            run_reduce(engine, jobs, science_frames(s))
            products = list(s.scalars(select(Product)))
            assert {p.parameters["detector"]["read_noise"]["source"]
                    for p in products} == {"profile lfc"}
            return {Path(p.path).name.split("_final_")[0]: p.path for p in products}
    finally:
        engine.dispose()


def test_an_assumed_number_is_said_once_per_profile_and_number(
        caplog: pytest.LogCaptureFixture) -> None:
    from nightlog.calibration.detector_numbers import DetectorNumber, warn_if_assumed

    caplog.set_level(logging.WARNING, logger="nightlog.reduce")
    numbers = {"gain": DetectorNumber(2.0, "profile test_warns"),
               "read_noise": DetectorNumber(0.0, "default: none given")}
    for _ in range(3):  # every frame of a night: one line, not one per frame
        assert warn_if_assumed(numbers, "test_warns") == ["read_noise"]
    lines = [r for r in caplog.records if getattr(r, "event", "") == "detector-default"]
    assert len(lines) == 1
    assert "read noise" in lines[0].getMessage() and "test_warns" in lines[0].getMessage()
    assert warn_if_assumed({"gain": DetectorNumber(2.0, "header GAIN")}, "test_warns") == []
