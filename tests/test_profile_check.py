"""``nightlog profile check``: the profile dry run, and its warnings said once per
instrument by ingest and watch.

The files are the real LFC header (``tests/data/lfc_bias_ccd.001.0.hdr``, written
with its full-size data unit as a sparse file), the real Aspen cut-out, and small
frames written with astropy. What the check says the reduction would apply is
compared with what the reduction's own code gives for the same file once ingested.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from astropy.io import fits
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from nightlog.calibration.detector_numbers import gain_of, read_noise_of
from nightlog.calibration.grouping import group_of
from nightlog.catalogue.engine import create_engine, make_sessionmaker
from nightlog.catalogue.models import Frame
from nightlog.catalogue.schema import upgrade
from nightlog.cli.app import app
from nightlog.coordinator.context import JobContext
from nightlog.coordinator.ingest import IngestContext, run_ingest
from nightlog.coordinator.profile_check import check_file
from nightlog.daemon.watch import Watcher, WatchOptions
from nightlog.header.match_explanation import explain_profile_match
from nightlog.header.profile_warnings import WarningCode
from nightlog.header.profiles import ProfileRegistry
from nightlog.settings import Settings, load_settings
from tests.factories import wait_for, write_frame

DATA = Path(__file__).parent / "data"
OTHER = "Kestrel K42"  # a camera no profile describes


def lfc_file(path: Path, **cards: Any) -> Path:
    """The real LFC bias header with a data unit of its declared size (sparse zeros);
    ``cards`` change keywords (``None`` removes one)."""
    header = fits.Header.fromtextfile(DATA / "lfc_bias_ccd.001.0.hdr")
    for key, value in cards.items():
        if value is None:
            header.remove(key)
        else:
            header[key] = value
    text = header.tostring().encode("ascii")
    size = header["NAXIS1"] * header["NAXIS2"] * abs(header["BITPIX"]) // 8
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(text)
        fh.truncate(len(text) + -(-size // 2880) * 2880)
    return path


def _settings(root: Path, toml: str = "") -> Settings:
    (root / "nightlog.toml").write_text(toml)
    return load_settings(root / "nightlog.toml", env={}, cwd=root)


def _codes(check: Any) -> set[str]:
    return {str(w.code) for w in check.warnings}


# -- the library ------------------------------------------------------------------------


def test_the_lfc_under_its_profile_has_every_number_and_no_warning(tmp_path: Path) -> None:
    check = check_file(lfc_file(tmp_path / "ccd.001.0.fits"), _settings(tmp_path))
    assert check.error is None and check.profile == "lfc" and not check.match.fallback
    assert "INSTRUME='LFC'" in check.match.reason
    assert check.field("obs_time").source == "header DATE-OBS+UT"
    assert check.field("obs_time").value.isoformat() == "2016-01-15T23:53:30+00:00"
    assert check.field("filter").value == "i'"
    assert check.field("gain").value == 2.37
    assert check.field("gain").source == "profile lfc (header GAIN=1.1 not used)"
    assert check.field("night").source == "site: profile lfc"
    assert check.setting("overscan").value == "[2049:2080,1:4127]"
    assert check.setting("overscan").source == "biassec, 7 column(s) next to the data skipped"
    assert check.setting("trim").value == "[1:2048,1:4128]"
    assert check.setting("trim").source == "trimsec (header DATASEC)"
    assert (check.setting("read_noise").value, check.setting("read_noise").source) == (
        12.98, "profile lfc")
    assert dict(check.calibration_keys) == {"own bias": (
        "bias|lfc|instrument=LFC|detector=SITe SI002 x 6|binning=1x1|readout_mode=-"
        "|shape=4128x2080")}
    assert check.warnings == ()


def test_a_camera_with_overscan_keywords_under_the_generic_profile_is_warned_about(
        tmp_path: Path) -> None:
    check = check_file(lfc_file(tmp_path / "other.fits", INSTRUME=OTHER),
                       _settings(tmp_path))
    assert check.profile == "generic" and check.match.fallback
    assert "no profile's match rules hold" in check.match.reason
    assert all(not v.matches for v in check.match.verdicts)
    assert check.setting("overscan").value is None
    assert check.setting("overscan").source.startswith("off: profile generic")
    assert check.setting("gain").source == "header GAIN"
    assert check.setting("read_noise").value == 0.0
    assert _codes(check) == {"generic-profile", "overscan-off", "no-read-noise",
                             "no-saturation"}
    over = next(w for w in check.warnings if w.code is WarningCode.OVERSCAN_OFF)
    assert "BIASSEC='[2049:2080,1:4127]'" in over.message


def test_trim_off_although_the_header_has_trimsec(tmp_path: Path) -> None:
    settings = _settings(tmp_path, '[instruments.cam]\nmatch = { INSTRUME = "TESTCAM" }\n'
                         'trim = "XTRIMSEC"\ndatasec = "XDATASEC"\ngain = 2.0\n'
                         'read_noise = 5.0\nsaturation = 60000.0\n'
                         'site = { timezone = "UTC" }\n')
    path = write_frame(tmp_path / "t.fits", TRIMSEC="[1:30,1:24]", DATASEC="[1:30,1:24]")
    check = check_file(path, settings)
    assert check.profile == "cam"
    assert _codes(check) == {"trim-off"}
    assert check.setting("trim").value is None
    assert "TRIMSEC='[1:30,1:24]'" in check.warnings[0].message


def test_date_without_time_unknown_type_and_no_site(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    path = write_frame(tmp_path / "d.fits", **{"DATE-OBS": "2024-03-10", "MJD-OBS": 60379.25,
                                                "IMAGETYP": "Focus Frame"})
    check = check_file(path, settings)
    assert check.error is None
    assert check.field("obs_time").source == "header MJD-OBS"
    assert check.field("kind").value == "unknown"
    assert {"date-without-time", "unknown-frame-type", "no-site"} <= _codes(check)
    unknown = next(w for w in check.warnings if w.code is WarningCode.UNKNOWN_FRAME_TYPE)
    assert unknown.subject == "Focus Frame" and "'Focus Frame'" in unknown.message
    dated = next(w for w in check.warnings if w.code is WarningCode.DATE_WITHOUT_TIME)
    assert "DATE-OBS='2024-03-10' has no time of day" in dated.message


def test_a_file_ingest_would_quarantine_says_why(tmp_path: Path) -> None:
    path = write_frame(tmp_path / "d.fits", **{"DATE-OBS": "2024-03-10"})
    check = check_file(path, _settings(tmp_path))
    assert check.profile == "generic"
    assert "has no time of day" in (check.error or "")
    (tmp_path / "notes.fits").write_text("not a FITS file\n" * 300)
    assert "SIMPLE" in (check_file(tmp_path / "notes.fits", _settings(tmp_path)).error or "")


def test_the_real_aspen_cut_out(tmp_path: Path) -> None:
    check = check_file(DATA / "aspen_trimmed.fit", _settings(tmp_path))
    assert check.profile == "aspen" and check.field("kind").value == "flat"
    assert check.field("read_noise").source == "profile aspen"
    # A 100 x 100 cut-out is not the full readout: the literal sections do not apply.
    assert "not the full readout" in check.field("biassec").source
    assert check.setting("overscan").source == "off: profile aspen has subtract_overscan = false"
    assert "generic-profile" not in _codes(check)


def _ingested(tmp_path: Path, settings: Settings, path: Path) -> Frame:
    engine = create_engine(f"sqlite:///{tmp_path / 'cat.sqlite'}")
    upgrade(engine)
    run_ingest(engine, [path], IngestContext.from_settings(settings))
    with make_sessionmaker(engine)() as session:
        frame = session.scalars(select(Frame)).one()
        session.expunge(frame)
    engine.dispose()
    return frame


@pytest.mark.parametrize("instrument", ["LFC", OTHER])
def test_the_check_says_what_the_reduction_does(tmp_path: Path, instrument: str) -> None:
    settings = _settings(tmp_path)
    path = lfc_file(tmp_path / "raw" / "ccd.fits", INSTRUME=instrument)
    check = check_file(path, settings)
    frame = _ingested(tmp_path, settings, path)
    jobs = JobContext.from_settings(settings)
    profile = jobs.profile_of(frame)
    prep = jobs.preparation_of(frame)
    assert (check.setting("overscan").value, check.setting("trim").value) == (
        prep.overscan, prep.trim)
    gain = gain_of(frame, profile)
    noise = read_noise_of(frame, profile, None, gain)
    assert (check.setting("gain").value, check.setting("gain").source) == (
        gain.value, gain.source)
    assert check.setting("read_noise").value == noise.value
    assert check.field("setup_key").value == frame.setup_key
    assert dict(check.calibration_keys)["own bias"] == group_of(frame, "bias", profile).key
    assert check.setting("saturation").value == frame.saturation


_INSTRUMENTS = ["LFC", "AspenCG16", "K42", "K42 red", "other", ""]


@settings(max_examples=60, deadline=None)
@given(instrument=st.sampled_from(_INSTRUMENTS), detector=st.sampled_from(["e2v", "SITe", ""]),
       priority=st.integers(-1, 1), regex=st.booleans())
def test_the_explanation_names_the_profile_the_registry_picks(
        instrument: str, detector: str, priority: int, regex: bool) -> None:
    rule = {"match_regex": {"INSTRUME": "^K42"}} if regex else {"match": {"INSTRUME": "K42"}}
    registry = ProfileRegistry.from_settings({
        "k42": rule,
        "k42e2v": {"match": {"INSTRUME": "K42", "DETECTOR": "e2v"}, "priority": priority},
        "anylfc": {"match_regex": {"INSTRUME": "LFC"}, "priority": priority},
    })
    header = {"INSTRUME": instrument, "DETECTOR": detector}
    found = explain_profile_match(registry, header)
    assert found.chosen == registry.match(header).name
    assert found.fallback == (found.chosen == "generic")
    assert {v.profile for v in found.verdicts if v.matches} == {
        name for name in registry.names
        if registry.get(name).match and all(
            r.accepts(header.get(r.keyword) or None) for r in registry.get(name).match)}


def test_a_default_profile_is_named_as_such(tmp_path: Path) -> None:
    settings = _settings(tmp_path, '[ingest]\ndefault_profile = "aspen"\n')
    check = check_file(lfc_file(tmp_path / "o.fits", INSTRUME=OTHER), settings)
    assert check.profile == "aspen" and check.match.fallback
    assert "ingest.default_profile is 'aspen'" in check.match.reason
    assert "generic-profile" not in _codes(check)


# -- the command --------------------------------------------------------------------------


def test_the_command_exit_statuses(runner: CliRunner, tmp_path: Path) -> None:
    lfc = lfc_file(tmp_path / "ccd.001.0.fits")
    other = lfc_file(tmp_path / "other.fits", INSTRUME=OTHER)
    assert runner.invoke(app, ["profile", "check", str(lfc), "--strict"]).exit_code == 0
    shown = runner.invoke(app, ["profile", "check", str(other)])
    assert shown.exit_code == 0, shown.output
    assert "warning [overscan-off]" in shown.output and "header BIASSEC" in shown.output
    assert runner.invoke(app, ["profile", "check", str(other), "--strict"]).exit_code == 3
    bad = write_frame(tmp_path / "bad.fits", **{"DATE-OBS": "2024-03-10"})
    failed = runner.invoke(app, ["profile", "check", str(bad)])
    assert failed.exit_code == 3 and "ingest would quarantine it" in failed.output
    empty = tmp_path / "empty"
    empty.mkdir()
    assert runner.invoke(app, ["profile", "check", str(empty)]).exit_code == 7


def test_json_and_csv_carry_the_sources(runner: CliRunner, tmp_path: Path) -> None:
    other = lfc_file(tmp_path / "other.fits", INSTRUME=OTHER)
    result = runner.invoke(app, ["profile", "check", str(other), "--format", "json"])
    assert result.exit_code == 0
    (doc,) = json.loads(result.stdout)
    assert doc["fields"]["biassec"] == {"value": "[2049:2080,1:4127]",
                                        "source": "header BIASSEC"}
    assert doc["settings"]["gain"] == {"value": 1.1, "source": "header GAIN"}
    assert doc["match"]["profile"] == "generic" and doc["match"]["fallback"] is True
    assert "overscan-off" in {w["code"] for w in doc["warnings"]}
    csv = runner.invoke(app, ["profile", "check", str(other), "--format", "csv"])
    lines = csv.stdout.splitlines()
    assert lines[0] == "path,section,name,value,source"
    assert any(",field,biassec,\"[2049:2080,1:4127]\",header BIASSEC" in line
               or ",field,biassec,[2049:2080,1:4127],header BIASSEC" in line for line in lines)


def test_hostile_header_strings_stay_text(runner: CliRunner, tmp_path: Path) -> None:
    hostile = "[bold red]boom[/bold red] $(rm -rf ~)"
    path = write_frame(tmp_path / "h.fits", OBJECT=hostile, IMAGETYP="[link=x]lit[/link]")
    shown = runner.invoke(app, ["profile", "check", str(path)])
    assert shown.exit_code == 0
    assert hostile in shown.output and "[link=x]lit[/link]" in shown.output
    (doc,) = json.loads(runner.invoke(app, ["profile", "check", str(path), "--format",
                                            "json"]).stdout)
    assert doc["fields"]["object"]["value"] == hostile


def test_profile_list(runner: CliRunner) -> None:
    result = runner.invoke(app, ["profile", "list", "--format", "json"])
    rows = {r["profile"]: r for r in json.loads(result.stdout)}
    assert rows["lfc"]["matched by"] == "INSTRUME = LFC"
    assert rows["generic"]["matched by"] == "the fallback"


# -- said once per instrument ---------------------------------------------------------------


def test_ingest_says_each_warning_once_per_instrument(runner: CliRunner, tmp_path: Path
                                                      ) -> None:
    raw = tmp_path / "raw"
    for i in range(3):
        write_frame(raw / f"a{i}.fits", seed=i, INSTRUME="CAM A", BIASSEC="[31:32,1:24]")
    write_frame(raw / "b.fits", seed=9, INSTRUME="CAM B")
    result = runner.invoke(app, ["ingest", str(raw), "--format", "json"])
    assert result.exit_code == 0, result.output
    warned = json.loads(result.stdout)["warnings"]
    keys = [(w["instrument"], w["code"]) for w in warned]
    assert len(keys) == len(set(keys))
    assert {k for k in keys if k[0] == "CAM A"} == {
        ("CAM A", c) for c in ("generic-profile", "no-gain", "no-read-noise",
                               "no-saturation", "no-site", "overscan-off")}
    assert {w["frames"] for w in warned if w["instrument"] == "CAM A"} == {3}
    assert ("CAM B", "overscan-off") not in keys and ("CAM B", "no-gain") in keys
    table = runner.invoke(app, ["ingest", str(raw / "a0.fits"), str(raw / "a1.fits"),
                                "--verify"])
    assert table.output.count("[instruments.<name>]") == 0  # unchanged files: nothing new
    write_frame(raw / "a9.fits", seed=20, INSTRUME="CAM A", BIASSEC="[31:32,1:24]")
    write_frame(raw / "a8.fits", seed=21, INSTRUME="CAM A", BIASSEC="[31:32,1:24]")
    table = runner.invoke(app, ["ingest", str(raw / "a8.fits"), str(raw / "a9.fits")])
    assert table.output.count("no instrument profile matched") == 1
    assert "instrument CAM A (2 frame(s))" in table.output


@contextmanager
def _daemon(engine: Engine, settings: Settings, folder: Path) -> Iterator[Watcher]:
    opts = WatchOptions.from_settings(settings, [folder], settle=0.2, heartbeat=0.5)
    watcher = Watcher(engine, IngestContext.from_settings(settings, incomplete_is_error=False),
                      JobContext.from_settings(settings), opts)
    errors: list[BaseException] = []

    def _run() -> None:
        try:
            watcher.run()
        except BaseException as exc:  # reported by the test
            errors.append(exc)

    thread = threading.Thread(target=_run, daemon=True)
    thread.start()
    assert watcher.ready_event.wait(20), "the daemon did not finish its catch-up"
    try:
        yield watcher
    finally:
        watcher.stop.set()
        thread.join(30)
    assert not errors, errors


def test_watch_logs_each_warning_once_per_instrument(tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    settings = _settings(tmp_path)
    engine = create_engine(f"sqlite:///{tmp_path / 'cat.sqlite'}")
    upgrade(engine)
    with caplog.at_level(logging.INFO, logger="nightlog.watch"), \
            _daemon(engine, settings, raw) as watcher:
        for i in range(3):
            write_frame(raw / f"a{i}.fits", seed=i, INSTRUME="CAM A")
        write_frame(raw / "b.fits", seed=9, INSTRUME="CAM B")
        wait_for(lambda: watcher.stats.counts.get("added", 0) == 4, 15, "four frames")
    engine.dispose()
    said = [(r.instrument, r.code) for r in caplog.records
            if getattr(r, "event", "") == "profile-warning"]
    assert sorted(said) == sorted(
        (cam, code) for cam in ("CAM A", "CAM B")
        for code in ("generic-profile", "no-gain", "no-read-noise", "no-saturation",
                     "no-site"))


def test_profile_show_gives_each_key_against_generic(runner: CliRunner) -> None:
    result = runner.invoke(app, ["profile", "show", "lfc", "--format", "json"])
    rows = {r["key"]: r for r in json.loads(result.stdout)}
    assert rows["overscan_skip_columns"] == {"key": "overscan_skip_columns", "value": 7,
                                             "vs generic": "differs"}
    assert rows["match"]["value"] == ["INSTRUME = LFC"]
    assert rows["gain_keywords"] == {"key": "gain_keywords", "value": ["GAIN", "EGAIN"],
                                     "vs generic": "same"}
    assert runner.invoke(app, ["profile", "show", "nope"]).exit_code == 2


_NUMBERS = {"GAIN": ("no-gain", 1.4), "RDNOISE": ("no-read-noise", 7.5),
            "SATURATE": ("no-saturation", 60000.0)}


@settings(max_examples=80, deadline=None)
@given(present=st.sets(st.sampled_from(sorted(_NUMBERS))),
       regions=st.sets(st.sampled_from(["BIASSEC", "TRIMSEC", "DATASEC"])),
       subtract=st.booleans(), trim_read=st.booleans(), time_of_day=st.booleans(),
       frame_type=st.sampled_from(["BIAS", "Light Frame", "FOCUS", None]))
def test_each_warning_is_said_exactly_when_its_cause_holds(
        present: set[str], regions: set[str], subtract: bool, trim_read: bool,
        time_of_day: bool, frame_type: str | None) -> None:
    from nightlog.header.normalize import normalize_header
    from nightlog.header.profile_warnings import profile_warnings

    registry = ProfileRegistry.from_settings({"cam": {
        "match": {"INSTRUME": "CAM"}, "subtract_overscan": subtract,
        "trim": "TRIMSEC" if trim_read else "", "datasec": "DATASEC" if trim_read else "",
        "site": {"timezone": "UTC"}}})
    header: dict[str, Any] = {"NAXIS": 2, "NAXIS1": 40, "NAXIS2": 20, "INSTRUME": "CAM",
                              "EXPTIME": 1.0, "MJD-OBS": 60379.25,
                              "DATE-OBS": "2024-03-10T06:00:00" if time_of_day else "2024-03-10"}
    if frame_type is not None:
        header["IMAGETYP"] = frame_type
    header.update({k: _NUMBERS[k][1] for k in present})
    header.update({k: {"BIASSEC": "[33:40,1:20]"}.get(k, "[1:32,1:20]") for k in regions})
    profile = registry.match(header)
    codes = {str(w.code) for w in profile_warnings(
        header, profile, normalize_header(header, profile))}
    expected = {_NUMBERS[k][0] for k in _NUMBERS if k not in present}
    if "BIASSEC" in regions and not subtract:
        expected.add("overscan-off")
    if regions & {"TRIMSEC", "DATASEC"} and not trim_read:
        expected.add("trim-off")
    if not time_of_day:
        expected.add("date-without-time")
    if frame_type == "FOCUS":
        expected.add("unknown-frame-type")
    if frame_type is None:
        expected.add("no-frame-type")
    assert codes == expected


def test_a_tile_compressed_frame_is_checked_like_a_plain_one(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    plain = check_file(write_frame(tmp_path / "f.fits", GAIN=1.3), settings)
    packed = check_file(write_frame(tmp_path / "f.fits.fz", GAIN=1.3), settings)
    assert packed.error is None
    assert [(f.name, f.value) for f in packed.fields] == [(f.name, f.value)
                                                          for f in plain.fields]
    assert packed.settings == plain.settings and packed.warnings == plain.warnings


def test_an_unknown_default_profile_is_the_configuration_s_error(runner: CliRunner,
                                                                 tmp_path: Path) -> None:
    (tmp_path / "nightlog.toml").write_text('[ingest]\ndefault_profile = "nope"\n')
    path = write_frame(tmp_path / "f.fits")
    result = runner.invoke(app, ["profile", "check", str(path)])
    assert result.exit_code == 2 and "no instrument profile named 'nope'" in result.output


def test_ingest_as_csv_says_the_warnings_on_stderr(runner: CliRunner, tmp_path: Path) -> None:
    write_frame(tmp_path / "raw" / "a.fits", INSTRUME="CAM A")
    result = runner.invoke(app, ["ingest", str(tmp_path / "raw"), "--format", "csv"])
    assert result.exit_code == 0
    assert "no instrument profile matched" not in result.stdout
    assert "warning: profile generic, instrument CAM A (1 frame(s))" in result.stderr
