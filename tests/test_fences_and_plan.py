"""Hardware-change fences block a match (and the explanation says so); the coverage
plan's four cases and its dawn to-do; ``calib fence``, ``calib fences`` and ``plan``
on the command line. SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from nightlog.calibration.coverage import coverage_plan, read_announced
from nightlog.calibration.matching import match_kind
from nightlog.catalogue.engine import make_sessionmaker
from nightlog.catalogue.fences import add_fence, list_fences
from nightlog.cli.app import app
from nightlog.errors import CatalogueError, ConfigurationError
from nightlog.header.profiles import InstrumentProfile, ProfileRegistry
from nightlog.settings import Settings
from nightlog.states import Coverage
from tests.test_matching import POLICY, T0, add_frame, add_master


@pytest.fixture
def profile() -> InstrumentProfile:
    return ProfileRegistry.from_settings().get("generic")


@pytest.fixture
def session(catalogue_engine: Engine) -> Iterator[Session]:
    with make_sessionmaker(catalogue_engine)() as s:
        yield s


def _fence_rule(m: object, master_id: int) -> object:
    cand = next(c for c in m.candidates if c.master.id == master_id)  # type: ignore[attr-defined]
    return next(r for r in cand.rules if r.rule == "fence")


def test_no_master_is_matched_across_a_fence(session: Session,
                                             profile: InstrumentProfile) -> None:
    sci = add_frame(session)
    before = add_master(session, profile, "bias", mid=T0 - dt.timedelta(days=2), like=sci)
    after = add_master(session, profile, "bias", mid=T0 + dt.timedelta(days=3), like=sci)
    assert match_kind(session, sci, "bias", profile, POLICY).chosen.id == before.id
    add_fence(session, T0 - dt.timedelta(days=1), "camera serviced", instrument="TESTCAM")
    m = match_kind(session, sci, "bias", profile, POLICY)
    assert m.chosen is not None and m.chosen.id == after.id  # farther, but this side
    rule = _fence_rule(match_kind(session, sci, "bias", profile, POLICY, explain=True),
                       before.id)
    assert not rule.passed and "camera serviced" in rule.detail  # type: ignore[attr-defined]
    assert _fence_rule(m, after.id).passed  # type: ignore[attr-defined]
    # A second fence after the frame leaves nothing: the reason names the rule.
    add_fence(session, T0 + dt.timedelta(days=1), "filter wheel changed")
    none = match_kind(session, sci, "bias", profile, POLICY)
    assert none.chosen is None and "fence (2)" in none.reason


def test_a_fence_among_a_masters_inputs_or_elsewhere(session: Session,
                                                     profile: InstrumentProfile) -> None:
    sci = add_frame(session)
    master = add_master(session, profile, "bias", mid=T0 - dt.timedelta(days=2), like=sci)
    add_fence(session, T0 - dt.timedelta(days=5), "long before", instrument="TESTCAM")
    add_fence(session, T0 - dt.timedelta(days=1), "another camera", instrument="OTHER")
    add_fence(session, T0 - dt.timedelta(days=1), "another set-up", setup_key="not-this-one")
    assert match_kind(session, sci, "bias", profile, POLICY).chosen.id == master.id
    add_fence(session, master.mid_time, "mid-calibration")  # while its biases were taken
    assert match_kind(session, sci, "bias", profile, POLICY).chosen is None


def test_fences_are_checked_and_listed(session: Session) -> None:
    with pytest.raises(CatalogueError, match="time zone"):
        add_fence(session, dt.datetime(2025, 1, 1), "naive")
    with pytest.raises(CatalogueError, match="reason"):
        add_fence(session, T0, "  ")
    b = add_fence(session, T0, "b", instrument="CAM")
    a = add_fence(session, T0 - dt.timedelta(days=1), "a")
    add_fence(session, T0, "c", instrument="OTHER")
    assert [f.id for f in list_fences(session, instrument="CAM")] == [a.id, b.id]
    assert len(list_fences(session)) == 3


# -- the coverage plan ----------------------------------------------------------------


class _Ctx:
    policy = POLICY

    def __init__(self, profile: InstrumentProfile) -> None:
        self._profile = profile

    def profile_of(self, frame: object) -> InstrumentProfile:
        return self._profile


def test_the_four_cases_and_the_dawn_todo(session: Session, profile: InstrumentProfile) -> None:
    night = (T0 - dt.timedelta(hours=12)).date()
    sci_r = add_frame(session, filt="R", exptime=60.0)
    add_frame(session, filt="R", exptime=60.0, when=T0 + dt.timedelta(minutes=5))
    sci_v = add_frame(session, filt="V", exptime=120.0)
    # Tonight's bias; a dark rate of another night made of 60 s darks; R flats 3 d ago.
    add_master(session, profile, "bias", mid=T0, like=sci_r)
    dark = add_master(session, profile, "dark", mid=T0 - dt.timedelta(days=3), like=sci_r)
    flat = add_master(session, profile, "flat", mid=T0 - dt.timedelta(days=3), like=sci_r)
    dark_frame = add_frame(session, "dark", exptime=60.0, when=T0 - dt.timedelta(days=3))
    from nightlog.catalogue.models import MasterInput

    session.add(MasterInput(master_id=dark.id, frame_id=dark_frame.id, used=True,
                            sha256=dark_frame.sha256))
    session.flush()
    plan = coverage_plan(session, _Ctx(profile), night)
    got = {(r.filter, r.kind): (r.coverage, r.master, r.n_frames) for r in plan.rows}
    assert got == {
        ("R", "bias"): (Coverage.EXACT, got[("R", "bias")][1], 2),
        ("R", "dark"): (Coverage.OTHER_NIGHT, dark.id, 2),
        ("R", "flat"): (Coverage.OTHER_NIGHT, flat.id, 2),
        ("V", "bias"): (Coverage.EXACT, got[("V", "bias")][1], 1),
        ("V", "dark"): (Coverage.SCALE_ONLY, dark.id, 1),
        ("V", "flat"): (Coverage.MISSING, None, 1),
    }
    assert plan.todo == ["take 5 darks at 120 s (now scaled from a dark rate)",
                         "take 5 V flats"]
    assert sci_v.filter == "V"
    # An announced B set-up needs B flats too; nothing is added to the catalogue.
    announced = coverage_plan(session, _Ctx(profile), night,
                              announced=[{"like": sci_r.id, "filter": "B", "exptime": 60.0}])
    extra = [r for r in announced.rows if r.announced]
    assert [(r.kind, r.coverage) for r in extra] == [
        ("bias", Coverage.EXACT), ("dark", Coverage.OTHER_NIGHT), ("flat", Coverage.MISSING)]
    assert "take 5 B flats" in announced.todo
    assert "group.filter" in extra[-1].detail


def test_announced_files_are_checked(tmp_path: Path) -> None:
    good = tmp_path / "tonight.toml"
    good.write_text('[[setup]]\nlike = 3\nfilter = "B"\nexptime = 120\n')
    assert read_announced(good) == [{"like": 3, "filter": "B", "exptime": 120}]
    bad = tmp_path / "bad.toml"
    bad.write_text('[[setup]]\nfiltre = "B"\n')
    with pytest.raises(ConfigurationError, match="did you mean 'filter'"):
        read_announced(bad)
    bad.write_text('[[setup]]\nexptime = "long"\n')
    with pytest.raises(ConfigurationError, match="exptime"):
        read_announced(bad)


# -- the command line, on a real night ------------------------------------------------


def test_fence_and_plan_commands(reduced: Settings, runner: CliRunner,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(reduced.archive_root)
    env = {"NIGHTLOG_DATABASE_URL": reduced.database_url}

    def run(*args: str) -> str:
        out = runner.invoke(app, list(args), env=env)
        assert out.exit_code == 0, out.output
        return out.output

    doc = json.loads(run("plan", "--format", "json"))
    assert {r["kind"] for r in doc["setups"]} == {"bias", "dark", "flat"}
    assert "missing" not in {r["coverage"] for r in doc["setups"]}
    science = json.loads(run("frames", "--kind", "science", "--format", "json"))
    first = min(science, key=lambda f: f["obs_time"])
    # The camera serviced just before the first science frame: the evening's biases
    # and darks are on the other side.
    at = (dt.datetime.fromisoformat(first["obs_time"]) - dt.timedelta(seconds=1)).isoformat()
    assert "fence 1" in run("calib", "fence", "--at", at, "--reason", "controller replaced",
                            "--instrument", "LFC")
    listed = json.loads(run("calib", "fences", "--format", "json"))
    assert [(f["reason"], f["instrument"]) for f in listed] == [("controller replaced", "LFC")]
    after = json.loads(run("plan", "--format", "json"))
    bias = [r for r in after["setups"] if r["kind"] == "bias"]
    assert bias and all(r["coverage"] == "missing" for r in bias)
    assert all("fence" in r["detail"] for r in bias)
    assert "take 5 biases" in after["todo"]
    table = run("plan")
    assert "dawn to-do:" in table and "take 5 biases" in table
    match = json.loads(run("match", str(first["id"]), "--format", "json"))
    (bias_match,) = [m for m in match["matches"] if m["kind"] == "bias"]
    assert bias_match["chosen"] is None and "fence" in bias_match["reason"]
    for cand in bias_match["candidates"]:
        (rule,) = [r for r in cand["rules"] if r["rule"] == "fence"]
        assert not rule["passed"] and "controller replaced" in rule["detail"]
