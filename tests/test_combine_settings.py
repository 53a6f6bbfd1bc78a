"""``[combine]``: IRAF's clips chosen for the masters by a site, validated like every
section, and the clip a master was combined with recorded in its parameters."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from nightlog.catalogue.engine import make_sessionmaker
from nightlog.catalogue.models import Master
from nightlog.coordinator.context import JobContext
from nightlog.coordinator.ingest import IngestContext, discover, run_ingest
from nightlog.coordinator.masters import run_build
from nightlog.errors import ConfigurationError
from nightlog.reduction.master_options import CombineOptions, configured_options, describe_combine
from nightlog.settings import load_settings
from nightlog.settings_sections import CombineSettings, combine_from


def _options(kind: str, c: CombineSettings, gains: list[float | None],
             noises: list[float | None]) -> tuple[CombineOptions, str | None]:
    return configured_options(CombineOptions(), kind=kind, reject=c.reject,
                              centre=c.centre, lsigma=c.lsigma, hsigma=c.hsigma,
                              max_iters=c.max_iters, nkeep=c.nkeep,
                              frame_scales=c.frame_scales, gains=gains, read_noises=noises)


def test_the_default_is_todays_choice() -> None:
    auto = CombineSettings()
    known = ([2.0] * 5, [11.0] * 5)
    unknown: tuple[list[float | None], list[float | None]] = ([None] * 5, [None] * 5)
    bias, note = _options("bias", auto, *known)
    assert note is None and bias.clip is not None and bias.clip.spread == "noise"
    assert not bias.clip.by_frame
    dark, _ = _options("dark", auto, *known)
    assert dark == CombineOptions()
    flat, _ = _options("flat", auto, *unknown)
    assert flat == CombineOptions()
    assert describe_combine(flat) == ("average, 3/3-sigma clip about the median by MAD, "
                                      "1 pass(es)")


def test_iraf_clips_by_name() -> None:
    known = ([2.0] * 5, [11.0] * 5)
    av, _ = _options("flat", CombineSettings(reject="avsigclip", nkeep=-1,
                                             frame_scales=True, lsigma=4.0), *known)
    assert av.clip is not None
    assert (av.clip.spread, av.clip.nkeep, av.clip.frame_scales, av.clip.low,
            av.clip.high, av.clip.max_iters) == ("avsigclip", -1, True, 4.0, 3.0, None)
    assert describe_combine(av).endswith("in each frame's own units, nkeep -1")
    ccd, note = _options("dark", CombineSettings(reject="ccdclip", centre="mean"), *known)
    assert note is None and ccd.clip is not None
    assert (ccd.clip.spread, ccd.clip.centre, ccd.clip.gain) == ("noise", "mean", 2.0)
    # Without the detector's numbers the clip asked for cannot be had: said, not hidden.
    fallback, note = _options("bias", CombineSettings(reject="ccdclip"), [None] * 5,
                              [None] * 5)
    assert fallback.clip is not None and fallback.clip.spread == "mad"
    assert note is not None and "ccdclip" in note
    sig, _ = _options("bias", CombineSettings(reject="sigclip", max_iters=2), *known)
    assert sig.clip is not None and (sig.clip.spread, sig.clip.max_iters) == ("sigclip", 2)
    # frame_scales means nothing to a MAD clip: left off rather than refused.
    mad, _ = _options("bias", CombineSettings(reject="mad", frame_scales=True), *known)
    assert mad.clip is not None and not mad.clip.frame_scales
    none, _ = _options("bias", CombineSettings(reject="none", nkeep=2), *known)
    assert none.clip is None


def test_the_section_is_read_and_checked(tmp_path: Path) -> None:
    (tmp_path / "nightlog.toml").write_text(
        '[combine]\nreject = "avsigclip"\nnkeep = -2\nframe_scales = true\n'
        'lsigma = 4\n', encoding="utf-8")
    settings = load_settings(env={}, cwd=tmp_path)
    assert settings.combine == CombineSettings(reject="avsigclip", nkeep=-2,
                                               frame_scales=True, lsigma=4.0)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert load_settings(env={}, cwd=empty).combine == CombineSettings()
    for table, fragment in (({"rejct": "mad"}, "did you mean 'reject'"),
                            ({"reject": "minmax"}, "combine.reject"),
                            ({"centre": "mode"}, "combine.centre"),
                            ({"lsigma": -1}, "combine.lsigma"),
                            ({"nkeep": 1.5}, "combine.nkeep"),
                            ({"max_iters": 0}, "combine.max_iters"),
                            ({"frame_scales": "yes"}, "combine.frame_scales")):
        with pytest.raises(ConfigurationError, match=fragment):
            combine_from(table)


def test_a_sites_clip_builds_the_masters(catalogue_engine: Engine, lfc_night: Path,
                                         tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    shutil.copytree(lfc_night, raw)
    (tmp_path / "nightlog.toml").write_text(
        '[combine]\nreject = "avsigclip"\nnkeep = 3\nframe_scales = true\n',
        encoding="utf-8")
    settings = load_settings(env={}, cwd=tmp_path)
    run_ingest(catalogue_engine, discover([raw], settings.ingest.patterns),
               IngestContext.from_settings(settings))
    ctx = JobContext.from_settings(settings)
    assert ctx.combine.reject == "avsigclip"
    run_build(catalogue_engine, ctx)
    with make_sessionmaker(catalogue_engine)() as s:
        masters = list(s.scalars(select(Master)))
    assert {m.kind for m in masters} == {"bias", "dark", "flat"}
    for master in masters:
        assert master.parameters["combine"] == (
            "average, 3/3-sigma clip about the median by avsigclip (sigma = k sqrt(level), "
            "k per line), passes until nothing more is rejected, in each frame's own units, "
            "nkeep 3"), master.kind
