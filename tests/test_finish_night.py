"""Finishing a night (the one function behind ``nightlog reduce``, the morning run and
the demo), and the catalogue lookups the CLI relies on: a frame by id or path, the
match explanation, the latest night."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import Engine

from nightlog.calibration.match_report import explain_match
from nightlog.catalogue.engine import make_sessionmaker
from nightlog.catalogue.frames import find_frame
from nightlog.catalogue.queries import latest_night
from nightlog.coordinator.context import JobContext
from nightlog.coordinator.night import NightRun, finish_night, other_nights_note
from nightlog.coordinator.reduce import science_frames
from nightlog.errors import ConfigurationError, NotFoundError

NIGHT = dt.date(2016, 1, 15)


def test_the_latest_night_is_built_then_reduced_then_found_done(
        archive: tuple[Engine, JobContext]) -> None:
    engine, ctx = archive  # ingested, no master yet
    with make_sessionmaker(engine)() as s:
        assert latest_night(s) == NIGHT
        science = science_frames(s, night=NIGHT)
    seen: list[tuple[int, int, int]] = []

    def _before(run: NightRun) -> None:  # masters built, frames chosen, none reduced
        seen.append((len(run.builds), len(run.frame_ids), len(run.outcomes)))

    run = finish_night(engine, ctx, workers=1, before_reduce=_before)
    assert run.night == NIGHT and run.since is None and not run.no_frames
    assert sorted(b.kind for b in run.builds if b.status == "built") == ["bias", "dark",
                                                                          "flat", "flat"]
    assert seen == [(len(run.builds), len(science), 0)]
    assert run.frame_ids == science
    assert [o.frame_id for o in run.outcomes] == science
    assert {o.status for o in run.outcomes} == {"reduced"}
    assert run.workers == 1 and run.scheduler is None

    again = finish_night(engine, ctx, night=NIGHT, workers=1)
    assert again.builds == [] and {o.status for o in again.outcomes} == {"up-to-date"}

    one = finish_night(engine, ctx, frame_ids=science[:1], build=False, force=True,
                       workers=1)
    assert one.night is None and one.frame_ids == science[:1]
    assert [o.status for o in one.outcomes] == ["reduced"]


def test_the_latest_night_says_which_other_nights_wait(
        archive: tuple[Engine, JobContext], tmp_path: Path) -> None:
    from nightlog.coordinator.ingest import IngestContext, discover, run_ingest
    from nightlog.settings import load_settings
    from nightlog.simulate import simulate_night

    engine, ctx = archive
    earlier = NIGHT - dt.timedelta(days=2)
    simulate_night(tmp_path / "raw-earlier", camera="lfc", night=earlier, scale=0.1, seed=8,
                   n_bias=3, n_dark=3, n_flat=3, n_science=2)
    settings = load_settings(env={}, cwd=tmp_path)
    run_ingest(engine, discover([tmp_path / "raw-earlier"], settings.ingest.patterns),
               IngestContext.from_settings(settings))
    with make_sessionmaker(engine)() as s:
        waiting = len(science_frames(s, night=earlier))
    assert waiting == 2

    latest = finish_night(engine, ctx, workers=1)
    assert latest.night == NIGHT and {o.status for o in latest.outcomes} == {"reduced"}
    assert latest.other_nights == {earlier: waiting}
    note = other_nights_note(latest)
    assert note is not None
    assert f"{earlier.isoformat()} ({waiting})" in note
    assert note.endswith(f"run: nightlog reduce --night {earlier.isoformat()}")

    done = finish_night(engine, ctx, night=earlier, workers=1)
    assert [o.status for o in done.outcomes] == ["reduced"] * waiting
    assert done.other_nights == {} and other_nights_note(done) is None
    assert other_nights_note(finish_night(engine, ctx, workers=1)) is None


def test_an_empty_catalogue_has_no_night_and_nothing_is_done(
        catalogue_engine: Engine, tmp_path: Path) -> None:
    from nightlog.settings import load_settings

    ctx = JobContext.from_settings(load_settings(env={}, cwd=tmp_path))
    with make_sessionmaker(catalogue_engine)() as s:
        assert latest_night(s) is None
    calls: list[NightRun] = []
    run = finish_night(catalogue_engine, ctx, workers=1, before_reduce=calls.append)
    assert run.no_frames and run.night is None
    assert run.builds == [] and run.outcomes == [] and calls == []


def test_a_night_a_first_night_and_frame_ids_exclude_each_other(
        catalogue_engine: Engine, tmp_path: Path) -> None:
    from nightlog.settings import load_settings

    ctx = JobContext.from_settings(load_settings(env={}, cwd=tmp_path))
    with pytest.raises(ConfigurationError, match="not several"):
        finish_night(catalogue_engine, ctx, night=NIGHT, since=NIGHT)
    with pytest.raises(ConfigurationError, match="not several"):
        finish_night(catalogue_engine, ctx, night=NIGHT, frame_ids=[1])


def test_a_frame_is_found_by_id_or_path_and_explained(
        archive: tuple[Engine, JobContext], monkeypatch: pytest.MonkeyPatch) -> None:
    engine, ctx = archive
    finish_night(engine, ctx, workers=1)
    with make_sessionmaker(engine)() as s:
        frame = find_frame(s, str(science_frames(s, night=NIGHT)[0]))
        path = Path(frame.path)
        assert find_frame(s, str(path)).id == frame.id
        monkeypatch.chdir(path.parent)
        assert find_frame(s, path.name).id == frame.id  # relative to the working folder
        with pytest.raises(NotFoundError, match="give an id or a path"):
            find_frame(s, "no-such-file.fits")
        with pytest.raises(NotFoundError):
            find_frame(s, "999999")
        report = explain_match(s, ctx, str(frame.id))
    # Plain values, usable once the session is closed.
    doc = json.loads(json.dumps(report.as_dict()))
    assert doc["frame"] == frame.id and report.frame_kind == "science"
    kinds = {m["kind"]: m for m in doc["matches"]}
    assert set(kinds) == {"bias", "dark", "flat"}
    for match in kinds.values():
        chosen = [c for c in match["candidates"] if c["master"] == match["chosen"]]
        assert len(chosen) == 1 and chosen[0]["usable"]
        assert all(r["passed"] for r in chosen[0]["rules"])
