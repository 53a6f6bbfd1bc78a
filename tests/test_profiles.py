"""Instrument profiles: built-ins, user tables, merging, matching and validation."""

from __future__ import annotations

import re
import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nightlog.errors import ProfileError, SectionError
from nightlog.header.model import Site
from nightlog.header.profiles import (
    KNOWN_KEYS,
    InstrumentProfile,
    ProfileRegistry,
    builtin_profile_names,
)

ROOT = Path(__file__).resolve().parents[1]
LFC = {"INSTRUME": "LFC     ", "DETECTOR": "SITe SI002 x 6"}
ASPEN = {"INSTRUME": "AspenCG16"}


def registry(toml: str = "") -> ProfileRegistry:
    tables: dict[str, Any] = tomllib.loads(toml).get("instruments", {}) if toml else {}
    return ProfileRegistry.from_settings(tables)


def test_builtins_are_shipped_and_loaded() -> None:
    names = ["aspen", "generic", "lco_sinistro", "lfc", "mosaic_2x2", "zwo_asi1600_nina",
             "zwo_nina"]
    assert builtin_profile_names() == names
    reg = registry()
    assert reg.names == names
    lfc = reg.get("lfc")
    assert lfc.site == Site(longitude_deg=-116.8647, timezone="America/Los_Angeles",
                            name="Palomar Observatory")
    assert lfc.overscan == "BIASSEC" and lfc.overscan_skip_columns == 7
    assert lfc.subtract_overscan and lfc.darks_scale
    assert lfc.gain == 2.37 and lfc.read_noise == 12.98
    aspen = reg.get("aspen")
    assert aspen.full_shape == (4096, 4109)
    assert aspen.overscan == "[4097:4109,1:4096]" and not aspen.subtract_overscan
    assert aspen.lenient_sections


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(ProfileError, match=r"'nope'.*aspen, generic, lco_sinistro, lfc"):
        registry().get("nope")


def test_none_and_empty_settings_give_the_builtins() -> None:
    assert ProfileRegistry.from_settings(None).names == ProfileRegistry.from_settings({}).names


@pytest.mark.parametrize(("header", "expected"), [
    (LFC, "lfc"),
    ({"INSTRUME": "  lfc "}, "lfc"),  # stripped, case-insensitive
    (ASPEN, "aspen"),
    ({"INSTRUME": "Apogee Aspen CG16M"}, "aspen"),
    ({"instrume": "aspencg16"}, "aspen"),  # a dict with lower-case keys
    ({"INSTRUME": "Apogee Alta"}, "generic"),
    ({"INSTRUME": "LFC2"}, "generic"),  # exact rules are not prefixes
    ({}, "generic"),
])
def test_builtin_matching(header: dict[str, Any], expected: str) -> None:
    assert registry().match(header).name == expected


TWO_LFC_VARIANTS = """
[instruments.lfc_chip0]
extends = "lfc"
match = { INSTRUME = "LFC", CHIPID = "0" }
[instruments.lfc_any]
extends = "lfc"
match_regex = { INSTRUME = "^LFC" }
"""


def test_more_rules_win_and_exact_beats_regex() -> None:
    reg = registry(TWO_LFC_VARIANTS)
    assert reg.match({**LFC, "CHIPID": 0}).name == "lfc_chip0"  # numbers compare as text
    assert reg.match({**LFC, "CHIPID": 3}).name == "lfc"  # exact beats regex at one rule
    assert reg.match({"INSTRUME": "LFC-north"}).name == "lfc_any"


def test_priority_beats_specificity_and_ties_go_by_name() -> None:
    reg = registry(TWO_LFC_VARIANTS + 'priority = 5\n')  # lands in lfc_any
    assert reg.match({**LFC, "CHIPID": 0}).name == "lfc_any"
    tie = registry("""
[instruments.zeta]
match = { TELESCOP = "T1" }
[instruments.alpha]
match = { TELESCOP = "T1" }
""")
    assert tie.match({"TELESCOP": "T1"}).name == "alpha"


def test_a_profile_without_rules_is_never_matched() -> None:
    reg = registry('[instruments.quiet]\ndescription = "named explicitly only"\n')
    assert reg.match({"INSTRUME": "anything"}).name == "generic"
    assert reg.get("quiet").match == ()


def test_user_table_is_merged_over_the_builtin() -> None:
    reg = registry("""
[instruments.lfc]
gain = 2.5
min_frames = { flat = 7 }
frame_types = { flat = ["FLATFIELD", "DOMEFLAT"] }
""")
    lfc = reg.get("lfc")
    assert lfc.gain == 2.5  # replaced
    assert lfc.read_noise == 12.98 and lfc.overscan_skip_columns == 7  # kept
    assert reg.match(LFC).name == "lfc"  # match rules kept
    assert dict(lfc.min_frames) == {"bias": 5, "dark": 5, "flat": 7}  # merged per kind
    assert lfc.frame_types["flat"] == ("FLATFIELD", "DOMEFLAT")
    assert lfc.frame_types["bias"][0] == "BIAS"


def test_extends_inherits_everything_but_identity() -> None:
    reg = registry("""
[instruments.lfc_binned]
extends = "lfc"
match = { INSTRUME = "LFC", CCDBIN1 = "2" }
full_shape = [2064, 1040]
""")
    child = reg.get("lfc_binned")
    assert child.extends == "lfc" and child.description == ""
    assert child.site == reg.get("lfc").site and child.overscan_skip_columns == 7
    assert child.full_shape == (2064, 1040)
    assert reg.match({**LFC, "CCDBIN1": 2}).name == "lfc_binned"


def test_extends_must_name_a_profile_and_not_loop() -> None:
    with pytest.raises(ProfileError, match=r"'mine'.*'extends'.*'lfcc'"):
        registry('[instruments.mine]\nextends = "lfcc"\n')
    with pytest.raises(ProfileError, match="loop"):
        registry('[instruments.a]\nextends = "b"\n[instruments.b]\nextends = "a"\n')


def test_unknown_key_is_an_error_listing_the_known_keys() -> None:
    with pytest.raises(ProfileError) as info:
        registry('[instruments.mine]\nfilter_keyword = ["FILTER"]\n')
    message = str(info.value)
    assert "'mine'" in message and "filter_keyword" in message
    assert "filter_keywords" in message and "overscan_skip_columns" in message


@pytest.mark.parametrize(("toml", "fragment"), [
    ('site = { timezone = "Mars/Base" }', "site.timezone"),
    ("site = { longitude = 500.0 }", "site.longitude"),
    ("site = { altitude = 1.0 }", "altitude"),
    ("site = { timezon = \"UTC\" }", "did you mean 'timezone'"),
    ("site = { name = \"dome\" }", "give a longitude"),
    ("site = { longitude = 10.0, latitude = -91.0 }", "site.latitude"),
    ('match_regex = { INSTRUME = "([" }', "bad regular expression"),
    ('overscan = "[10:1,1:"', "overscan"),
    ('flat_scale_region = "CENTER"', "flat_scale_region"),
    ("gain = -1.0", "gain"),
    ("gain = true", "gain"),
    ("min_frames = { bias = 0 }", "min_frames.bias"),
    ('frame_types = { arc = ["ARC"] }', "unknown frame kind 'arc'"),
    ('calibration_keys = { flat = ["filtre"] }', "unknown field 'filtre'"),
    ('setup_keys = ["instrument", "airmass"]', "unknown field 'airmass'"),
    ('exptime_keywords = ["EXP TIME"]', "not a FITS keyword"),
    ('type_keywords = "IMAGETYP"', "list of keyword names"),
    ('date_formats = ["mm/dd/yy"]', "unknown date format"),
    ("binning_keywords = [[\"A\", \"B\", \"C\"]]", "binning_keywords"),
    ("flat_scale_fraction = 0.0", "flat_scale_fraction"),
    ('full_shape = [100, 100]\noverscan = "[101:110,1:100]"', "full_shape"),
    ("full_shape = [100]", "full_shape"),
    ("lenient_sections = 1", "lenient_sections"),
])
def test_bad_values_name_the_profile_and_the_key(toml: str, fragment: str) -> None:
    with pytest.raises(ProfileError, match=re.escape(fragment)) as info:
        registry(f"[instruments.cam]\nmatch = {{ INSTRUME = \"X\" }}\n{toml}\n")
    assert "'cam'" in str(info.value)


def test_bad_profile_name_and_non_table() -> None:
    with pytest.raises(ProfileError, match="profile name"):
        ProfileRegistry.from_settings({"my cam": {}})
    with pytest.raises(ProfileError, match="must be a table"):
        ProfileRegistry.from_settings({"cam": "LFC"})  # type: ignore[dict-item]


def test_every_key_is_documented() -> None:
    doc = (ROOT / "docs" / "profiles.md").read_text(encoding="utf-8")
    missing = [key for key in KNOWN_KEYS if f"`{key}`" not in doc]
    assert not missing, f"keys missing from docs/profiles.md: {missing}"


def test_builtin_files_use_only_known_keys() -> None:
    folder = ROOT / "nightlog" / "header" / "profiles" / "builtin"
    for path in folder.glob("*.toml"):
        assert set(tomllib.loads(path.read_text(encoding="utf-8"))) <= set(KNOWN_KEYS), path


@pytest.mark.parametrize(("kind", "words"), [
    ("bias", ["BIAS", "zero", "Bias Frame", "BIAS_FRAME", " bias "]),
    ("dark", ["DARK", "Dark Frame", "dark-frame"]),
    ("flat", ["FLAT", "FLATFIELD", "Flat Field", "SKYFLAT", "DomeFlat", "TWIFLAT"]),
    ("science", ["OBJECT", "LIGHT", "Light Frame", "SCIENCE"]),
    ("unknown", ["ARC", "FOCUS", "", "BIASED"]),
])
def test_generic_vocabulary(kind: str, words: list[str]) -> None:
    generic = registry().get("generic")
    for word in words:
        assert generic.classify(word or None) == kind, word


def test_lfc_usable_overscan_follows_the_lecture() -> None:
    # The usable LFC overscan is numpy [:, 2055:] (FITS columns 2056-2080).
    lfc = registry().get("lfc")
    rows, cols = lfc.usable_overscan("[2049:2080,1:4127]", (4128, 2080))
    image = np.arange(4128 * 2080).reshape(4128, 2080)
    np.testing.assert_array_equal(image[rows, cols], image[:4127, 2055:])


def test_usable_overscan_before_the_data_and_too_narrow() -> None:
    lfc = registry().get("lfc")
    _rows, cols = lfc.usable_overscan("[1:20,1:100]", (100, 120))
    assert (cols.start, cols.stop) == (0, 13)
    with pytest.raises(SectionError, match="skips 7"):
        lfc.usable_overscan("[115:120,1:100]", (100, 120))
    with pytest.raises(SectionError, match="backwards"):
        lfc.usable_overscan("[120:101,1:100]", (100, 120))


@given(st.integers(1, 5000), st.integers(1, 5000))
def test_flat_scale_region_is_central_and_inside(ny: int, nx: int) -> None:
    rows, cols = registry().get("generic").flat_scale_slices((ny, nx))
    for s, size in ((rows, ny), (cols, nx)):
        assert 0 <= s.start < s.stop <= size
        # Central: equal margins, within one pixel.
        assert abs(s.start - (size - s.stop)) <= 1
        assert s.stop - s.start == max(1, round(size * 0.5))


def test_flat_scale_region_literal() -> None:
    reg = registry('[instruments.cam]\nflat_scale_region = "[11:20,1:5]"\n')
    assert reg.get("cam").flat_scale_slices((50, 50)) == (slice(0, 5), slice(10, 20))


def test_every_profile_field_has_a_table_key() -> None:
    # `gain_measured` is set by `gain = "measured"`.
    settable = {f.name for f in fields(InstrumentProfile)} - {"name", "gain_measured"}
    # `match` holds the rules of both `match` and `match_regex`.
    assert settable <= set(KNOWN_KEYS)
    assert set(KNOWN_KEYS) - settable == {"match_regex"}


def test_a_gain_to_be_measured_is_said_in_words() -> None:
    reg = registry('[instruments.measured]\nextends = "lfc"\ngain = "measured"\n'
                   '[instruments.given]\nextends = "measured"\ngain = 2.5\n')
    mine = reg.get("measured")
    assert (mine.gain, mine.gain_measured) == (None, True)
    fixed = reg.get("given")
    assert (fixed.gain, fixed.gain_measured) == (2.5, False)
    assert (reg.get("lfc").gain_measured) is False
    with pytest.raises(ProfileError, match="gain"):
        registry('[instruments.bad]\nextends = "lfc"\ngain = "measure"\n')


def test_bad_pixel_thresholds_are_profile_keys_validated() -> None:
    reg = registry('[instruments.vignetted]\nextends = "lfc"\ndead_low = 0.3\n'
                   'dead_high = 1.8\nlow_response = 0.25\nhot_nsigma = 7\n'
                   '[instruments.plain]\nextends = "lfc"\nlow_response = 0\n')
    mine = reg.get("vignetted")
    assert (mine.dead_low, mine.dead_high, mine.low_response, mine.hot_nsigma) == (
        0.3, 1.8, 0.25, 7.0)
    assert reg.get("plain").low_response is None  # 0 switches the flag off
    lfc = reg.get("lfc")
    assert (lfc.dead_low, lfc.dead_high, lfc.low_response, lfc.hot_nsigma) == (
        0.5, None, 0.5, 5.0)
    for bad in ("dead_low = 1.0", "dead_low = 0", "dead_high = 0.9", "low_response = 1.5",
                "hot_nsigma = -1", 'dead_low = "half"'):
        key = bad.split(" ")[0]
        with pytest.raises(ProfileError, match=key):
            registry(f'[instruments.mine]\nextends = "lfc"\n{bad}\n')
