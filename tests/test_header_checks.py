"""A header gain or read noise more than 10 % from what the masters measured is a warning
in ``calib build``, ``calib history`` and the night report."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from nightlog.calibration.header_checks import (
    TOLERANCE,
    header_disagreements,
    header_numbers,
)
from nightlog.simulate import load_truth
from tests.factories import archive_cli

CARDS = [["INSTRUME", "LFC", ""], ["GAIN", 1.1, "e-/ADU"], ["RDNOISE", "12.0", "e-"],
         ["EXPTIME", 0.0, ""]]


def test_header_numbers_are_the_first_keyword_with_a_positive_number() -> None:
    got = header_numbers(CARDS, ("EGAIN", "GAIN"), ("RDNOISE",))
    assert got == {"gain": ("GAIN", 1.1), "read_noise": ("RDNOISE", 12.0)}
    assert header_numbers([["GAIN", 0, ""], ["GAIN2", "x", ""]], ("GAIN", "GAIN2"), ()) == {}
    assert header_numbers(None, ("GAIN",), ("RDNOISE",)) == {}


@pytest.mark.parametrize(("measured", "warned"), [(1.1 * 1.09, False), (1.1 / 0.89, True),
                                                  (1.1 * 0.91, False), (1.1 * 0.85, True)])
def test_a_gain_more_than_ten_percent_off_is_a_warning(measured: float, warned: bool) -> None:
    header = {"gain": ("GAIN", 1.1)}
    out = header_disagreements("flat", {"gain_ptc": measured}, header)
    assert bool(out) is warned
    if warned:
        assert out[0]["number"] == "gain" and out[0]["keyword"] == "GAIN"
        assert abs(out[0]["header"] - out[0]["measured"]) / out[0]["measured"] > TOLERANCE
        assert "GAIN = 1.1 e-/ADU" in out[0]["message"]
    # Only a flat measures the gain, only a bias the read noise.
    assert header_disagreements("bias", {"gain_ptc": measured}, header) == []


def test_the_read_noise_is_compared_in_adu_with_the_header_or_profile_gain() -> None:
    header = {"read_noise": ("RDNOISE", 12.0)}
    # 12 e- at 2.0 e-/ADU is 6 ADU: a measured 6.3 ADU agrees, 7 ADU does not.
    assert header_disagreements("bias", {"read_noise_adu": 6.3}, header, 2.0) == []
    (out,) = header_disagreements("bias", {"read_noise_adu": 7.0}, header, 2.0)
    assert out["header"] == pytest.approx(6.0) and out["unit"] == "ADU"
    with_gain = {**header, "gain": ("GAIN", 1.0)}  # the header's own gain first
    assert header_disagreements("bias", {"read_noise_adu": 7.0}, with_gain, 2.0)[0][
        "header"] == pytest.approx(12.0)
    # No gain at all: nothing to compare, nothing said.
    assert header_disagreements("bias", {"read_noise_adu": 7.0}, header, None) == []


def test_a_master_in_electrons_compares_the_read_noise_in_electrons() -> None:
    """A multi-amplifier master is assembled in e-: its read noise is in e- and each
    amplifier's is recorded. The header (one extension's RDNOISE = 7.6 e-, at a gain
    of 2.01 e-/ADU: 3.78 ADU) agrees with amplifiers measured at 7.65 and 7.96 e-;
    comparing its ADU with the master's electrons would say 52 % apart."""
    stats = {"level_unit": "e-", "read_noise_adu": 7.81,
             "amplifiers": [{"name": "SCI,1", "read_noise_e": 7.65},
                            {"name": "SCI,2", "read_noise_e": 7.96}]}
    header = {"read_noise": ("RDNOISE", 7.6), "gain": ("GAIN", 2.01)}
    assert header_disagreements("bias", stats, header, None) == []
    (out,) = header_disagreements("bias", stats, {**header, "read_noise": ("RDNOISE", 5.0)})
    assert out["unit"] == "e-" and out["measured"] == pytest.approx(7.65)
    assert "RDNOISE = 5 e-" in out["message"]
    # Without the amplifiers' figures, the master's own (then in e-) is compared.
    assert header_disagreements("bias", {"level_unit": "e-", "read_noise_adu": 7.81},
                                header) == []


def test_a_gain_per_converter_unit_is_read_per_stored_adu() -> None:
    """A 12-bit CMOS camera shifted to 16 bits (step 16) writes EGAIN = 4.95 e- per
    converter unit: 0.309 e- per stored ADU, which photon transfer measures."""
    header = {"gain": ("EGAIN", 4.95), "read_noise": ("RDNOISE", 3.6)}
    assert header_disagreements("flat", {"gain_ptc": 0.31}, header, step=16.0) == []
    assert header_disagreements("flat", {"gain_ptc": 0.31}, header)  # no step: 16x off
    assert header_disagreements("bias", {"read_noise_adu": 3.6 / 0.309375}, header,
                                step=16.0) == []
    (off,) = header_disagreements("flat", {"gain_ptc": 0.40}, header, step=16.0)
    assert off["header"] == pytest.approx(4.95 / 16)


# The LFC as a site might describe it: the gain measured (its GAIN keyword, 1.1 e-/ADU,
# is what the controller once had; the simulated truth is 2.37).
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


def test_a_wrong_header_gain_is_said_by_build_history_and_report(
        lfc_night: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = tmp_path / "raw"
    shutil.copytree(lfc_night, raw)
    truth = load_truth(raw).summary
    assert truth["header_gain"] == pytest.approx(1.1) and truth["gain_e_per_adu"] > 2
    (tmp_path / "nightlog.toml").write_text(PROFILE, encoding="utf-8")
    run = archive_cli(tmp_path, monkeypatch)
    run("ingest", str(raw))
    built = run("calib", "build")
    warned = [line for line in built.splitlines() if line.startswith("warning:")]
    assert warned and all("flat master" in w and "GAIN = 1.1 e-/ADU" in w for w in warned)
    history = json.loads(run("calib", "history", "--type", "flat", "--format", "json"))
    assert history and all(len(r["warning"]) == 1 for r in history)
    assert all("photon transfer measured 2.3" in r["warning"][0] for r in history)
    table = run("calib", "history", "--type", "flat")
    assert "warning" in table and "GAIN = 1.1" in table
    # The bias agrees with no header: the LFC writes no read noise.
    biases = json.loads(run("calib", "history", "--type", "bias", "--format", "json"))
    assert biases and all(r["warning"] == [] for r in biases)
    page = Path(run("report").strip().splitlines()[-1]).read_text(encoding="utf-8")
    assert page.count("warning: header GAIN = 1.1 e-/ADU") == len(history)
