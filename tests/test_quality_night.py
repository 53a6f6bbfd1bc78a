"""The quality record through a whole simulated night: recovery of the truth, the
quick-look then the final record, the rules, ``frames --poor`` and ``quality check``.

A Palomar LFC night at a quarter of its size is simulated, catalogued, its masters
built, its science frames quick-looked (as the watch daemon does) then reduced.
Every science frame's recorded FWHM is compared with the FWHM the simulator drew
its stars with, for frames with at least 20 unsaturated stars; the sky with the
sky it put there, in the flat's normalisation.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from nightlog.catalogue.engine import create_engine, make_sessionmaker
from nightlog.catalogue.models import Frame, FrameQualityRow, Product
from nightlog.catalogue.quality import check_quality, quality_of, verdict_frame_ids
from nightlog.catalogue.schema import upgrade
from nightlog.cli.app import app
from nightlog.coordinator.context import JobContext
from nightlog.coordinator.ingest import IngestContext, discover, run_ingest
from nightlog.coordinator.masters import run_build
from nightlog.coordinator.night import finish_night
from nightlog.coordinator.reduce import run_reduce, science_frames
from nightlog.reduction.scaling import central_region
from nightlog.settings import load_settings
from nightlog.simulate import load_truth, simulate_night
from nightlog.states import ProductKind, QualityVerdict


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The archive (folder with nightlog.toml), quick-looked, then reduced."""
    folder = tmp_path_factory.mktemp("quality")
    simulate_night(folder / "raw", camera="lfc", scale=0.25, seed=7, n_bias=5, n_dark=5,
                   n_flat=5, n_science=6)
    # The rule the page and the CLI are tested with: a seeing limit between the
    # frames' FWHM (the truth's median), so some frames are poor and some not.
    truth = load_truth(folder / "raw")
    fwhm = [f["fwhm_px"] for f in truth.summary["files"] if f["kind"] == "science"]
    limit = float(np.median(fwhm))
    (folder / "nightlog.toml").write_text(
        '[quality.rules.seeing]\nprofiles = ["lfc"]\n'
        f"fwhm_px_max = {limit:.5f}\n"
        '[quality.rules.crowd]\nsources_min = 1000\n', encoding="utf-8")
    settings = load_settings(env={}, cwd=folder)
    engine = create_engine(settings.database_url)
    try:
        upgrade(engine)
        run_ingest(engine, discover([folder / "raw"], settings.ingest.patterns),
                   IngestContext.from_settings(settings))
        ctx = JobContext.from_settings(settings)
        run_build(engine, ctx)
        with make_sessionmaker(engine)() as session:
            ids = science_frames(session)
        run_reduce(engine, ctx, ids, kind=ProductKind.QUICKLOOK, live=True)
        with make_sessionmaker(engine)() as session:
            quick = quality_of(session, ids)
        assert {q.kind for q in quick.values()} == {ProductKind.QUICKLOOK}
        assert len(quick) == len(ids)
        finish_night(engine, ctx, workers=1, local=True)
    finally:
        engine.dispose()
    return folder


def _records(folder: Path) -> tuple[dict[int, Frame], dict]:
    settings = load_settings(env={}, cwd=folder)
    engine = create_engine(settings.database_url)
    try:
        with make_sessionmaker(engine)() as session:
            frames = {f.id: f for f in session.scalars(
                select(Frame).where(Frame.kind == "science"))}
            records = quality_of(session, frames)
            session.expunge_all()
    finally:
        engine.dispose()
    return frames, records


def test_fwhm_sky_and_airmass_are_recovered(night: Path) -> None:
    truth = load_truth(night / "raw")
    frames, records = _records(night)
    assert set(records) == set(frames)
    # The reduced sky is the sky times the flat's response where the flat was
    # normalised (the central region of the trimmed frame, LFC's default).
    flat = truth.arrays["flat"]
    norm = float(np.median(flat[central_region(flat.shape)]))
    judged = 0
    for frame_id, q in records.items():
        entry = truth.file_entry(Path(frames[frame_id].path).name)
        assert q.kind == ProductKind.FINAL
        if entry["stars_unsaturated"] >= 20:
            judged += 1
            assert q.fwhm_px == pytest.approx(entry["fwhm_px"], rel=0.05), frame_id
        expected_sky = entry["signal_adu"] * norm
        assert q.unit == "adu"
        assert abs(q.sky - expected_sky) < q.sky_noise, (frame_id, q.sky, expected_sky)
        assert q.sky_e == pytest.approx(q.sky * 2.37, rel=0.01)  # the measured gain
        assert q.airmass == pytest.approx(entry["airmass"], abs=6e-4)
        assert q.airmass_source == "header AIRMASS"
        assert q.fwhm_arcsec == pytest.approx(q.fwhm_px * 0.182)  # the header's SECPIX
        assert {role for role, _ in q.masters} == {"bias", "dark", "flat"}
        assert q.n_sources >= q.n_psf_stars >= 5
        assert q.ellipticity is not None and q.ellipticity < 0.1
        assert q.saturated_fraction is not None and q.cosmic_ray_pixels is not None
    assert judged >= 3


def test_the_quick_look_record_stays_with_its_product(night: Path) -> None:
    settings = load_settings(env={}, cwd=night)
    engine = create_engine(settings.database_url)
    try:
        with make_sessionmaker(engine)() as session:
            rows = list(session.execute(
                select(FrameQualityRow.kind, Product.status)
                .join(Product, Product.id == FrameQualityRow.product_id)))
    finally:
        engine.dispose()
    assert sorted(set(rows)) == [("final", "current"), ("quicklook", "replaced")]


def test_rules_mark_frames_poor_with_reasons(night: Path) -> None:
    truth = load_truth(night / "raw")
    _, records = _records(night)
    fwhm = [f["fwhm_px"] for f in truth.summary["files"] if f["kind"] == "science"]
    limit = float(np.median(fwhm))
    for q in records.values():
        assert q.verdict == QualityVerdict.POOR  # every frame has fewer than 1000 sources
        assert f"crowd: sources {q.n_sources} < 1000" in q.reasons
        assert any(r.startswith("seeing: FWHM") for r in q.reasons) == (q.fwhm_px > limit)


def _cli(folder: Path, *args: str) -> str:
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        result = CliRunner().invoke(app, list(args), env={"COLUMNS": "300",
                                                          "NIGHTLOG_CONFIG": None,
                                                          "NIGHTLOG_DATABASE_URL": None})
    finally:
        os.chdir(cwd)
    assert result.exit_code == 0, result.output
    return result.output


def test_frames_filters_on_quality_and_check_dry_run_saves_nothing(
        night: Path, tmp_path: Path) -> None:
    folder = tmp_path / "copy"
    shutil.copytree(night, folder)
    rows = json.loads(_cli(folder, "frames", "--poor", "--format", "json"))
    assert len(rows) == 6 and all(r["verdict"] == "poor" for r in rows)
    assert all(r["fwhm_px"] > 0 and "crowd" in r["reasons"] for r in rows)
    assert json.loads(_cli(folder, "frames", "--quality", "good", "--format", "json")) == []
    plain = json.loads(_cli(folder, "frames", "--kind", "science", "--format", "json"))
    assert "verdict" not in plain[0]
    shown = json.loads(_cli(folder, "frames", "--kind", "science", "--show-quality",
                            "--format", "json"))
    assert [r["id"] for r in shown] == [r["id"] for r in plain] and "airmass" in shown[0]
    table = _cli(folder, "frames", "--kind", "science", "--show-quality")
    row = next(line for line in table.splitlines() if line.lstrip().startswith(str(shown[0]["id"])))
    assert f"{shown[0]['fwhm_px']:.3g}" in row and "fwhm [px]" in table  # three digits, a unit

    # Judged by the seeing rule alone, a dry run shows which frames change, saves nothing.
    dry = json.loads(_cli(folder, "quality", "check", "--rule", "seeing", "--dry-run",
                          "--format", "json"))
    assert len(dry) == 6 and all(d["before"] == "poor" for d in dry)
    after = {d["frame_id"]: d["after"] for d in dry}
    assert set(after.values()) == {"poor", "good"}
    again = json.loads(_cli(folder, "frames", "--poor", "--format", "json"))
    assert len(again) == 6
    table = _cli(folder, "quality", "check", "--rule", "seeing", "--dry-run")
    assert "dry run: nothing saved" in table
    saved = json.loads(_cli(folder, "quality", "check", "--rule", "seeing", "--format",
                            "json"))
    assert {d["frame_id"]: d["after"] for d in saved} == after
    poor = {r["id"] for r in json.loads(_cli(folder, "frames", "--poor", "--format",
                                             "json"))}
    assert poor == {i for i, v in after.items() if v == "poor"}


def test_the_report_shows_the_quality_and_the_timeline(night: Path) -> None:
    from nightlog.coordinator.night_report import build_report
    from nightlog.report.html import render_html

    settings = load_settings(env={}, cwd=night)
    engine = create_engine(settings.database_url)
    try:
        with make_sessionmaker(engine)() as session:
            night_date = session.scalars(select(Frame.night)).first()
            report = build_report(session, JobContext.from_settings(settings), night_date,
                                  with_trends=False)
    finally:
        engine.dispose()
    assert all(s.quality is not None for s in report.science)
    assert {c.kind for c in report.calibrations} == {"bias", "dark", "flat"}
    page = render_html(report)
    assert page.count('<tr class="poor">') == len(report.science)
    assert '<svg class="timeline"' in page and page.count('class="tl-cal') == len(
        report.calibrations)
    assert page.count('class="tl-poor"') == 4 * len(report.science)  # four panels
    assert "crowd: sources" in page


def test_recorded_and_judged_again_on_both_backends(archive: tuple) -> None:
    from nightlog.quality_rules import QualityRule, QualitySettings

    engine, ctx = archive
    run_build(engine, ctx)
    with make_sessionmaker(engine)() as session:
        ids = science_frames(session)
    outcomes = run_reduce(engine, ctx, ids)
    assert {o.status for o in outcomes} == {"reduced"}
    with make_sessionmaker(engine)() as session:
        records = quality_of(session, ids)
    assert set(records) == set(ids)
    assert all(r.verdict == QualityVerdict.UNJUDGED and r.reasons == ()  # no rule
               for r in records.values())
    # A tenth-size frame holds few stars: a FWHM, or a note saying why there is none.
    assert all(r.sky > 0 and (r.fwhm_px is not None or any(n.startswith("no FWHM")
                                                           for n in r.notes))
               for r in records.values())
    rules = QualitySettings(rules=(QualityRule("any", thresholds=(("sources_min", 10**6),)),))
    with make_sessionmaker(engine)() as session, session.begin():
        changes = check_quality(session, rules, save=True)
    assert sorted(c.frame_id for c in changes) == sorted(ids)
    assert all(c.before == "unjudged" and c.after == "poor" for c in changes)
    with make_sessionmaker(engine)() as session:
        again = quality_of(session, ids)
        poor = session.scalars(select(Frame.id).where(
            Frame.id.in_(verdict_frame_ids(QualityVerdict.POOR)))).all()
    assert all(r.verdict == "poor" and r.reasons[0].startswith("any: sources")
               for r in again.values())
    assert sorted(poor) == sorted(ids)
