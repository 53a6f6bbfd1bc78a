"""A 4-amplifier MEF camera through the whole archive: ingest (headers only), masters
per detector, reduction to one assembled product in electrons; the bad files
quarantined with their reasons. SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import CCDData
from sqlalchemy import Engine, select

from nightlog.catalogue.engine import make_sessionmaker
from nightlog.catalogue.models import Frame, Master, Product
from nightlog.coordinator.context import JobContext
from nightlog.coordinator.ingest import IngestContext, discover, run_ingest
from nightlog.coordinator.masters import run_build
from nightlog.coordinator.reduce import run_reduce, science_frames
from nightlog.settings import load_settings
from tests.factories import quarantined_by_name
from tests.mef_files import (
    GAINS,
    PROFILE_TOML,
    READ_NOISE,
    Camera,
    flat_pattern,
    write_mef,
    write_mosaic,
)
from tests.test_amplifiers import _steps

SKY = 800.0  # e- per pixel in a science frame
N_BIAS = N_FLAT = 5
FLAT_LEVELS = [30000.0 * (1.0 - 0.05 * i) for i in range(N_FLAT)]  # e- per pixel


def noise_floor(read_noise: float) -> float:
    """The noise of a reduced sky pixel (e-): the sky's Poisson noise and the read
    noise, and what the masters add: the master bias's read noise over N frames and
    the master flat's Poisson noise relative to its summed level, times the sky."""
    return float(np.sqrt(SKY + read_noise**2 + read_noise**2 / N_BIAS
                         + SKY**2 / sum(FLAT_LEVELS)))


def _night(raw: Path, camera: Camera) -> None:
    rng = np.random.default_rng(11)
    flat = flat_pattern(camera)
    zero = np.zeros(camera.shape)
    for i in range(N_BIAS):
        write_mef(raw / f"bias{i}.fits", camera, zero, rng, kind="BIAS", exptime=0.0,
                  date=f"2026-11-30T01:0{i}:00")
    for i, level in enumerate(FLAT_LEVELS):
        write_mef(raw / f"flat{i}.fits", camera, level * flat, rng, kind="SKYFLAT",
                  exptime=5.0, date=f"2026-11-30T01:1{i}:00")
    for i in range(2):
        write_mef(raw / f"sci{i}.fits", camera, SKY * flat, rng, kind="OBJECT",
                  exptime=60.0, date=f"2026-11-30T03:0{i}:00")


@pytest.fixture
def mef_archive(catalogue_engine: Engine, tmp_path: Path) -> tuple[Engine, JobContext, Path]:
    raw = tmp_path / "raw"
    raw.mkdir()
    (tmp_path / "nightlog.toml").write_text(PROFILE_TOML)
    _night(raw, Camera())
    settings = load_settings(env={}, cwd=tmp_path)
    summary = run_ingest(catalogue_engine, discover([raw], settings.ingest.patterns),
                         IngestContext.from_settings(settings))
    assert summary.counts["added"] == 12, summary.problems
    return catalogue_engine, JobContext.from_settings(settings), raw


def test_a_mef_night_gives_assembled_masters_and_products(
        mef_archive: tuple[Engine, JobContext, Path]) -> None:
    engine, ctx, _ = mef_archive
    camera = Camera()
    with make_sessionmaker(engine)() as s:
        frames = s.scalars(select(Frame)).all()
        assert {f.naxis2 for f in frames} == {camera.shape[0]}
        assert {f.naxis1 for f in frames} == {camera.shape[1]}
        assert all(f.amplifiers is not None and len(f.amplifiers["amplifiers"]) == 4
                   for f in frames)
    built = run_build(engine, ctx)
    assert sorted(o.kind for o in built if o.status == "built") == ["bias", "flat"], [
        o.reason for o in built]
    with make_sessionmaker(engine)() as s:
        ids = science_frames(s)
        bias = s.scalars(select(Master).where(Master.kind == "bias")).one()
        flat = s.scalars(select(Master).where(Master.kind == "flat")).one()
        # Read noise per amplifier from two biases, gain per amplifier from two flats.
        for amp, rn in zip(bias.stats["amplifiers"], READ_NOISE, strict=True):
            assert amp["read_noise_e"] == pytest.approx(rn, rel=0.05)
        for amp, gain in zip(flat.stats["amplifiers"], GAINS, strict=True):
            assert amp["gain"] == pytest.approx(gain, rel=0.05)
        master_flat = CCDData.read(flat.path, hdu_uncertainty="UNCERT", hdu_mask="MASK")
        assert master_flat.shape == camera.shape
    outcomes = run_reduce(engine, ctx, ids)
    assert [o.status for o in outcomes] == ["reduced"] * len(ids)
    with make_sessionmaker(engine)() as s:
        product = s.scalars(select(Product)).first()
        assert product is not None
        ccd = CCDData.read(product.path, hdu_uncertainty="UNCERT", hdu_mask="MASK")
    assert ccd.shape == camera.shape and ccd.unit == "electron"
    assert ccd.header["NAMPS"] == 4 and ccd.header["GAIN"] == 1.0
    for i, gain in enumerate(GAINS, start=1):
        assert ccd.header[f"GAIN_A{i}"] == gain
    # A flat-fielded sky of SKY e-: its level, and its noise within 5 % of the floor
    # set by the sky, each amplifier's read noise and the masters.
    n = camera.n
    good = ~ccd.mask
    assert np.median(ccd.data[good]) == pytest.approx(SKY, rel=0.01)
    for q, (ys, xs) in enumerate([(slice(0, n), slice(0, n)), (slice(0, n), slice(n, None)),
                                  (slice(n, None), slice(n, None)),
                                  (slice(n, None), slice(0, n))]):
        block = ccd.data[ys, xs][good[ys, xs]]
        floor = noise_floor(READ_NOISE[q])
        measured = 1.4826 * np.median(np.abs(block - np.median(block)))
        assert measured <= 1.05 * floor
        assert measured >= 0.95 * floor
        # The uncertainty plane says the same.
        assert np.median(ccd.uncertainty.array[ys, xs]) == pytest.approx(floor, rel=0.05)
    # No step at the amplifier boundaries of the product.
    assert max(abs(s) for s in _steps(ccd.data, n)) <= 2.0
    # The product opens in ccdproc as one image with its planes.
    ccdproc = pytest.importorskip("ccdproc")
    trimmed = ccdproc.trim_image(ccd[10:20, 10:20])
    assert trimmed.shape == (10, 10) and trimmed.uncertainty is not None


def test_bad_mef_files_are_quarantined_with_their_reason(catalogue_engine: Engine,
                                                          tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    (tmp_path / "nightlog.toml").write_text(PROFILE_TOML.replace(
        'amplifiers = "all"', "amplifiers = [" + ", ".join(
            f'{{ hdu = "AMP{i}" }}' for i in range(1, 5)) + "]"))
    camera, rng = Camera(), np.random.default_rng(2)
    sky = np.full(camera.shape, 500.0)
    write_mef(raw / "good.fits", camera, sky, rng, kind="OBJECT", exptime=10.0)
    write_mef(raw / "missing.fits", camera, sky, rng, kind="OBJECT", exptime=10.0, skip=2)
    write_mef(raw / "extra.fits", camera, sky, rng, kind="OBJECT", exptime=10.0, extra=True)
    write_mef(raw / "shape.fits", camera, sky, rng, kind="OBJECT", exptime=10.0, bad_shape=1)
    overlap = write_mef(raw / "overlap.fits", camera, sky, rng, kind="OBJECT", exptime=10.0)
    with fits.open(overlap, mode="update") as hdul:
        hdul["AMP2"].header["DETSEC"] = camera.detsec(0)  # on top of amplifier 1
    outside = write_mef(raw / "outside.fits", camera, sky, rng, kind="OBJECT", exptime=10.0)
    with fits.open(outside, mode="update") as hdul:
        hdul["AMP3"].header["DATASEC"] = f"[1:{camera.n},2:{camera.n + 9}]"
    settings = load_settings(env={}, cwd=tmp_path)
    summary = run_ingest(catalogue_engine, discover([raw], settings.ingest.patterns),
                         IngestContext.from_settings(settings))
    assert summary.counts["added"] == 1 and summary.counts["quarantined"] == 5
    reasons = {name: q.reason for name, q in quarantined_by_name(catalogue_engine).items()}
    assert "'AMP3' is missing" in reasons["missing.fits"]
    assert "extra image extension" in reasons["extra.fits"]
    assert "AMP5" in reasons["extra.fits"]
    assert "differ in shape" in reasons["shape.fits"]
    assert "AMP1 and AMP2 overlap" in reasons["overlap.fits"]
    assert "AMP3" in reasons["outside.fits"] and "outside" in reasons["outside.fits"]
    assert all(q.error == "AmplifierError"
               for q in quarantined_by_name(catalogue_engine).values())


def test_an_automatic_layout_missing_an_amplifier_is_refused(catalogue_engine: Engine,
                                                             tmp_path: Path) -> None:
    """With ``amplifiers = "all"`` a missing extension leaves a hole in the detector."""
    raw = tmp_path / "raw"
    raw.mkdir()
    (tmp_path / "nightlog.toml").write_text(PROFILE_TOML)
    camera = Camera()
    write_mef(raw / "three.fits", camera, np.full(camera.shape, 500.0),
              np.random.default_rng(3), kind="OBJECT", exptime=10.0, skip=3)
    settings = load_settings(env={}, cwd=tmp_path)
    run_ingest(catalogue_engine, discover([raw], settings.ingest.patterns),
               IngestContext.from_settings(settings))
    reason = quarantined_by_name(catalogue_engine)["three.fits"].reason
    assert "an amplifier is missing" in reason and "cover 12288 of the 16384" in reason


def test_ingest_reads_the_extension_headers_never_their_pixels(
        catalogue_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    (tmp_path / "nightlog.toml").write_text(PROFILE_TOML)
    camera = Camera()
    write_mef(raw / "a.fits", camera, np.full(camera.shape, 500.0), np.random.default_rng(4),
              kind="OBJECT", exptime=10.0)

    def no_pixels(*args: object, **kwargs: object) -> None:
        raise AssertionError("ingest opened the file with astropy")

    monkeypatch.setattr(fits, "open", no_pixels)
    monkeypatch.setattr(fits.ImageHDU, "data", property(no_pixels))
    settings = load_settings(env={}, cwd=tmp_path)
    summary = run_ingest(catalogue_engine, discover([raw], settings.ingest.patterns),
                         IngestContext.from_settings(settings))
    assert summary.counts["added"] == 1, summary.problems
    with make_sessionmaker(catalogue_engine)() as s:
        frame = s.scalars(select(Frame)).one()
    assert (frame.naxis2, frame.naxis1) == camera.shape
    assert [a["gain"] for a in frame.amplifiers["amplifiers"]] == list(GAINS)


def test_a_mosaic_of_two_ccds_is_one_frame_per_ccd_or_refused_whole(
        catalogue_engine: Engine, tmp_path: Path) -> None:
    """A file of two CCDs is two frames, each its own CCD's assembled detector and
    amplifiers (docs/profiles.md, Mosaics); a file one of whose CCDs does not tile is
    refused whole, with the reason, never catalogued as its other CCD."""
    raw = tmp_path / "raw"
    raw.mkdir()
    (tmp_path / "nightlog.toml").write_text(PROFILE_TOML + 'ccd = "CCDNAME"\n')
    camera = Camera()
    write_mosaic(raw / "mosaic.fits", camera, np.random.default_rng(6))
    with fits.open(raw / "mosaic.fits") as hdul:
        hdul[5].header["DETSEC"] = hdul[6].header["DETSEC"]  # CCD2's amplifiers overlap
        hdul.writeto(raw / "broken.fits")
    settings = load_settings(env={}, cwd=tmp_path)
    summary = run_ingest(catalogue_engine, discover([raw], settings.ingest.patterns),
                         IngestContext.from_settings(settings))
    assert summary.counts["added"] == 1 and summary.counts["quarantined"] == 1
    with make_sessionmaker(catalogue_engine)() as s:
        frames = list(s.scalars(select(Frame).order_by(Frame.id)))
    assert [(Path(f.path).name, f.ccd) for f in frames] == [("mosaic.fits", "CCD1"),
                                                           ("mosaic.fits", "CCD2")]
    for f in frames:
        assert (f.naxis2, f.naxis1) == camera.shape
        assert {a["ccd"] for a in f.amplifiers["amplifiers"]} == {f.ccd}
        assert len(f.amplifiers["amplifiers"]) == 4
    reason = quarantined_by_name(catalogue_engine)["broken.fits"].reason
    assert "overlap" in reason and "CCD2" in reason, reason


def test_darks_and_a_measured_read_noise(catalogue_engine: Engine, tmp_path: Path) -> None:
    """Darks of a MEF camera make a dark rate in electrons per second, subtracted from
    the science frames; with ``read_noise = "measured"`` for every amplifier the master
    bias's measurement (the amplifiers' root mean square) is what the products use."""
    raw = tmp_path / "raw"
    raw.mkdir()
    amps = ", ".join(f'{{ hdu = "AMP{i}", read_noise = "measured" }}' for i in range(1, 5))
    (tmp_path / "nightlog.toml").write_text(
        PROFILE_TOML.replace('amplifiers = "all"', f"amplifiers = [{amps}]"))
    camera, rng = Camera(), np.random.default_rng(12)
    flat = flat_pattern(camera)
    dark_rate = 2.0  # e-/s
    for i in range(N_BIAS):
        write_mef(raw / f"bias{i}.fits", camera, np.zeros(camera.shape), rng, kind="BIAS",
                  exptime=0.0, date=f"2026-11-30T01:0{i}:00")
    for i in range(5):
        write_mef(raw / f"dark{i}.fits", camera, np.full(camera.shape, 60.0 * dark_rate),
                  rng, kind="DARK", exptime=60.0, date=f"2026-11-30T01:2{i}:00")
    for i, level in enumerate(FLAT_LEVELS):
        write_mef(raw / f"flat{i}.fits", camera, level * flat + 5.0 * dark_rate, rng,
                  kind="SKYFLAT", exptime=5.0, date=f"2026-11-30T01:1{i}:00")
    write_mef(raw / "sci.fits", camera, SKY * flat + 60.0 * dark_rate, rng, kind="OBJECT",
              exptime=60.0, date="2026-11-30T03:00:00")
    settings = load_settings(env={}, cwd=tmp_path)
    summary = run_ingest(catalogue_engine, discover([raw], settings.ingest.patterns),
                         IngestContext.from_settings(settings))
    assert summary.counts["added"] == 16, summary.problems
    ctx = JobContext.from_settings(settings)
    built = run_build(catalogue_engine, ctx)
    assert sorted(o.kind for o in built if o.status == "built") == ["bias", "dark", "flat"], [
        o.reason for o in built]
    with make_sessionmaker(catalogue_engine)() as s:
        frame = s.scalars(select(Frame).where(Frame.kind == "science")).one()
        assert frame.read_noise is None  # nothing gave one: measured
        dark = s.scalars(select(Master).where(Master.kind == "dark")).one()
        ids = science_frames(s)
    master_dark = CCDData.read(dark.path, hdu_uncertainty="UNCERT", hdu_mask="MASK")
    assert master_dark.unit == "electron" and master_dark.header["EXPTIME"] == 1.0
    assert np.median(master_dark.data) == pytest.approx(dark_rate, rel=0.05)
    assert [o.status for o in run_reduce(catalogue_engine, ctx, ids)] == ["reduced"]
    with make_sessionmaker(catalogue_engine)() as s:
        product = s.scalars(select(Product)).one()
    ccd = CCDData.read(product.path, hdu_uncertainty="UNCERT", hdu_mask="MASK")
    rms = float(np.sqrt(np.mean(np.square(READ_NOISE))))
    assert ccd.header["NLRDNSRC"].startswith("measured on master")
    assert ccd.header["NLRDNOIS"] == pytest.approx(rms, rel=0.05)
    assert np.median(ccd.data[~ccd.mask]) == pytest.approx(SKY, rel=0.01)
    assert max(abs(s) for s in _steps(ccd.data, camera.n)) <= 2.0


def test_flat_checks_read_an_amplifier_s_raw_levels(catalogue_engine: Engine,
                                                    tmp_path: Path) -> None:
    """A MEF flat is checked on its first amplifier in raw ADU above its own overscan:
    a faint one is under-exposed, one near the amplifier's saturation is refused."""
    raw = tmp_path / "raw"
    raw.mkdir()
    (tmp_path / "nightlog.toml").write_text(PROFILE_TOML)
    camera, rng = Camera(), np.random.default_rng(13)
    flat = flat_pattern(camera)
    for i in range(N_BIAS):
        write_mef(raw / f"bias{i}.fits", camera, np.zeros(camera.shape), rng, kind="BIAS",
                  exptime=0.0, date=f"2026-11-30T01:0{i}:00")
    for i, level in enumerate(FLAT_LEVELS):
        write_mef(raw / f"flat{i}.fits", camera, level * flat, rng, kind="SKYFLAT",
                  exptime=5.0, date=f"2026-11-30T01:1{i}:00")
    # 400 e- is 220 ADU above the bias on amplifier 1 (1.8 e-/ADU): under 1000 ADU.
    write_mef(raw / "faint.fits", camera, 400.0 * flat, rng, kind="SKYFLAT", exptime=5.0,
              date="2026-11-30T01:20:00")
    # 50000 ADU on amplifier 1: above 0.8 of its SATURATE (60000).
    write_mef(raw / "bright.fits", camera, 49000.0 * GAINS[0] * flat, rng, kind="SKYFLAT",
              exptime=5.0, date="2026-11-30T01:21:00")
    settings = load_settings(env={}, cwd=tmp_path)
    run_ingest(catalogue_engine, discover([raw], settings.ingest.patterns),
               IngestContext.from_settings(settings))
    built = run_build(catalogue_engine, JobContext.from_settings(settings))
    flats = [o for o in built if o.kind == "flat"]
    assert [o.status for o in flats] == ["built"] and flats[0].n_used == N_FLAT
    reasons = " ".join(r for _, r in flats[0].rejected)
    assert "under-exposed flat" in reasons and "of saturation (60000)" in reasons
