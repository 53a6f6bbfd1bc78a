"""The simulated ZWO ASI1600MM Pro night through the public flow (ingest, master
builds, reduction), compared with the simulator's truth: gain and read noise per
gain setting, the amplifier glow taken out, the subarray frame reduced as well as
a full frame, masters never crossing gain settings, telegraph pixels NOISY."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.io import fits
from typer.testing import CliRunner

from nightlog.archive import Archive
from nightlog.cli.app import app
from nightlog.reduction.mask import MaskBit
from nightlog.settings import Settings
from nightlog.simulate import simulate_night
from nightlog.store.products import read_product
from tests.factories import reduced_night

SCALE = 0.1


def _config(truth: dict[str, Any]) -> str:
    # The built-in profile is for the full 3520 x 4656 readout; at a test scale the
    # full readout is the simulated shape, so the subarray frame is placed in it.
    rows, cols = truth["shape"]
    return f"[instruments.zwo_asi1600_nina]\nfull_shape = [{rows}, {cols}]\n"


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("asi1600") / "sim"
    simulate_night(where, camera="cmos", scale=SCALE, seed=3, n_bias=15, n_dark=5, n_flat=7)
    return where


@pytest.fixture(scope="module")
def truth(raw: Path) -> dict[str, Any]:
    return json.loads((raw / "truth.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def arrays(raw: Path) -> dict[str, np.ndarray]:
    with np.load(raw / "truth.npz") as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="module")
def night(raw: Path, truth: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
          ) -> Settings:
    folder = tmp_path_factory.mktemp("asi1600-night")
    (folder / "nightlog.toml").write_text(_config(truth), encoding="utf-8")
    return reduced_night(folder, raw)


def _setting(truth: dict[str, Any], gain: int) -> dict[str, Any]:
    return next(s for s in truth["settings"] if s["gain"] == gain)


def _bias_master(archive: Archive, gain: int) -> Any:
    for row in archive.masters(kind="bias"):
        master = archive.master(int(row["id"]))
        if f"gain_setting={float(gain)}|" in master.record["group_key"] + "|":
            return master
    raise AssertionError(f"no master bias at GAIN {gain}")


def _products(archive: Archive) -> dict[str, Any]:
    """Reduced products by raw file name."""
    out = {}
    for row in archive.products():
        product = archive.product(int(row["id"]))
        frame = archive.frames()[archive.frames()["id"] == int(row["frame_id"])][0]
        out[Path(str(frame["path"])).name] = product
    return out


@pytest.mark.parametrize("gain", [0, 139])
def test_the_gain_is_recovered_from_the_flats_within_5_percent(
        night: Settings, truth: dict[str, Any], gain: int) -> None:
    want = _setting(truth, gain)["e_per_file_adu"]
    with Archive(night) as archive:
        flats = [archive.master(int(r["id"])) for r in archive.masters(kind="flat")]
    measured = [m.record["stats"]["gain_from_flats"] for m in flats
                if f"gain_setting={float(gain)}|" in m.record["group_key"]]
    assert len(measured) == 1
    # The photon transfer of the flats, not the profile's table: it is what confirms
    # that EGAIN counts native 12-bit ADU (EGAIN / 16 per stored ADU).
    assert measured[0] == pytest.approx(want, rel=0.05)


@pytest.mark.parametrize("gain", [139, 0])
def test_the_read_noise_map_recovers_the_read_noise(
        night: Settings, truth: dict[str, Any], arrays: dict[str, np.ndarray],
        gain: int) -> None:
    """The median of the master bias's per-pixel read noise (quantisation taken out)
    against the truth's per-pixel read noise, within 5 %. At GAIN 0 the read noise
    (11.6 stored ADU, 0.73 of the 16-ADU step) is where Sheppard's step²/12 is still
    the rounding's variance (from 0.4 step; ``tests/test_quantisation.py``); the
    median of a variance of 15 values lies 2.5 % below its mean in sigma. The root
    mean square of the map over the pixels that are not telegraph pixels is the
    truth's within 2.5 %."""
    setting = _setting(truth, gain)
    with Archive(night) as archive:
        master = _bias_master(archive, gain)
    noise_map = read_product(master.path).read_noise
    assert noise_map is not None
    truth_map = arrays[setting["read_noise_key"]] / setting["e_per_file_adu"]
    assert float(np.median(noise_map)) == pytest.approx(float(np.median(truth_map)), rel=0.05)
    quiet = np.ones(truth_map.size, dtype=bool)
    quiet[arrays["high_noise_pixels"].astype(np.int64)] = False
    quiet = quiet.reshape(truth_map.shape) & np.isfinite(noise_map)
    rms = float(np.sqrt(np.mean(noise_map[quiet].astype(np.float64) ** 2)))
    assert rms == pytest.approx(float(np.sqrt(np.mean(truth_map[quiet] ** 2))), rel=0.025)


def _robust_std(values: np.ndarray) -> float:
    values = values[np.isfinite(values)]
    return float(1.4826 * np.median(np.abs(values - np.median(values))))


def _long_full_frame(truth: dict[str, Any]) -> dict[str, Any]:
    main = truth["settings"][truth["main_setting"]]
    return next(f for f in truth["files"] if f["kind"] == "science" and f["window"] is None
                and f["gain_setting"] == main["gain"])


def test_the_glow_corner_of_a_long_frame_is_flat_within_1_sigma(
        night: Settings, truth: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Glow residual: the median of the reduced frame over the glow corner (where the
    truth's glow template is above 1/e of its peak) minus the median sky of the
    glow-free frame (template below 1e-4 of its peak); sigma is the robust standard
    deviation (1.4826 MAD) of the reduced glow-free sky pixels."""
    entry = _long_full_frame(truth)
    with Archive(night) as archive:
        product = _products(archive)[entry["name"]]
    data = read_product(product.path).ccd.data
    template = arrays["glow_template"] / float(arrays["glow_template"].max())
    corner, clear = template > np.exp(-1.0), template < 1e-4
    assert corner.sum() > 50 and clear.sum() > 0.5 * template.size
    sky = float(np.median(data[clear]))
    sigma = _robust_std(data[clear])
    residual = float(np.median(data[corner])) - sky
    # The glow was there to take out: at its peak many times the noise.
    glow_adu = entry["glow_corner_e"] / truth["settings"][truth["main_setting"]]["e_per_file_adu"]
    assert glow_adu > 2 * sigma
    assert abs(residual) < sigma


def test_the_subarray_frame_is_reduced_as_well_as_a_full_frame(
        night: Settings, truth: dict[str, Any]) -> None:
    """Sky scatter over the noise floor (robust std of the pixels / median of the
    product's uncertainty) of the window within 5 % of a full frame's, and its bit
    plane from the masters equal to the full frame's over the same pixels."""
    sub = truth["subarray"]
    full = _long_full_frame(truth)
    with Archive(night) as archive:
        products = _products(archive)
        window, whole = products[sub["file"]], products[full["name"]]
    a, b = read_product(window.path).ccd, read_product(whole.path).ccd
    assert a.data.shape == (sub["ny"], sub["nx"])
    region = (slice(sub["y0"], sub["y0"] + sub["ny"]), slice(sub["x0"], sub["x0"] + sub["nx"]))
    ratio_window = _robust_std(a.data) / float(np.median(a.uncertainty.array))
    ratio_full = _robust_std(b.data[region]) / float(np.median(b.uncertainty.array[region]))
    assert ratio_window == pytest.approx(ratio_full, rel=0.05)
    assert ratio_window == pytest.approx(1.0, rel=0.1)
    from_masters = int(MaskBit.HOT | MaskBit.DEAD | MaskBit.NOISY)
    assert a.flags is not None and b.flags is not None
    assert np.array_equal(a.flags & from_masters, b.flags[region] & from_masters)
    with fits.open(window.path) as hdus:
        assert hdus[0].header["NLCROP"] == "bias,dark,flat"


def test_every_frame_gets_masters_of_its_own_gain_setting_and_offset(
        night: Settings, truth: dict[str, Any]) -> None:
    by_name = {f["name"]: f for f in truth["files"]}
    with Archive(night) as archive:
        products = _products(archive)
        assert len(products) == sum(f["kind"] == "science" for f in truth["files"])
        for name, product in products.items():
            header = fits.getheader(product.path)
            want = (f"gain_setting={float(by_name[name]['gain_setting'])}|"
                    f"offset={float(by_name[name]['offset_setting'])}")
            used = [header[k] for k in ("NLBIAS", "NLDARK", "NLDARK2", "NLFLAT") if k in header]
            assert len(used) >= 3, name
            for master_id in used:
                assert want in archive.master(int(master_id)).record["group_key"] + "|"


def test_telegraph_pixels_are_noisy_and_never_cosmic_rays(
        night: Settings, truth: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Every truth telegraph pixel whose total noise is clearly (20 %) above the NOISY
    threshold (3 x the median read noise) is NOISY; none is a cosmic ray."""
    main = truth["settings"][truth["main_setting"]]
    shape = tuple(truth["shape"])
    pixels = np.unravel_index(arrays["high_noise_pixels"].astype(np.int64), shape)
    total = arrays[main["total_noise_key"]][pixels]
    loud = total > 1.2 * 3.0 * float(np.median(arrays[main["read_noise_key"]]))
    assert loud.sum() > 20
    entry = _long_full_frame(truth)
    with Archive(night) as archive:
        flags = read_product(_products(archive)[entry["name"]].path).ccd.flags
    assert flags is not None
    bits = flags[pixels]
    assert np.all(bits[loud] & MaskBit.NOISY)
    assert not np.any(bits & MaskBit.COSMIC_RAY)


def test_noisy_finds_the_telegraph_pixels_the_stack_can_tell_and_few_others(
        night: Settings, truth: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Completeness and false rate of NOISY on the master bias of each gain setting,
    against the simulator's telegraph pixels (492 of 164 032). At gain 139 the
    variance rule (3 x the median read noise) finds three quarters of them; the rest
    jump by 3.5-6 times their read noise, and over 15 biases their spread is that of
    a Gaussian pixel at the top of the sensor's 20 % read-noise spread (the
    distribution's excess kurtosis over 15 values separates them little better:
    docs/reduction.md). At gain 0 the same electrons are a smaller step against
    the read noise and the rounding: a fifth are found. Never more than 5 others."""
    shape = tuple(truth["shape"])
    telegraph = np.zeros(int(np.prod(shape)), dtype=bool)
    telegraph[arrays["high_noise_pixels"].astype(np.int64)] = True
    telegraph = telegraph.reshape(shape)
    found = {}
    with Archive(night) as archive:
        for gain in (0, 139):
            flags = read_product(_bias_master(archive, gain).path).ccd.flags
            assert flags is not None
            noisy = (flags & MaskBit.NOISY) != 0
            found[gain] = (np.count_nonzero(noisy & telegraph) / telegraph.sum(),
                           int(np.count_nonzero(noisy & ~telegraph)))
    assert found[139][0] > 0.70 and found[0][0] > 0.15
    assert found[139][1] <= 5 and found[0][1] <= 5


#: A user profile for the camera that reads the settings but forgets to name them
#: in ``calibration_keys``: they are grouping fields all the same.
_FORGETFUL = """
[instruments.asi1600_forgetful]
match = { INSTRUME = "ZWO ASI1600MM Pro" }
priority = 1
gain_setting_keywords = ["GAIN"]
offset_keywords = ["OFFSET"]
gain_keywords = ["EGAIN"]
gain_table = { "0" = 0.309375, "139" = 0.0624432 }
bit_depth = 12
overscan = ""
read_noise_map = true
dark_scaling = "interpolate"
"""


def test_a_profile_reading_settings_always_groups_by_them() -> None:
    import tomllib

    from nightlog.calibration.grouping import group_fields
    from nightlog.header.profiles.registry import ProfileRegistry

    registry = ProfileRegistry.from_settings(tomllib.loads(_FORGETFUL)["instruments"])
    profile = registry.get("asi1600_forgetful")
    assert "gain_setting" not in profile.calibration_keys["bias"]
    for kind in ("bias", "dark", "flat"):
        assert {"gain_setting", "offset"} <= set(group_fields(profile, kind))
    assert "gain_setting" not in group_fields(registry.get("lfc"), "bias")


@pytest.mark.parametrize("extra", ["", _FORGETFUL], ids=["builtin", "forgetful"])
def test_a_frame_with_only_masters_of_another_setting_gets_none(
        raw: Path, truth: dict[str, Any], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, extra: str) -> None:
    """Only the GAIN 139 calibrations are there: a GAIN 0 light gets no master, and
    ``nightlog match`` shows the gain setting and offset rules failing (also under a
    profile whose ``calibration_keys`` do not name them)."""
    only = tmp_path / "only139"
    only.mkdir()
    for f in truth["files"]:
        if f["kind"] == "science" or f["gain_setting"] == 139:
            shutil.copy2(raw / f["name"], only / f["name"])
    folder = tmp_path / "night"
    folder.mkdir()
    (folder / "nightlog.toml").write_text(_config(truth) + extra, encoding="utf-8")
    settings = reduced_night(folder, only)
    light = next(f for f in truth["files"] if f["kind"] == "science" and f["gain_setting"] == 0)
    with Archive(settings) as archive:
        frames = archive.frames(kind="science")
        frame_id = next(int(r["id"]) for r in frames if Path(str(r["path"])).name == light["name"])
        report = archive.match(frame_id)
    for kind in ("bias", "dark", "flat"):
        entry = next(m for m in report.matches if m["kind"] == kind)
        assert entry["chosen"] is None and entry["candidates"], kind
    monkeypatch.chdir(folder)
    result = CliRunner().invoke(app, ["match", str(frame_id)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    out = result.output.splitlines()
    for kind in ("bias", "dark", "flat"):
        summary = next(line for line in out if line.startswith(f"{kind}: "))
        assert summary.startswith(f"{kind}: none (no usable {kind} master"), summary
        assert "failed group.gain_setting" in summary and "group.offset" in summary
    rows = [line for line in out if "│ group.gain_setting" in line or "│ group.offset" in line]
    assert rows and all("FAIL" in line for line in rows)


@pytest.fixture(scope="module")
def embedded(raw: Path, truth: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
             ) -> tuple[Settings, str]:
    """The night plus one full frame whose pixels over the window are the subarray
    frame's raw pixels (elsewhere a full 120 s frame's), written with that full
    frame's header: the window and that region are then the same raw pixels."""
    sub = truth["subarray"]
    full = _long_full_frame(truth)
    where = tmp_path_factory.mktemp("asi1600-embedded")
    night_raw = where / "raw-in"
    shutil.copytree(raw, night_raw)
    with fits.open(raw / full["name"]) as hdus:
        header = hdus[0].header.copy()
        data = hdus[0].data.astype(np.int32)
    window = fits.getdata(raw / sub["file"]).astype(np.int32)
    data[sub["y0"]:sub["y0"] + sub["ny"], sub["x0"]:sub["x0"] + sub["nx"]] = window
    header["DATE-OBS"] = fits.getheader(raw / sub["file"])["DATE-OBS"]
    name = "embedded_window.fits"
    fits.PrimaryHDU(data.astype(np.uint16), header=header).writeto(night_raw / name)
    folder = where / "night"
    folder.mkdir()
    (folder / "nightlog.toml").write_text(_config(truth), encoding="utf-8")
    return reduced_night(folder, night_raw), name


def test_the_window_equals_the_same_pixels_of_a_full_frame(
        embedded: tuple[Settings, str], truth: dict[str, Any]) -> None:
    """Reduced from the same masters, the window's pixels equal the full frame's over
    the same region (to float32 rounding), but where cosmic-ray detection differs:
    pixels flagged COSMIC_RAY in either, and a 5-pixel border of the window, where
    the detection sees different neighbours."""
    settings, name = embedded
    sub = truth["subarray"]
    with Archive(settings) as archive:
        products = _products(archive)
        a = read_product(products[sub["file"]].path)
        b = read_product(products[name].path)
    ha, hb = a.ccd.header, b.ccd.header
    for key in ("NLBIAS", "NLDARK", "NLFLAT"):
        assert ha[key] == hb[key]
    region = (slice(sub["y0"], sub["y0"] + sub["ny"]), slice(sub["x0"], sub["x0"] + sub["nx"]))
    wa, wb = a.ccd.data, b.ccd.data[region]
    assert a.ccd.flags is not None and b.ccd.flags is not None
    fa, fb = a.ccd.flags, b.ccd.flags[region]
    keep = ~((fa | fb) & MaskBit.COSMIC_RAY).astype(bool)
    keep[:5], keep[-5:], keep[:, :5], keep[:, -5:] = False, False, False, False
    assert keep.mean() > 0.9
    np.testing.assert_allclose(wa[keep], wb[keep], rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(a.ccd.uncertainty.array[keep],
                               b.ccd.uncertainty.array[region][keep], rtol=1e-5)
    others = fa.dtype.type(np.iinfo(fa.dtype).max ^ int(MaskBit.COSMIC_RAY))
    assert np.array_equal(fa[keep] & others, fb[keep] & others)
