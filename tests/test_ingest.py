"""Ingestion: idempotent, versioned, move-aware, and nothing lost on bad input.
Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from sqlalchemy import Engine

from nightlog.coordinator.ingest import IngestContext, discover, run_ingest
from nightlog.settings import load_settings
from tests.factories import bad_corpus, write_frame
from tests.factories import catalogued_frames as _frames
from tests.factories import quarantined_by_name as _quarantine

PATTERNS = load_settings(env={}, cwd=Path("/")).ingest.patterns


def _ctx(tmp_path: Path) -> IngestContext:
    return IngestContext.from_settings(load_settings(env={}, cwd=tmp_path))


def _ingest(engine: Engine, folder: Path, ctx: IngestContext) -> dict[str, int]:
    summary = run_ingest(engine, discover([folder], PATTERNS), ctx)
    return dict(summary.counts)


def test_every_form_is_ingested_once(catalogue_engine: Engine, tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    for i, name in enumerate(["a.fits", "b.fit", "c.FTS", "d.fits.gz", "e.fits.fz",
                              "sub/deeper/f.fits"]):
        write_frame(raw / name, seed=i, **{"DATE-OBS": f"2024-03-10T04:0{i}:00"})
    (raw / "notes.txt").write_text("not matched by the patterns")
    (raw / ".hidden.fits").write_text("skipped: hidden or partial")
    ctx = _ctx(tmp_path)
    assert _ingest(catalogue_engine, raw, ctx) == {"added": 6}
    frames = _frames(catalogue_engine)
    assert {f.kind for f in frames} == {"science"}
    assert {f.exptime for f in frames} == {30.0}
    assert {f.filter for f in frames} == {"R"}
    assert all(len(f.sha256) == 64 and f.size > 0 for f in frames)
    assert all(f.naxis1 == 32 and f.naxis2 == 24 for f in frames)
    # The same bytes again add nothing, with or without re-hashing.
    assert _ingest(catalogue_engine, raw, ctx) == {"unchanged": 6}
    verify = IngestContext(registry=ctx.registry, verify=True)
    assert _ingest(catalogue_engine, raw, verify) == {"unchanged": 6}
    assert len(_frames(catalogue_engine)) == 6


def test_new_bytes_at_a_path_make_a_new_version(catalogue_engine: Engine,
                                                tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    path = write_frame(raw / "a.fits", seed=1)
    ctx = _ctx(tmp_path)
    _ingest(catalogue_engine, raw, ctx)
    path.unlink()
    write_frame(path, seed=2, EXPTIME=60.0)
    os.utime(path, (1e9, 1e9))
    assert _ingest(catalogue_engine, raw, ctx) == {"new-version": 1}
    old, new = _frames(catalogue_engine)
    assert (old.path, old.path_version, old.is_latest, old.exptime) == (str(path), 1, False, 30.0)
    assert (new.path, new.path_version, new.is_latest, new.exptime) == (str(path), 2, True, 60.0)


def test_moved_and_copied_files_are_recognised(catalogue_engine: Engine,
                                               tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    a = write_frame(raw / "a.fits", seed=1)
    write_frame(raw / "b.fits", seed=2)
    ctx = _ctx(tmp_path)
    _ingest(catalogue_engine, raw, ctx)
    moved = raw / "night1" / "a.fits"
    moved.parent.mkdir()
    shutil.move(a, moved)
    shutil.copy(raw / "b.fits", raw / "b-copy.fits")
    counts = _ingest(catalogue_engine, raw, ctx)
    assert counts == {"moved": 1, "duplicate": 1, "unchanged": 1}
    frames = _frames(catalogue_engine)
    assert len(frames) == 2
    assert {f.path for f in frames} == {str(moved), str(raw / "b.fits")}


def test_bad_input_is_quarantined_and_the_batch_goes_on(catalogue_engine: Engine,
                                                        tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    expected = bad_corpus(raw)
    for i in range(3):
        write_frame(raw / f"good{i}.fits", seed=10 + i)
    counts = _ingest(catalogue_engine, raw, _ctx(tmp_path))
    assert counts == {"added": 3, "quarantined": len(expected)}
    quarantined = _quarantine(catalogue_engine)
    assert set(quarantined) == set(expected)
    for name, fragment in expected.items():
        assert fragment in quarantined[name].reason, (name, quarantined[name].reason)
        assert quarantined[name].times_seen == 1
    # Seen again: the same entries, counted, nothing added.
    counts = _ingest(catalogue_engine, raw, _ctx(tmp_path))
    assert counts == {"unchanged": 3, "quarantined": len(expected)}
    assert {q.times_seen for q in _quarantine(catalogue_engine).values()} == {2}


def test_a_fixed_file_leaves_quarantine(catalogue_engine: Engine, tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    path = write_frame(raw / "late.fits", seed=1)
    full = path.read_bytes()
    path.write_bytes(full[:3000])  # still being copied
    ctx = _ctx(tmp_path)
    assert _ingest(catalogue_engine, raw, ctx) == {"quarantined": 1}
    path.write_bytes(full)
    assert _ingest(catalogue_engine, raw, ctx) == {"added": 1}
    (entry,) = _quarantine(catalogue_engine).values()
    assert entry.resolved_at is not None


def test_incomplete_files_can_be_left_for_later(catalogue_engine: Engine,
                                                tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    path = write_frame(raw / "late.fits", seed=1)
    path.write_bytes(path.read_bytes()[:4000])
    ctx = IngestContext(registry=_ctx(tmp_path).registry, incomplete_is_error=False)
    assert _ingest(catalogue_engine, raw, ctx) == {"incomplete": 1}
    assert _quarantine(catalogue_engine) == {}


def test_default_profile_applies_when_no_profile_matches(catalogue_engine: Engine,
                                                         tmp_path: Path) -> None:
    cfg = tmp_path / "nightlog.toml"
    cfg.write_text('[ingest]\ndefault_profile = "mycam"\n'
                   '[instruments.mycam]\nextends = "generic"\nsaturation = 50000.0\n')
    ctx = IngestContext.from_settings(load_settings(cfg, env={}, cwd=tmp_path))
    raw = tmp_path / "raw"
    write_frame(raw / "a.fits")
    assert _ingest(catalogue_engine, raw, ctx) == {"added": 1}
    (frame,) = _frames(catalogue_engine)
    assert frame.profile == "mycam" and frame.saturation == 50000.0
