"""Subarray (region-of-interest) frames: where a window lies, which masters serve it,
and the window reduced as well as the same region of a full frame.

A small test camera with a strong fixed pattern in bias, dark and flat (2 prescan
columns, 80 image columns, 2 overscan columns) is written with astropy: full-frame
calibrations, a full-frame science frame, and windows of the *same exposure* cut
from it, placed by XORGSUBF/YORGSUBF or by LTV1/LTV2. Through ingest, master builds
and reduction, the window's product equals the full product's region pixel for
pixel, recovers the simulated sky within its stated noise, and a window said to lie
two columns off keeps the pattern (the test is sensitive to the origin).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import CCDData, StdDevUncertainty
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import inspect, select

from nightlog.calibration.match_report import explain_match
from nightlog.calibration.windows import window_verdict
from nightlog.catalogue.engine import create_engine, make_sessionmaker
from nightlog.catalogue.models import Frame, Master, Product, QuarantinedFile
from nightlog.catalogue.schema import upgrade
from nightlog.coordinator.context import JobContext
from nightlog.coordinator.ingest import IngestContext, discover, run_ingest
from nightlog.coordinator.night import finish_night
from nightlog.errors import InvalidValueError, MissingKeywordError, ProfileError
from nightlog.header.normalize import normalize_header
from nightlog.header.profiles import ProfileRegistry
from nightlog.header.window import frame_window
from nightlog.reduction.mask import MaskBit
from nightlog.reduction.window import crop_to_window
from nightlog.settings import load_settings
from nightlog.store.products import read_product

FULL = (64, 84)  # rows, columns of the full readout
PRESCAN, IMAGE = 2, 80  # columns 1-2 prescan, 3-82 image, 83-84 overscan
TRIM = "[3:82,1:64]"
GAIN, READ_NOISE_ADU = 2.0, 2.5
WIN = (13, 7, 40, 30)  # x0, y0 (0-based, full readout), nx, ny
WIN_SECTION = "[14:53,8:37]"
CROP_SECTION = "[12:51,8:37]"  # the same pixels in the trimmed master (2 prescan columns)
WIN_B = (40, 30, 20, 20)
WIN_C = (10, 40, 30, 20)
NIGHT_START = dt.datetime(2026, 3, 10, 3, 0, 0)

PROFILE_TOML = """
[instruments.roicam]
match = {{ INSTRUME = "ROICam" }}
binning_keywords = [["XBINNING", "YBINNING"]]
full_shape = [64, 84]
trim = "{trim}"
overscan = "[83:84,1:64]"
window_source = "{source}"
gain = 2.0
read_noise = 5.0
saturation = 65535.0
"""


def _profile(source: str = "xorgsubf", **extra: Any) -> Any:
    table: dict[str, Any] = {"match": {"INSTRUME": "ROICam"}, "full_shape": list(FULL),
                             "trim": TRIM, "window_source": source,
                             "binning_keywords": [["XBINNING", "YBINNING"]], **extra}
    return ProfileRegistry.from_settings({"roicam": table}).get("roicam")


def _header(shape: tuple[int, int], **cards: Any) -> dict[str, Any]:
    return {"INSTRUME": "ROICam", "IMAGETYP": "LIGHT", "EXPTIME": 30.0,
            "DATE-OBS": "2026-03-10T04:00:00", "NAXIS": 2, "NAXIS1": shape[1],
            "NAXIS2": shape[0], "XBINNING": 1, "YBINNING": 1, **cards}


# --- Where a window lies ---------------------------------------------------------------

def test_xorgsubf_and_ltv_place_the_same_window_and_give_the_full_frames_setup() -> None:
    full = normalize_header(_header(FULL, XORGSUBF=0, YORGSUBF=0), _profile())
    by_org = normalize_header(_header((30, 40), XORGSUBF=13, YORGSUBF=7), _profile())
    by_ltv = normalize_header(_header((30, 40), LTV1=-13.0, LTV2=-7), _profile("ltv"))
    assert full.window is None
    assert by_org.window == by_ltv.window == WIN_SECTION
    assert by_org.shape == (30, 40)
    assert by_org.setup_key == by_ltv.setup_key == full.setup_key
    assert full.setup_key.endswith("|64x84")


def test_ccdsec_places_a_binned_window_in_binned_pixels() -> None:
    # Unbinned detector columns 27-106, rows 15-74 at 2x2: binned origin (13, 7)
    # counted from the detector's first data column, which the literal datasec puts
    # at column 3 of the full readout (binned: column 2).
    profile = _profile("ccdsec", datasec="[3:82,1:64]", full_shape=[128, 168])
    norm = normalize_header(_header((30, 40), CCDSEC="[27:106,15:74]", XBINNING=2,
                                    YBINNING=2), profile)
    assert norm.window == "[15:54,8:37]"
    with pytest.raises(InvalidValueError, match="does not match the data section"):
        normalize_header(_header((30, 40), CCDSEC="[26:105,15:74]", XBINNING=2,
                                 YBINNING=2), profile)


def test_a_window_off_the_full_readout_or_half_placed_is_refused() -> None:
    with pytest.raises(InvalidValueError, match="reaches outside the full readout"):
        normalize_header(_header((30, 40), XORGSUBF=60, YORGSUBF=0), _profile())
    with pytest.raises(InvalidValueError, match="before the detector"):
        normalize_header(_header((30, 40), LTV1=5, LTV2=0), _profile("ltv"))
    with pytest.raises(MissingKeywordError, match="YORGSUBF is missing"):
        normalize_header(_header((30, 40), XORGSUBF=3), _profile())
    with pytest.raises(InvalidValueError, match="whole number"):
        normalize_header(_header((30, 40), LTV1=-2.5, LTV2=0), _profile("ltv"))


def test_a_small_frame_that_says_nothing_keeps_its_own_setup_and_says_so() -> None:
    norm = normalize_header(_header((30, 40)), _profile())
    assert norm.window is None and norm.setup_key.endswith("|30x40")
    assert "says where" in norm.extra["window"]
    # A profile without windows never reads the keywords.
    plain = normalize_header(_header((30, 40), XORGSUBF=13, YORGSUBF=7), _profile("none"))
    assert plain.window is None and plain.setup_key.endswith("|30x40")


def test_a_window_source_needs_the_full_shape_and_a_known_name() -> None:
    with pytest.raises(ProfileError, match="needs full_shape"):
        ProfileRegistry.from_settings({"cam": {"window_source": "xorgsubf"}})
    with pytest.raises(ProfileError, match="unknown window source"):
        ProfileRegistry.from_settings({"cam": {"window_source": "roi", "full_shape": [4, 4]}})


@given(x0=st.integers(0, 100), y0=st.integers(0, 100), nx=st.integers(1, 60),
       ny=st.integers(1, 60), bx=st.sampled_from([1, 2, 3]), source=st.sampled_from(
           ["xorgsubf", "ltv"]))
@settings(max_examples=80, deadline=None)
def test_window_placement_property(x0: int, y0: int, nx: int, ny: int, bx: int,
                                   source: str) -> None:
    full = (120 * bx, 150 * bx)
    cards = ({"XORGSUBF": x0, "YORGSUBF": y0} if source == "xorgsubf"
             else {"LTV1": -x0, "LTV2": -y0})
    header = _header((ny, nx), XBINNING=bx, YBINNING=bx, **cards)
    inside = x0 + nx <= 150 and y0 + ny <= 120
    if not inside:
        with pytest.raises(InvalidValueError):
            frame_window(header, source=source, full_shape=full, shape=(ny, nx),
                         binning=(bx, bx))
        return
    window = frame_window(header, source=source, full_shape=full, shape=(ny, nx),
                          binning=(bx, bx))
    if (x0, y0, nx, ny) == (0, 0, 150, 120):
        assert window is None
    else:
        assert window == f"[{x0 + 1}:{x0 + nx},{y0 + 1}:{y0 + ny}]"


def test_a_windows_overscan_skips_the_profiles_columns_at_its_binning(tmp_path: Path
                                                                      ) -> None:
    from nightlog.calibration.policy import CalibrationPolicy
    from nightlog.store.layout import ArchiveLayout

    registry = ProfileRegistry.from_settings({"roicam": {
        "match": {"INSTRUME": "ROICam"}, "full_shape": list(FULL), "trim": TRIM,
        "window_source": "xorgsubf", "overscan_skip_columns": 3}})
    ctx = JobContext(registry=registry, policy=CalibrationPolicy(),
                     layout=ArchiveLayout(tmp_path))
    window = Frame(profile="roicam", window="[1:20,1:10]", naxis1=20, naxis2=10,
                   binning="1x1", biassec="[11:20,1:10]")
    binned = Frame(profile="roicam", window="[1:20,1:10]", naxis1=20, naxis2=10,
                   binning="2x2", biassec="[11:20,1:10]")
    assert ctx.skip_columns_of(window) == 3  # not scaled by the window's width
    assert ctx.skip_columns_of(binned) == 2


# --- The crop ----------------------------------------------------------------------------

def _ccd(rng: np.random.Generator, shape: tuple[int, int]) -> CCDData:
    flags = rng.integers(0, 4, shape).astype(np.uint16)
    return CCDData(rng.normal(100, 10, shape).astype(np.float32), unit="adu",
                   uncertainty=StdDevUncertainty(rng.random(shape).astype(np.float32)),
                   mask=flags != 0, flags=flags)


@given(ny=st.integers(1, 30), nx=st.integers(1, 30), data=st.data())
@settings(max_examples=60, deadline=None)
def test_the_crop_is_numpy_slicing_of_every_plane(ny: int, nx: int, data: Any) -> None:
    master = _ccd(np.random.default_rng(ny * 31 + nx), (ny, nx))
    y0 = data.draw(st.integers(0, ny - 1))
    y1 = data.draw(st.integers(y0 + 1, ny))
    x0 = data.draw(st.integers(0, nx - 1))
    x1 = data.draw(st.integers(x0 + 1, nx))
    before = master.data.copy()
    out = crop_to_window(master, (y0, y1, x0, x1))
    cut = (slice(y0, y1), slice(x0, x1))
    np.testing.assert_array_equal(out.data, master.data[cut])
    np.testing.assert_array_equal(out.uncertainty.array, master.uncertainty.array[cut])
    np.testing.assert_array_equal(out.mask, master.mask[cut])
    np.testing.assert_array_equal(out.flags, master.flags[cut])
    np.testing.assert_array_equal(master.data, before)
    assert out.meta["WINCROP"] == f"[{x0 + 1}:{x1},{y0 + 1}:{y1}]"


def _rows(window: tuple[int, int, int, int] | None, *, binning: str = "1x1",
          master_window: str | None = None, trim: str | None = TRIM
          ) -> tuple[Frame, Master]:
    if window is None:
        frame = Frame(window=None, naxis1=FULL[1], naxis2=FULL[0], binning=binning,
                      trimsec=trim, datasec=None, biassec=None)
    else:
        x0, y0, nx, ny = window
        frame = Frame(window=f"[{x0 + 1}:{x0 + nx},{y0 + 1}:{y0 + ny}]", naxis1=nx,
                      naxis2=ny, binning=binning, trimsec=None, datasec=None, biassec=None)
    master = Master(window=master_window, group={"shape": f"{FULL[0]}x{FULL[1]}"},
                    parameters={"preparation": {"overscan": None, "trim": trim}})
    return frame, master


@given(x0=st.integers(0, FULL[1] - 1), y0=st.integers(0, FULL[0] - 1),
       nx=st.integers(1, FULL[1]), ny=st.integers(1, FULL[0]))
@settings(max_examples=120, deadline=None)
def test_the_chosen_crop_shows_the_window_s_pixels(x0: int, y0: int, nx: int, ny: int
                                                   ) -> None:
    """Over window origins and sizes: the crop of the trimmed master holds exactly the
    full readout's pixels under the window, or the master is refused."""
    nx, ny = min(nx, FULL[1] - x0), min(ny, FULL[0] - y0)
    readout = np.arange(FULL[0] * FULL[1]).reshape(FULL)
    master_pixels = readout[:, PRESCAN:PRESCAN + IMAGE]  # the trim
    frame, master = _rows((x0, y0, nx, ny))
    verdict = window_verdict(frame, master, "dark", _profile())
    assert verdict is not None
    inside = x0 >= PRESCAN and x0 + nx <= PRESCAN + IMAGE
    assert verdict.passed == inside, verdict.detail
    if inside:
        assert verdict.crop is not None
        r0, r1, c0, c1 = verdict.crop
        np.testing.assert_array_equal(master_pixels[r0:r1, c0:c1],
                                      readout[y0:y0 + ny, x0:x0 + nx])
    else:
        assert "reaches outside the master's data" in verdict.detail


def test_the_window_rule_keeps_windows_apart() -> None:
    profile = _profile()
    frame, master_a = _rows(WIN, master_window=WIN_SECTION)
    assert window_verdict(frame, master_a, "bias", profile).passed  # type: ignore[union-attr]
    other, _ = _rows(WIN_B)
    refused = window_verdict(other, master_a, "bias", profile)
    assert refused is not None and not refused.passed
    assert refused.detail == f"master of window {WIN_SECTION} never serves window [41:60,31:50]"
    full, _ = _rows(None)
    assert "never serves a full frame" in window_verdict(  # type: ignore[union-attr]
        full, master_a, "bias", profile).detail
    _, full_master = _rows(None)
    assert window_verdict(full, full_master, "bias", profile) is None
    # An overscan-corrected bias master never serves a window without an overscan.
    full_master.parameters = {"preparation": {"overscan": {"region": "[83:84,1:64]"},
                                              "trim": TRIM}}
    verdict = window_verdict(frame, full_master, "bias", _profile(subtract_overscan=True))
    assert verdict is not None and not verdict.passed
    assert "bias level would stay" in verdict.detail


def test_the_core_reduces_a_window_as_the_full_frames_region() -> None:
    """Noiseless: the window of a raw frame with its masters' crops gives exactly the
    region of the full frame reduced with the whole masters; inputs untouched."""
    from nightlog.reduction.cosmics import CosmicRaySettings
    from nightlog.reduction.science import ScienceParameters, reduce_science

    p = _patterns()
    image = (slice(None), slice(PRESCAN, PRESCAN + IMAGE))
    raw = p["bias"] + p["dark"] * 30.0 + p["flat"] * p["sky"]
    bias = CCDData(p["bias"][image].astype(np.float32), unit="adu")
    dark = CCDData(p["dark"][image].astype(np.float32), unit="adu / s")
    flat = CCDData((p["flat"][image] / np.median(p["flat"][image])).astype(np.float32),
                   unit="")
    params = ScienceParameters(gain=GAIN, read_noise=5.0, saturation=65535.0, exptime=30.0,
                               overscan=None, trim=None, dark_is_rate=True,
                               cosmic_rays=CosmicRaySettings(enabled=False))
    full = reduce_science(CCDData(raw[image].astype(np.float32), unit="adu"), bias=bias,
                          dark=dark, flat=flat, params=params)
    x0, y0, nx, ny = WIN
    crop = (y0, y0 + ny, x0 - PRESCAN, x0 - PRESCAN + nx)
    before = [m.data.copy() for m in (bias, dark, flat)]
    win = reduce_science(CCDData(_cut(raw, WIN).astype(np.float32), unit="adu"), bias=bias,
                         dark=dark, flat=flat, params=params,
                         crops={"bias": crop, "dark": crop, "flat": crop})
    region = (slice(crop[0], crop[1]), slice(crop[2], crop[3]))
    np.testing.assert_array_equal(win.ccd.data, full.ccd.data[region])
    np.testing.assert_array_equal(win.bits, full.bits[region])
    scale = float(np.median(p["flat"][image]))  # the flat normalised to its median
    truth = scale * p["sky"][y0:y0 + ny, x0:x0 + nx]
    np.testing.assert_allclose(win.ccd.data, truth, rtol=1e-4)
    for master, old in zip((bias, dark, flat), before, strict=True):
        np.testing.assert_array_equal(master.data, old)
    # One column off, the patterns stay.
    shifted = (crop[0], crop[1], crop[2] + 1, crop[3] + 1)
    off = reduce_science(CCDData(_cut(raw, WIN).astype(np.float32), unit="adu"), bias=bias,
                         dark=dark, flat=flat, params=params,
                         crops={"bias": shifted, "dark": shifted, "flat": shifted})
    assert np.std(off.ccd.data - truth) > 20.0


# --- Through ingest, master builds and reduction --------------------------------------------

def _patterns() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(42)
    ny, nx = FULL
    cols = np.arange(nx)
    bias = 1000.0 + 150.0 * np.sin(cols / 3.0)[None, :] + rng.normal(0, 40, FULL)
    dark = 0.3 + rng.exponential(0.4, FULL)  # ADU/s
    flat = (0.7 + 0.3 * np.linspace(0, 1, nx)[None, :]) * rng.normal(1, 0.08, FULL)
    flat[:, :PRESCAN] = 0.0  # prescan and overscan see no light
    flat[:, PRESCAN + IMAGE:] = 0.0
    yy, xx = np.mgrid[0:ny, 0:nx]
    sky = np.full(FULL, 400.0)
    for sx, sy, amp in ((30, 20, 3000.0), (45, 25, 1500.0), (60, 50, 2500.0)):
        sky += amp * np.exp(-((xx - sx) ** 2 + (yy - sy) ** 2) / (2 * 1.8**2))
    return {"bias": bias, "dark": dark, "flat": flat, "sky": sky}


def _expose(rng: np.random.Generator, p: dict[str, np.ndarray], exptime: float,
            light: np.ndarray | None) -> np.ndarray:
    electrons = p["dark"] * exptime * GAIN
    if light is not None:
        electrons = electrons + p["flat"] * light * GAIN
    counts = rng.poisson(np.clip(electrons, 0, None)) / GAIN
    raw = p["bias"] + counts + rng.normal(0, READ_NOISE_ADU, FULL)
    return np.clip(np.round(raw), 0, 65535).astype(np.uint16)


def _write(path: Path, data: np.ndarray, kind: str, exptime: float, when: dt.datetime,
           source: str, window: tuple[int, int] | None = None, binning: int = 1) -> None:
    hdu = fits.PrimaryHDU(data)
    cards = {"INSTRUME": "ROICam", "IMAGETYP": kind, "EXPTIME": exptime,
             "DATE-OBS": when.isoformat(), "FILTER": "R", "XBINNING": binning,
             "YBINNING": binning, "OBJECT": "field" if kind == "LIGHT" else kind}
    origin = window or (0, 0)
    if source == "xorgsubf":
        cards.update(XORGSUBF=origin[0], YORGSUBF=origin[1])
    elif window is not None:
        cards.update(LTV1=-origin[0], LTV2=-origin[1])
    for key, value in cards.items():
        hdu.header[key] = value
    hdu.writeto(path)


def _cut(data: np.ndarray, window: tuple[int, int, int, int]) -> np.ndarray:
    x0, y0, nx, ny = window
    return np.ascontiguousarray(data[y0:y0 + ny, x0:x0 + nx])


def _night(folder: Path, source: str) -> dict[str, Any]:
    p = _patterns()
    rng = np.random.default_rng(7)
    raw = folder / "raw"
    raw.mkdir(parents=True)
    when = NIGHT_START
    for i in range(5):
        for kind, exptime, light in (("BIAS", 0.0, None), ("DARK", 60.0, None),
                                     ("FLAT", 5.0, np.full(FULL, 20000.0))):
            when += dt.timedelta(minutes=1)
            _write(raw / f"{kind.lower()}{i}.fits", _expose(rng, p, exptime, light), kind,
                   exptime, when, source)
    for i in range(5):  # biases of another window: a master of window B
        when += dt.timedelta(minutes=1)
        _write(raw / f"bias_b{i}.fits", _cut(_expose(rng, p, 0.0, None), WIN_B), "BIAS",
               0.0, when, source, window=WIN_B[:2])
    for i in range(5):  # darks of a window C with no bias of its own: cropped full bias
        when += dt.timedelta(minutes=1)
        _write(raw / f"dark_c{i}.fits", _cut(_expose(rng, p, 60.0, None), WIN_C), "DARK",
               60.0, when, source, window=WIN_C[:2])
    when += dt.timedelta(minutes=30)
    science = _expose(rng, p, 30.0, p["sky"])
    _write(raw / "full.fits", science, "LIGHT", 30.0, when, source)
    # The same exposure read as a window, and the same pixels said to lie 2 columns off.
    _write(raw / "window.fits", _cut(science, WIN), "LIGHT", 30.0, when, source,
           window=WIN[:2])
    _write(raw / "shifted.fits", _cut(science, WIN), "LIGHT", 30.0, when, source,
           window=(WIN[0] + 2, WIN[1]))
    # Reaching into the overscan; binned 2x2; off the full readout.
    _write(raw / "into_overscan.fits", _cut(science, (70, 10, 14, 20)), "LIGHT", 30.0,
           when, source, window=(70, 10))
    _write(raw / "binned.fits", _cut(science, (0, 0, 20, 15)), "LIGHT", 30.0, when,
           source, window=(5, 3), binning=2)
    _write(raw / "off_readout.fits", _cut(science, (0, 0, 40, 30)), "LIGHT", 30.0, when,
           source, window=(60, 0))
    (folder / "nightlog.toml").write_text(PROFILE_TOML.format(trim=TRIM, source=source))
    settings = load_settings(env={}, cwd=folder)
    engine = create_engine(settings.database_url)
    upgrade(engine)
    run_ingest(engine, discover([raw], settings.ingest.patterns),
               IngestContext.from_settings(settings))
    ctx = JobContext.from_settings(settings)
    run = finish_night(engine, ctx, workers=1, local=True)
    return {"engine": engine, "ctx": ctx, "run": run, "patterns": p}


@pytest.fixture(scope="module", params=["xorgsubf", "ltv"])
def night(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> Any:
    out = _night(tmp_path_factory.mktemp(f"roi-{request.param}"), request.param)
    yield out
    out["engine"].dispose()


def _frames(night: dict[str, Any]) -> dict[str, Frame]:
    with make_sessionmaker(night["engine"])() as s:
        return {Path(f.path).stem: f for f in s.scalars(select(Frame))}


def _product(night: dict[str, Any], frame: Frame) -> tuple[Product, Any]:
    with make_sessionmaker(night["engine"])() as s:
        product = s.scalars(select(Product).where(Product.frame_id == frame.id,
                                                  Product.status == "current")).one()
    return product, read_product(product.path)


def test_the_window_is_catalogued_with_the_full_frames_setup(night: dict[str, Any]) -> None:
    frames = _frames(night)
    assert frames["window"].window == WIN_SECTION
    assert frames["full"].window is None
    assert frames["window"].setup_key == frames["full"].setup_key
    assert frames["bias_b0"].window == "[41:60,31:50]"
    with make_sessionmaker(night["engine"])() as s:
        masters = list(s.scalars(select(Master)))
        quarantined = {Path(q.path).name: q.reason for q in s.scalars(select(QuarantinedFile))}
    assert sorted((m.kind, m.window or "full") for m in masters) == [
        ("bias", "[41:60,31:50]"), ("bias", "full"), ("dark", "[11:40,41:60]"),
        ("dark", "full"), ("flat", "full")]
    assert "reaches outside the full readout" in quarantined["off_readout.fits"]


def test_a_master_of_a_window_is_calibrated_with_a_cropped_full_master(
        night: dict[str, Any]) -> None:
    with make_sessionmaker(night["engine"])() as s:
        dark_c = s.scalars(select(Master).where(Master.window == "[11:40,41:60]")).one()
        full_dark = s.scalars(select(Master).where(Master.kind == "dark",
                                                   Master.window.is_(None))).one()
    assert dark_c.parameters["crops"] == {"bias": "[9:38,41:60]"}
    history = " ".join(str(h) for h in read_product(dark_c.path).ccd.header["HISTORY"])
    assert "bias master cropped to the window: [9:38,41:60]" in history
    # The window's dark rate is the full master's over the same pixels, within noise.
    window_rate = np.asarray(read_product(dark_c.path).ccd.data)
    full_rate = np.asarray(read_product(full_dark.path).ccd.data)[40:60, 8:38]
    assert np.median(np.abs(window_rate - full_rate)) < 0.1 * np.median(full_rate)


def test_calib_add_finds_the_full_readout_beside_its_windows(night: dict[str, Any],
                                                             tmp_path: Path) -> None:
    """The newest frames of the set-up are windows; a full-size master still finds the
    full frames' set-up, and records where its pixels lie (so windows can be cut)."""
    import shutil

    from nightlog.coordinator.external_master import add_external_master

    with make_sessionmaker(night["engine"])() as s:
        built = s.scalars(select(Master).where(Master.kind == "bias",
                                               Master.window.is_(None))).one()
        copy = shutil.copy(built.path, tmp_path / "bias.fits")
        added = add_external_master(s, night["ctx"], copy, kind="bias")
        master = s.get(Master, added.id)
        assert master is not None and master.window is None
        assert master.parameters["preparation"]["trim"] == TRIM
        s.rollback()  # the module's archive stays as built


def test_the_window_reduces_to_the_full_frames_pixels(night: dict[str, Any]) -> None:
    frames = _frames(night)
    _, full = _product(night, frames["full"])
    product, win = _product(night, frames["window"])
    x0, y0, nx, ny = WIN
    region = (slice(y0, y0 + ny), slice(x0 - PRESCAN, x0 - PRESCAN + nx))
    full_data, win_data = np.asarray(full.ccd.data), np.asarray(win.ccd.data)
    assert win_data.shape == (ny, nx)
    cosmic = ((np.asarray(full.ccd.flags)[region] | np.asarray(win.ccd.flags))
              & MaskBit.COSMIC_RAY) != 0
    assert cosmic.sum() < 0.01 * cosmic.size
    np.testing.assert_allclose(win_data[~cosmic], full_data[region][~cosmic], rtol=1e-6,
                               atol=1e-3)
    np.testing.assert_allclose(np.asarray(win.ccd.uncertainty.array)[~cosmic],
                               np.asarray(full.ccd.uncertainty.array)[region][~cosmic],
                               rtol=1e-5)
    # The bad pixels too: found on the whole masters, with the whole detector's
    # thresholds, then cut.
    others = ~np.uint16(MaskBit.COSMIC_RAY)
    np.testing.assert_array_equal(np.asarray(win.ccd.flags) & others,
                                  np.asarray(full.ccd.flags)[region] & others)
    assert (np.asarray(win.ccd.flags) & MaskBit.HOT).any()
    header = win.ccd.header
    assert header["WINDOW"] == WIN_SECTION
    assert (header["XORGSUBF"], header["YORGSUBF"]) == (x0, y0)
    assert (header["LTV1"], header["LTV2"]) == (-x0, -y0)
    assert header["NLCROP"] == "bias,dark,flat"
    history = " ".join(str(h) for h in header["HISTORY"])
    assert f"bias master cropped to the window: {CROP_SECTION}" in history
    assert header["WINCROPB"] == header["WINCROPD"] == header["WINCROPF"] == CROP_SECTION
    reasons = {row.step: row.reason for row in win.provenance}
    assert reasons["bias"] == reasons["dark"] == reasons["flat"] == f"cropped to {CROP_SECTION}"
    assert product.parameters["window"] == {
        "raw": WIN_SECTION, "product": WIN_SECTION,
        "crops": {"bias": CROP_SECTION, "dark": CROP_SECTION, "flat": CROP_SECTION}}


def _normalised_residual(product: Any, truth: np.ndarray) -> np.ndarray:
    data = np.asarray(product.ccd.data, dtype=float)
    good = (np.asarray(product.ccd.flags) == 0) & np.isfinite(data)
    scale = np.median(data[good] / truth[good])  # the flat's normalisation
    return ((data - scale * truth) / np.asarray(product.ccd.uncertainty.array))[good]


def test_the_window_recovers_the_sky_and_a_wrong_origin_keeps_the_pattern(
        night: dict[str, Any]) -> None:
    frames = _frames(night)
    truth = _cut(night["patterns"]["sky"], WIN)
    _, win = _product(night, frames["window"])
    _, shifted = _product(night, frames["shifted"])
    good = _normalised_residual(win, truth)
    assert 0.8 < np.std(good) < 1.3  # the sky, within the noise the product states
    assert abs(np.mean(good)) < 0.15
    # The same pixels calibrated with masters cut 2 columns off: the bias, dark and
    # flat patterns stay, many times the noise.
    assert np.std(_normalised_residual(shifted, truth)) > 3.0


def test_match_explains_the_crop_and_every_refusal(night: dict[str, Any]) -> None:
    frames = _frames(night)
    ctx, session = night["ctx"], make_sessionmaker(night["engine"])()
    with session:
        report = explain_match(session, ctx, str(frames["window"].id))
        refused = {k: explain_match(session, ctx, str(frames[k].id))
                   for k in ("full", "into_overscan", "binned")}
    bias = next(m for m in report.matches if m["kind"] == "bias")
    chosen = next(c for c in bias["candidates"] if c["master"] == bias["chosen"])
    rules = {r["rule"]: r["detail"] for r in chosen["rules"]}
    assert rules["window"] == (f"full-frame master cropped to {CROP_SECTION} for window "
                               f"{WIN_SECTION}")
    other = next(c for c in bias["candidates"] if c["master"] != bias["chosen"])
    assert not other["usable"]
    assert {r["rule"]: r["detail"] for r in other["rules"]}["window"] == (
        f"master of window [41:60,31:50] never serves window {WIN_SECTION}")

    def failed(name: str, kind: str) -> list[str]:
        match = next(m for m in refused[name].matches if m["kind"] == kind)
        return [f"{r['rule']}: {r['detail']}" for c in match["candidates"]
                for r in c["rules"] if not r["passed"]]

    assert any("never serves a full frame" in f for f in failed("full", "bias"))
    assert any("reaches outside the master's data" in f for f in failed("into_overscan", "dark"))
    assert all(m["chosen"] is None for m in refused["binned"].matches)
    assert any(f.startswith("group.binning: frame 2x2, master 1x1")
               for f in failed("binned", "flat"))
    # The reduction stops for want of a bias (the default policy), saying why.
    outcomes = {o.frame_id: o for o in night["run"].outcomes}
    assert "failed window (2)" in outcomes[frames["into_overscan"].id].reason
    assert "group.binning" in outcomes[frames["binned"].id].reason
    assert outcomes[frames["window"].id].status == "reduced"


def test_migration_0009_adds_and_removes_the_window_columns(catalogue_url: str) -> None:
    from alembic import command

    from nightlog.catalogue.schema import _config

    engine = create_engine(catalogue_url)
    try:
        upgrade(engine, "0006")
        assert "window" not in {c["name"] for c in inspect(engine).get_columns("frames")}
        upgrade(engine, "0009")
        for table in ("frames", "masters"):
            assert "window" in {c["name"] for c in inspect(engine).get_columns(table)}
        command.downgrade(_config(engine), "0006")
        for table in ("frames", "masters"):
            assert "window" not in {c["name"] for c in inspect(engine).get_columns(table)}
    finally:
        engine.dispose()
