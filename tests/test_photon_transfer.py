"""Gain by photon transfer over every usable pair of flats: against the simulator's
truth, against flats at several levels whose pairs' levels differ, and with one pair
spoiled (the twilight gradient moved between its two flats)."""

from __future__ import annotations

import functools
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from nightlog.calibration.match_report import explain_match
from nightlog.catalogue.engine import make_sessionmaker
from nightlog.catalogue.models import Master
from nightlog.coordinator.context import JobContext
from nightlog.coordinator.ingest import IngestContext, discover, run_ingest
from nightlog.coordinator.masters import run_build
from nightlog.coordinator.reduce import science_frames
from nightlog.errors import ReductionError
from nightlog.reduction.masters import make_master_bias
from nightlog.reduction.photon_transfer import gain_from_photon_transfer
from nightlog.reduction.preparation import Preparation
from nightlog.settings import load_settings
from nightlog.simulate import load_truth
from nightlog.store.images import FrameFile, read_image

GAIN = 2.0         # e-/ADU
READ_NOISE = 11.0  # e-
SHAPE = (300, 300)


class Chip:
    """Seeded: a fixed bias pattern, a 1 % pixel response, Poisson electrons, read noise."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        pattern = np.random.default_rng(77)
        self.bias = 1000.0 + pattern.normal(0.0, 2.0, SHAPE)
        self.response = pattern.normal(1.0, 0.01, SHAPE)

    def flat(self, electrons: float, gradient: float = 0.0) -> np.ndarray:
        ramp = 1.0 + gradient * np.linspace(-1.0, 1.0, SHAPE[1])[None, :]
        collected = self.rng.poisson(electrons * self.response * ramp)
        return self.bias + (collected + self.rng.normal(0.0, READ_NOISE, SHAPE)) / GAIN


def _lecture_gain(f1: np.ndarray, f2: np.ndarray, bias: np.ndarray) -> float:
    """The lecture's quick formula, G = (S1 + S2) / (var(f1 - f2) - 2 RN²), by hand."""
    s1, s2 = f1 - bias, f2 - bias
    shot = np.var(s1 - s2) - 2.0 * (READ_NOISE / GAIN) ** 2
    return float((s1.mean() + s2.mean()) / shot)


def _flats_at_several_levels(chip: Chip) -> list[np.ndarray]:
    # Four pairs from 5 000 to 60 000 e-; in each pair the second flat is 8-12 %
    # fainter (a fading twilight sky), in a shuffled order.
    levels = [5_000, 4_500, 20_000, 18_000, 40_000, 36_400, 60_000, 53_000]
    return [chip.flat(e) for e in levels]


def test_the_gain_of_flats_whose_levels_differ_is_within_one_percent() -> None:
    chip = Chip(1)
    flats = _flats_at_several_levels(chip)
    ptc = gain_from_photon_transfer(flats, master_bias=chip.bias,
                                    read_noise_adu=READ_NOISE / GAIN)
    assert ptc.n_used == 4 and len(ptc.pairs) == 4
    assert ptc.gain == pytest.approx(GAIN, rel=0.01)
    # The stated error is honest: the truth within three of it, and it is small.
    assert abs(ptc.gain - GAIN) < 3 * ptc.gain_err < 0.01 * GAIN
    # Each pair alone is within 1 % too, while the lecture's quick formula on the
    # brightest pair, blind to the pixel response left by its 12 % level
    # difference, comes out 4 % low.
    for pair in ptc.pairs:
        assert pair.gain == pytest.approx(GAIN, rel=0.01)
    quick = _lecture_gain(flats[6], flats[7], chip.bias)
    assert quick < 0.97 * GAIN


def test_a_spoiled_pair_is_left_out_of_the_fit() -> None:
    chip = Chip(2)
    flats = _flats_at_several_levels(chip)
    # The twilight gradient changed between the two flats of the 20 000 e- pair.
    flats[3] = chip.flat(18_000, gradient=0.05)
    ptc = gain_from_photon_transfer(flats, master_bias=chip.bias,
                                    read_noise_adu=READ_NOISE / GAIN)
    (spoiled,) = [p for p in ptc.pairs if not p.used]
    assert {spoiled.first, spoiled.second} == {2, 3}
    assert spoiled.gain < 0.9 * GAIN
    assert ptc.gain == pytest.approx(GAIN, rel=0.01)
    assert ptc.stats()["gain_ptc_rejected"] == 1 and ptc.stats()["gain_ptc_pairs"] == 3


def test_flats_far_apart_in_level_are_not_paired() -> None:
    chip = Chip(3)
    flats = [chip.flat(5_000), chip.flat(20_000), chip.flat(21_000), chip.flat(60_000)]
    ptc = gain_from_photon_transfer(flats, master_bias=chip.bias,
                                    read_noise_adu=READ_NOISE / GAIN)
    assert [(p.first, p.second) for p in ptc.pairs] == [(1, 2)]
    # One pair: the error is that of a variance of 90 000 pixels, sqrt(2/n), the
    # read-noise share of the variance included (about 1 % of it here).
    assert ptc.gain_err == pytest.approx(GAIN * math.sqrt(2 / 90_000), rel=0.03)
    with pytest.raises(ReductionError, match="within 20%"):
        gain_from_photon_transfer([flats[0], flats[3]], master_bias=chip.bias,
                                  read_noise_adu=READ_NOISE / GAIN)
    with pytest.raises(ReductionError, match="at least two"):
        gain_from_photon_transfer(flats[:1], master_bias=chip.bias, read_noise_adu=5.5)


@functools.cache
def _permuted() -> tuple[Chip, list[np.ndarray]]:
    chip = Chip(5)
    return chip, _flats_at_several_levels(chip)


@settings(max_examples=15, deadline=None)
@given(order=st.permutations(range(8)))
def test_the_order_of_the_flats_does_not_matter(order: list[int]) -> None:
    chip, originals = _permuted()
    flats = [originals[i] for i in order]
    ptc = gain_from_photon_transfer(flats, master_bias=chip.bias,
                                    read_noise_adu=READ_NOISE / GAIN)
    reference = gain_from_photon_transfer(originals, master_bias=chip.bias,
                                          read_noise_adu=READ_NOISE / GAIN)
    assert ptc.gain == pytest.approx(reference.gain, rel=1e-9)
    # Each pair joins flats of one level, whatever the order they came in.
    for pair in ptc.pairs:
        assert {order[pair.first] // 2, order[pair.second] // 2} == {order[pair.first] // 2}


def test_inputs_are_left_untouched() -> None:
    chip = Chip(4)
    flats = [chip.flat(20_000), chip.flat(19_000)]
    copies = [f.copy() for f in flats]
    gain_from_photon_transfer(flats, master_bias=chip.bias, read_noise_adu=5.5)
    for f, c in zip(flats, copies, strict=True):
        np.testing.assert_array_equal(f, c)


def test_the_simulated_night_gives_the_truths_gain_within_one_percent(lfc_night: Path
                                                                      ) -> None:
    s = load_truth(lfc_night).summary
    files = s["files"]
    biases = [lfc_night / f["name"] for f in files if f["kind"] == "bias"]
    prep = Preparation(overscan=None, skip_columns=0,
                       trim=fits.getheader(biases[0])["DATASEC"])
    master = make_master_bias([FrameFile(str(b)) for b in biases], prepare=prep).ccd
    for band in sorted({f["filter"] for f in files if f["kind"] == "flat"}):
        flats = [prep(read_image(lfc_night / f["name"])) for f in files
                 if f["kind"] == "flat" and f["filter"] == band]
        ptc = gain_from_photon_transfer(
            flats, master_bias=master, read_noise_adu=s["read_noise_adu"],
            master_bias_noise_adu=s["read_noise_adu"] / math.sqrt(len(biases)))
        assert ptc.n_used == 2, band
        assert ptc.gain == pytest.approx(s["gain_e_per_adu"], rel=0.01), band


@pytest.fixture(scope="module")
def aspen_night(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A night of the Aspen camera, whose first twilight flats of the night fade by
    about 5 % from one to the next (auto-exposure at its shortest time)."""
    from nightlog.simulate import simulate_night

    out = tmp_path_factory.mktemp("aspen") / "raw"
    simulate_night(out, camera="aspen", scale=0.1, seed=3, n_bias=5, n_dark=0, n_flat=8,
                   n_science=0)
    return out


def test_fading_twilight_flats_give_the_truths_gain_within_one_percent(
        aspen_night: Path) -> None:
    s = load_truth(aspen_night).summary
    files = s["files"]
    biases = [aspen_night / f["name"] for f in files if f["kind"] == "bias"]
    header = fits.getheader(biases[0])
    # The image area: the columns before the overscan (BIASSEC [410:414]).
    prep = Preparation(overscan=None, skip_columns=0, trim=f"[1:409,1:{header['NAXIS2']}]")
    master = make_master_bias([FrameFile(str(b)) for b in biases], prepare=prep).ccd
    flats = [f for f in files if f["kind"] == "flat" and f["filter"] == "r"]
    signal = [f["signal_e"] for f in flats]
    assert max(signal) > 1.2 * min(signal)  # the levels do differ
    ptc = gain_from_photon_transfer(
        [prep(read_image(aspen_night / f["name"])) for f in flats], master_bias=master,
        read_noise_adu=s["read_noise_adu"],
        master_bias_noise_adu=s["read_noise_adu"] / math.sqrt(len(biases)))
    assert ptc.n_used == 4
    assert max(p.level1 / p.level2 for p in ptc.pairs) > 1.04  # pairs 4-5 % apart
    assert ptc.gain == pytest.approx(s["gain_e_per_adu"], rel=0.01)
    assert abs(ptc.gain - s["gain_e_per_adu"]) < 3 * ptc.gain_err


# The LFC described with its gain to be measured (the read noise comes from the
# master bias: the LFC writes no RDNOISE).
PROFILE = """
[instruments.lfc_measured]
priority = 10
match = { INSTRUME = "LFC" }
type_keywords = ["IMAGETYP"]
date_keywords = ["DATE-OBS"]
time_keywords = ["UT"]
jd_keywords = ["JD"]
binning_keywords = [["CCDBIN1", "CCDBIN2"]]
site = { timezone = "America/Los_Angeles", longitude = -116.8647 }
gain = "measured"
saturation = 65535.0
overscan = "BIASSEC"
overscan_skip_columns = 7
subtract_overscan = true
trim = "DATASEC"
file_patterns = ["ccd.*.fits"]
"""


@pytest.fixture
def measured_gain(catalogue_engine: Engine, lfc_night: Path, tmp_path: Path
                  ) -> tuple[Engine, JobContext, Path]:
    raw = tmp_path / "raw"
    shutil.copytree(lfc_night, raw)
    (tmp_path / "nightlog.toml").write_text(PROFILE, encoding="utf-8")
    settings = load_settings(env={}, cwd=tmp_path)
    run_ingest(catalogue_engine, discover([raw], settings.ingest.patterns),
               IngestContext.from_settings(settings))
    return catalogue_engine, JobContext.from_settings(settings), raw


def test_each_master_flat_records_its_gain_and_the_reduction_uses_it(
        measured_gain: tuple[Engine, JobContext, Path]) -> None:
    engine, ctx, raw = measured_gain
    truth = load_truth(raw).summary
    run_build(engine, ctx)
    with make_sessionmaker(engine)() as s:
        flats = list(s.scalars(select(Master).where(Master.kind == "flat")))
        assert flats
        for flat in flats:
            assert flat.stats["gain_ptc"] == pytest.approx(truth["gain_e_per_adu"],
                                                           rel=0.01), flat.filter
            assert flat.stats["gain_ptc_pairs"] == 2
            assert flat.stats["gain_ptc_read_noise"] == "master bias"
            assert 0 < flat.stats["gain_ptc_err"] < 0.01 * truth["gain_e_per_adu"]
        report = explain_match(s, ctx, str(science_frames(s)[0]))
        chosen = next(m for m in report.matches if m["kind"] == "flat")["chosen"]
    gain = report.detector["gain"]
    assert chosen is not None
    assert gain == {"value": pytest.approx(truth["gain_e_per_adu"], rel=0.01),
                    "source": f"measured on master {chosen}", "master": chosen}


def test_a_measured_gain_that_is_missing_is_said() -> None:
    from nightlog.calibration.detector_numbers import gain_of
    from nightlog.catalogue.models import Frame
    from nightlog.header.profiles.model import InstrumentProfile

    profile = InstrumentProfile(name="cam", gain_measured=True)
    frame = Frame(gain=1.8, header=[["GAIN", 1.8, ""]])
    flat = Master(id=7, stats={"gain_ptc": 1.62})
    assert gain_of(frame, profile, flat).as_dict() == {
        "value": 1.62, "source": "measured on master 7", "master": 7}
    assert gain_of(frame, profile, Master(id=8, stats={"gain_ptc_error": "too faint"})
                   ).source == "header GAIN; no gain measured on a master flat"
    # Without "measured" the header's gain comes first, the measurement after it.
    plain = InstrumentProfile(name="cam")
    assert gain_of(frame, plain, flat).source == "header GAIN"
    assert gain_of(Frame(gain=None, header=[]), plain, flat).value == 1.62
    assert gain_of(Frame(gain=None, header=[]), plain, None).source == "default: none given"
